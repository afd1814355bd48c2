import path from 'node:path';
import type { CommandContext } from 'citty';

import type { Io } from './io.js';

/** The type, for the modules that use these helpers. */
export type { Io };

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

/**
 * Control characters (C0 but tab and newline, DEL, C1) and the Unicode bidirectional overrides: in a mesh or
 * file name they would move the cursor, recolour or rewrite the terminal, or reorder what is shown.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text as the terminal may show it: every control character written out as `\u001b` (visible, never
 * interpreted). litter's own output has none but newlines and tabs; names from a dataset may.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function writeLine(stream: Io['stdout'], line = ''): void {
  stream.write(`${printable(line)}\n`);
}

/** One JSON line: JSON escapes C0 itself; DEL, C1 and bidi overrides are escaped too (still valid JSON). */
export function writeJson(io: Io, value: unknown): void {
  io.stdout.write(`${printable(JSON.stringify(value))}\n`);
}
