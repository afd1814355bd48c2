import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * A temporary name next to `path` that no other writer (another process, or another write from this one) picks:
 * `<path>.tmp-<pid>-<8 hex digits>`.
 */
export const temporaryName = (path: string): string =>
  `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/**
 * Whether process `pid` is running (on this machine): whether the writer named in a {@link temporaryName}, or
 * the holder of a lock, may still be at work. A process of another user counts as running.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Writes a file so that readers see either the old or the new content, never a partial one: a temporary file in
 * the same folder (a unique name), flushed to disk (fsync), then renamed over the target (a rename is atomic
 * within a file system). The one atomic write of litter: run directories, reports and charts all use it.
 *
 * @throws the file system's error (the temporary file is removed)
 * @example
 * await writeFileAtomic('runs/a/thresholds.json', JSON.stringify([0.5, 0.4]));
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = temporaryName(path);
  try {
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** {@link writeFileAtomic} of `value` as indented JSON with a final newline. */
export const writeJsonAtomic = (path: string, value: unknown): Promise<void> =>
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
