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
  /** Each problem on its own, when there were several (a model's contract, the backends tried). */
  readonly problems: readonly string[];
  /** What to do, when the message ends with it after its problems. */
  readonly advice: string | undefined;

  constructor(
    code: ModelErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[]; advice?: string | undefined },
  ) {
    super(
      message.startsWith('@litter/model:') ? message : `@litter/model: ${message}`,
      options && 'cause' in options ? { cause: options.cause } : undefined,
    );
    this.code = code;
    this.problems = options?.problems ?? [];
    this.advice = options?.advice;
  }
}

/** A ModelError listing problems one per line after a summary, then advice. */
export function problemsError(
  code: ModelErrorCode,
  summary: string,
  problems: readonly string[],
  advice?: string,
): ModelError {
  const listed = problems.map((p) => `  - ${p}`).join('\n');
  return new ModelError(code, `${summary}\n${listed}${advice ? `\n${advice}` : ''}`, { problems, advice });
}
