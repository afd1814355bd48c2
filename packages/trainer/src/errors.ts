/** What went wrong, as a stable string the CLI and library users can branch on. */
export type TrainerErrorCode =
  | 'invalid-options'
  | 'empty-split'
  | 'resume-missing'
  | 'resume-mismatch'
  | 'run-not-found'
  | 'checkpoint-corrupt'
  | 'model-mismatch'
  | 'worker-failed';

/**
 * The one error class of `@litter/trainer`. Messages start with `@litter/trainer:` and say what to do.
 *
 * @example
 * try { await train(options); } catch (error) {
 *   if (error instanceof TrainerError && error.code === 'resume-missing') { ... }
 * }
 */
export class TrainerError extends Error {
  override readonly name = 'TrainerError';
  readonly code: TrainerErrorCode;

  constructor(code: TrainerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('@litter/trainer:') ? message : `@litter/trainer: ${message}`, options);
    this.code = code;
  }
}
