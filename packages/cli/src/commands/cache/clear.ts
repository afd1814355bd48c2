import { clearCache } from '@litter/dataset';
import { defineCommand } from 'citty';
import { commonArgs } from '../../_args.js';
import { ioOf, writeJson, writeLine } from '../../_io.js';
import { ExitCode } from '../../errors.js';
import { cacheArgs, cacheTarget } from './_shared.js';

export default defineCommand({
  meta: {
    name: 'clear',
    description:
      'Delete the cache (and temporary files of killed writers); a file that is not a litter cache is refused',
  },
  args: {
    ...cacheArgs,
    json: { type: 'boolean', description: 'Print one JSON object: cache, removed (file names)' },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const target = cacheTarget(io, args);
    // clearCache removes only what litter wrote: never labels.json, an image, or a file without a cache header.
    const removed = await clearCache(target.labelsPath, { cachePath: target.cachePath });
    if (args.json) writeJson(io, { cache: target.cachePath, removed });
    else
      writeLine(
        io.stdout,
        removed.length === 0 ? `no cache at ${target.cachePath}` : `removed ${removed.join(', ')}`,
      );
    return ExitCode.ok;
  },
});
