/** What went wrong, as a stable string. */
export type ReportErrorCode =
  /** The `ReportData` (or a box given to `annotateImage`) is inconsistent: wrong lengths, NaN, out of range. */
  | 'invalid-data'
  /** An image of a sample could not be read or decoded. */
  | 'image-unreadable'
  /** A chart could not be rendered (vega) or converted to PNG (sharp). */
  | 'render-failed'
  /** A file of the report could not be written. */
  | 'write-failed';

/**
 * The one error class of `@litter/report`. Its message starts with `@litter/report:` and says what to do.
 *
 * @example
 * throw new ReportError('invalid-data', 'samples[3].probabilities has 2 values; expected 3, one per class');
 */
export class ReportError extends Error {
  override readonly name = 'ReportError';
  readonly code: ReportErrorCode;

  constructor(code: ReportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith('@litter/') ? message : `@litter/report: ${message}`, options);
    this.code = code;
  }
}
