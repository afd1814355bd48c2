import type { Io } from '../src/_io.js';

/** An Io that records what a command writes, for tests. */
export function memoryIo(options: { cwd?: string; isTTY?: boolean; env?: Record<string, string> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text), isTTY: options.isTTY ?? false, columns: 100 },
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? {},
  };
  return {
    io,
    get stdout() {
      return out.join('');
    },
    get stderr() {
      return err.join('');
    },
  };
}
