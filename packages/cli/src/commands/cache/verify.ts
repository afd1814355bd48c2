import { defineCommand } from 'citty';
import { commonArgs, datasetCacheArgs } from '../../_args.js';
import { ioOf, writeJson, writeLine } from '../../_io.js';
import { CliError, ExitCode } from '../../errors.js';
import { cacheArgs, cacheTarget, checkCache, sizeArgs, sizeOf } from './_shared.js';

export default defineCommand({
  meta: {
    name: 'verify',
    description:
      'Check the cache against labels.json and the images (and its checksum) without rebuilding; exit 1 when it is not current',
  },
  args: {
    ...cacheArgs,
    ...sizeArgs,
    ...datasetCacheArgs,
    json: {
      type: 'boolean',
      description: 'Print one JSON object: cache, status (current|missing|stale), reason',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const target = cacheTarget(io, args);
    const size = await sizeOf(args, target.labelsPath);
    const check = await checkCache(target, size);
    if (args.json) {
      writeJson(io, {
        cache: target.cachePath,
        status: check.status,
        reason: 'reason' in check ? check.reason : null,
        width: size.width,
        height: size.height,
      });
      return check.status === 'current' ? ExitCode.ok : ExitCode.input;
    }
    if (check.status === 'current') {
      writeLine(
        io.stdout,
        `ok: ${target.cachePath} is current (${check.images} images at ${check.width}x${check.height})`,
      );
      return ExitCode.ok;
    }
    throw new CliError(
      'cache',
      `${target.cachePath} is ${check.status === 'missing' ? 'missing' : 'not current'} for ${size.width}x${size.height}: ${check.reason}; litter cache build rebuilds it`,
    );
  },
});
