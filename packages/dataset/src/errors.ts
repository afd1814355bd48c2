/**
 * What went wrong, as a stable string a program can branch on.
 *
 * - `LABELS_NOT_FOUND`: no `labels.json` at the given path.
 * - `LABELS_INVALID`: `labels.json` is not valid JSON or breaks the format (every problem is listed).
 * - `VOCABULARY_INVALID`: a pinned vocabulary (option or file) is empty, has duplicates or non-strings.
 * - `VOCABULARY_UNKNOWN_LABEL`: a label is not in the pinned vocabulary.
 * - `IMAGE_MISSING`, `IMAGE_CORRUPT`: an image file is absent or cannot be decoded.
 * - `IMAGE_SIZE_MISMATCH`: images differ in size and no target `width` x `height` was given.
 * - `NO_IMAGES`: nothing left to load (empty `labels.json`, or every image skipped).
 * - `CACHE_NOT_WRITABLE`: the cache cannot be written where it was asked to go.
 * - `CACHE_WRITE_FAILED`: writing the cache failed for another reason (disk full, ...).
 * - `SPLIT_INVALID`: bad split options (unknown scene, overlapping lists, fractions out of range).
 * - `SAMPLER_INVALID`: bad sampler options or a sampler state that does not fit this sampler.
 * - `OPTIONS_INVALID`: any other bad option value.
 */
export type DatasetErrorCode =
  | 'LABELS_NOT_FOUND'
  | 'LABELS_INVALID'
  | 'VOCABULARY_INVALID'
  | 'VOCABULARY_UNKNOWN_LABEL'
  | 'IMAGE_MISSING'
  | 'IMAGE_CORRUPT'
  | 'IMAGE_SIZE_MISMATCH'
  | 'NO_IMAGES'
  | 'CACHE_NOT_WRITABLE'
  | 'CACHE_WRITE_FAILED'
  | 'SPLIT_INVALID'
  | 'SAMPLER_INVALID'
  | 'OPTIONS_INVALID';

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
 *   if (error instanceof DatasetError && error.code === 'LABELS_INVALID') console.error(error.problems);
 *   else throw error;
 * }
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  readonly code: DatasetErrorCode;
  /** Each problem on its own, uncapped (the message lists at most {@link MAX_LISTED_PROBLEMS}). */
  readonly problems: readonly string[];

  constructor(
    code: DatasetErrorCode,
    message: string,
    options: { cause?: unknown; problems?: readonly string[] } = {},
  ) {
    super(
      message.startsWith('@litter/dataset:') ? message : `@litter/dataset: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.problems = options.problems ?? [];
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
  return new DatasetError(code, body, { problems });
}
