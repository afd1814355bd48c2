/**
 * What went wrong, as a stable string a program can branch on.
 *
 * - `labels-not-found`: no `labels.json` at the given path.
 * - `labels-invalid`: `labels.json` is not valid JSON or breaks the format (every problem is listed).
 * - `vocabulary-invalid`: a pinned vocabulary (option or file) is empty, has duplicates or non-strings.
 * - `vocabulary-unknown-label`: a label is not in the pinned vocabulary.
 * - `image-missing`, `image-corrupt`: an image file is absent or cannot be decoded.
 * - `image-size-mismatch`: images differ in size and no target `width` x `height` was given.
 * - `no-images`: nothing left to load (empty `labels.json`, or every image skipped).
 * - `cache-not-writable`: the cache cannot be written where it was asked to go.
 * - `cache-write-failed`: writing the cache failed for another reason (disk full, ...).
 * - `cache-path-refused`: the cache path holds something that is not a litter cache, or is one of the
 *   dataset's own files (labels.json, an image): litter neither overwrites nor deletes it.
 * - `split-invalid`: bad split options (unknown scene, overlapping lists, fractions out of range).
 * - `sampler-invalid`: bad sampler options or a sampler state that does not fit this sampler.
 * - `options-invalid`: any other bad option value.
 */
export type DatasetErrorCode =
  | 'labels-not-found'
  | 'labels-invalid'
  | 'vocabulary-invalid'
  | 'vocabulary-unknown-label'
  | 'image-missing'
  | 'image-corrupt'
  | 'image-size-mismatch'
  | 'no-images'
  | 'cache-not-writable'
  | 'cache-write-failed'
  | 'cache-path-refused'
  | 'split-invalid'
  | 'sampler-invalid'
  | 'options-invalid';

/** How many problems an error message lists before it says "and N more" (all are in `problems`). */
export const MAX_LISTED_PROBLEMS = 20;

/**
 * The one error class of `@litter/dataset`. `message` starts with `@litter/dataset:` and says what to do;
 * `problems` holds every individual problem when there were several (labels, images).
 *
 * @example
 * try {
 *   await loadDataset('data/labels.json');
 * } catch (error) {
 *   if (error instanceof DatasetError && error.code === 'labels-invalid') console.error(error.problems);
 *   else throw error;
 * }
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  readonly code: DatasetErrorCode;
  /** Each problem on its own, uncapped (the message lists at most {@link MAX_LISTED_PROBLEMS}). */
  readonly problems: readonly string[];
  /** What to do, when the message ends with it after its problems. */
  readonly advice: string | undefined;

  constructor(
    code: DatasetErrorCode,
    message: string,
    options: { cause?: unknown; problems?: readonly string[]; advice?: string | undefined } = {},
  ) {
    super(
      message.startsWith('@litter/dataset:') ? message : `@litter/dataset: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.problems = options.problems ?? [];
    this.advice = options.advice;
  }
}

/**
 * Builds a DatasetError from a list of problems: a summary line, then the problems one per line, capped at
 * {@link MAX_LISTED_PROBLEMS} with "... and N more".
 */
export function problemsError(
  code: DatasetErrorCode,
  summary: string,
  problems: readonly string[],
  advice?: string,
): DatasetError {
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  - ${p}`);
  if (problems.length > MAX_LISTED_PROBLEMS)
    listed.push(`  ... and ${problems.length - MAX_LISTED_PROBLEMS} more`);
  const body = `${summary}\n${listed.join('\n')}${advice ? `\n${advice}` : ''}`;
  return new DatasetError(code, body, { problems, advice });
}

/**
 * A value from a user's file, shown in a message: its JSON, cut at 40 characters. A value nested too deeply for
 * JSON.stringify (a hostile file) shows as `[...]` or `{...}` instead of failing with a stack overflow.
 */
export function showValue(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = Array.isArray(value) ? '[...]' : '{...}';
  }
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
