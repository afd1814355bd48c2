import { loadDataset } from '@litter/dataset';
import { defineCommand } from 'citty';
import { commonArgs, datasetCacheArgs } from '../../_args.js';
import { ioOf, writeJson, writeLine } from '../../_io.js';
import { ExitCode } from '../../errors.js';
import { cacheArgs, cacheTarget, formatBytes, sizeArgs, sizeOf } from './_shared.js';

export default defineCommand({
  meta: {
    name: 'build',
    description: 'Decode every image at the training size and write the cache (a no-op when it is current)',
  },
  args: {
    ...cacheArgs,
    ...sizeArgs,
    ...datasetCacheArgs,
    json: {
      type: 'boolean',
      description: 'Print one JSON object: cache, action, reason, bytes, images, width, height',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const target = cacheTarget(io, args);
    const size = await sizeOf(args, target.labelsPath);
    let action = 'hit';
    let reason: string | undefined;
    let bytes: number | undefined;
    const started = performance.now();
    const dataset = await loadDataset(target.labelsPath, {
      ...size,
      ...target.options,
      cachePath: target.cachePath,
      onCache: (event) => {
        if (event.action === 'written') bytes = event.bytes;
        else {
          action = event.action;
          if ('reason' in event) reason = event.reason;
        }
      },
    });
    const seconds = (performance.now() - started) / 1000;
    if (args.json) {
      writeJson(io, {
        cache: target.cachePath,
        action,
        reason: reason ?? null,
        bytes: bytes ?? null,
        images: dataset.size,
        width: dataset.width,
        height: dataset.height,
        seconds,
      });
      return ExitCode.ok;
    }
    const what = `${dataset.size} images at ${dataset.width}x${dataset.height}`;
    writeLine(
      io.stdout,
      action === 'hit'
        ? `cache is current (${what}): ${target.cachePath}`
        : `${action === 'build' ? 'built' : `rebuilt (${reason})`} ${target.cachePath}: ${what}, ${formatBytes(bytes ?? 0)} in ${seconds.toFixed(1)} s`,
    );
    return ExitCode.ok;
  },
});
