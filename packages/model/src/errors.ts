/** What went wrong, as a stable string the CLI and library users can branch on. */
export type ModelErrorCode =
  | 'backend-unavailable'
  | 'invalid-options'
  | 'model-not-found'
  | 'model-invalid'
  | 'model-io'
  | 'model-mismatch'
  | 'unsupported';

/**
 * The one error class of `@litter/model`. Messages start with `@litter/model:` and say what to do.
 *
 * @example
 * try { await initBackend({ backend: 'tensorflow' }); } catch (error) {
 *   if (error instanceof ModelError && error.code === 'backend-unavailable') { ... }
 * }
 */
export class ModelError extends Error {
  override readonly name = 'ModelError';
  readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('@litter/model:') ? message : `@litter/model: ${message}`, options);
    this.code = code;
  }
}
