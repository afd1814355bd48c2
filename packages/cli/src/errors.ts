/** What went wrong, as a stable string: `usage` exits with 2, everything else with 1. */
export type CliErrorCode =
  | 'usage'
  | 'missing-dataset'
  | 'missing-sample'
  | 'missing-run'
  | 'missing-image'
  | 'bad-run'
  | 'cache'
  | 'non-finite-loss'
  | 'no-backend'
  | 'no-box-head';

/**
 * The one error class of `@litter/cli`. Its message is the one line the user sees: it starts with
 * `@litter/cli:` and says what to do.
 *
 * @example
 * throw new CliError('usage', '--width must be a positive integer, got "abc"');
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('@litter/') ? message : `@litter/cli: ${message}`, options);
    this.code = code;
  }
}

/** Exit codes of `litter`. */
export const ExitCode = {
  ok: 0,
  /** An input problem: missing dataset, bad labels, unknown model, a backend that does not load. */
  input: 1,
  /** A usage error: unknown command or flag, a bad flag value. */
  usage: 2,
  /** Stopped by SIGINT (128 + 2) after saving a checkpoint. */
  sigint: 130,
  /** Stopped by SIGTERM (128 + 15) after saving a checkpoint. */
  sigterm: 143,
} as const;
