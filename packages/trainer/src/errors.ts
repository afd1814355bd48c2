/** What went wrong, as a stable string the CLI and library users can branch on. */
export type TrainerErrorCode =
  | 'invalid-options'
  | 'empty-split'
  | 'resume-missing'
  | 'resume-mismatch'
  | 'run-not-found'
  | 'checkpoint-corrupt'
  | 'model-mismatch'
  | 'worker-failed'
  /** A model gave NaN or infinite outputs (scores): its weights diverged or are damaged. */
  | 'non-finite-output'
  /** A run directory litter did not create (and that is not empty): never written to or cleared. */
  | 'run-dir-refused'
  /** Another live process writes the run directory. */
  | 'run-locked';

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
