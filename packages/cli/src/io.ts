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
