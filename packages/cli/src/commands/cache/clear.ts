import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { defineCommand } from 'citty';
import { commonArgs } from '../../_args.js';
import { ioOf, writeJson, writeLine } from '../../_io.js';
import { ExitCode } from '../../errors.js';
import { cacheArgs, cacheTarget } from './_shared.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export default defineCommand({
  meta: { name: 'clear', description: 'Delete the cache (and temporary files of killed writers)' },
  args: {
    ...cacheArgs,
    json: { type: 'boolean', description: 'Print one JSON object: cache, removed (file names)' },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const target = cacheTarget(io, args);
    const folder = path.dirname(target.cachePath);
    const prefix = `${path.basename(target.cachePath)}.tmp-`;
    // `<cache>.tmp-<pid>-<random>` of a running writer stays: deleting it would break that write.
    const temporaries = (await readdir(folder).catch(() => [] as string[])).filter((name) => {
      if (!name.startsWith(prefix)) return false;
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      return !(Number.isInteger(pid) && alive(pid));
    });
    const removed: string[] = [];
    for (const name of [path.basename(target.cachePath), ...temporaries]) {
      const file = path.join(folder, name);
      const existed = await rm(file).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return false;
          throw error;
        },
      );
      if (existed) removed.push(file);
    }
    if (args.json) writeJson(io, { cache: target.cachePath, removed });
    else
      writeLine(
        io.stdout,
        removed.length === 0 ? `no cache at ${target.cachePath}` : `removed ${removed.join(', ')}`,
      );
    return ExitCode.ok;
  },
});
