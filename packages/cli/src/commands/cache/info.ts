import { stat } from 'node:fs/promises';
import { defineCommand } from 'citty';
import { commonArgs, datasetCacheArgs } from '../../_args.js';
import { ioOf, writeJson, writeLine } from '../../_io.js';
import { ExitCode } from '../../errors.js';
import { cacheArgs, cacheTarget, checkCache, formatBytes, sizeArgs, sizeOf } from './_shared.js';

export default defineCommand({
  meta: {
    name: 'info',
    description: 'Where the cache is, how big, and whether it is current for an image size',
  },
  args: {
    ...cacheArgs,
    ...sizeArgs,
    ...datasetCacheArgs,
    json: {
      type: 'boolean',
      description:
        'Print one JSON object: cache, exists, bytes, modified, status, reason, width, height, images',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const target = cacheTarget(io, args);
    const size = await sizeOf(args, target.labelsPath);
    const file = await stat(target.cachePath).catch(() => undefined);
    const check = file ? await checkCache(target, size) : undefined;
    if (args.json) {
      writeJson(io, {
        cache: target.cachePath,
        labels: target.labelsPath,
        exists: file !== undefined,
        bytes: file?.size ?? null,
        modified: file?.mtime.toISOString() ?? null,
        status: check?.status ?? 'missing',
        reason: check && 'reason' in check ? check.reason : null,
        width: check?.status === 'current' ? check.width : size.width,
        height: check?.status === 'current' ? check.height : size.height,
        images: check?.status === 'current' ? check.images : null,
        vocabulary: check?.status === 'current' ? check.vocabulary : null,
      });
      return ExitCode.ok;
    }
    writeLine(io.stdout, `cache: ${target.cachePath}`);
    writeLine(io.stdout, `labels: ${target.labelsPath}`);
    if (!file) {
      writeLine(io.stdout, 'no cache yet: litter cache build (or litter train) writes it');
      return ExitCode.ok;
    }
    writeLine(io.stdout, `size on disk: ${formatBytes(file.size)}, written ${file.mtime.toISOString()}`);
    if (check?.status === 'current') {
      writeLine(
        io.stdout,
        `current for ${check.width}x${check.height}: ${check.images} images, classes ${check.vocabulary.join(', ')}`,
      );
    } else {
      writeLine(io.stdout, `not current for ${size.width}x${size.height}: ${check?.reason}`);
    }
    return ExitCode.ok;
  },
});
