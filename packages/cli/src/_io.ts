import path from 'node:path';
import type { CommandContext } from 'citty';

/** Where a command writes, and what it knows about its surroundings. Tests pass their own. */
export interface Io {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** The directory relative paths on the command line are resolved against. */
  cwd: string;
  env: Record<string, string | undefined>;
  /** Signals that stop a training run; `process` in the bin. */
  signals?: {
    on(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
    off(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  };
}

/**
 * The directory the user typed the command in. `pnpm litter ...` runs the script in the workspace root; pnpm
 * keeps the user's directory in INIT_CWD, so relative paths mean what the user meant.
 */
export function userCwd(env: Record<string, string | undefined>, cwd: string): string {
  const viaPnpmScript = env.npm_lifecycle_event === 'litter' && env.INIT_CWD;
  return viaPnpmScript ? path.resolve(env.INIT_CWD as string) : cwd;
}

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: userCwd(process.env, process.cwd()),
    env: process.env,
    signals: process,
  };
}

/** The Io a command runs with (`runCommand(..., { data: io })`). */
export function ioOf(context: CommandContext<never> | { data?: unknown }): Io {
  const io = (context as { data?: unknown }).data as Io | undefined;
  return io ?? processIo();
}

export function resolvePath(io: Io, file: string): string {
  return path.resolve(io.cwd, file);
}

export function writeLine(stream: Io['stdout'], line = ''): void {
  stream.write(`${line}\n`);
}

export function writeJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}
