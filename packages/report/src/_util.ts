import { writeFileAtomic } from '@litter/dataset';
import { ReportError } from './errors.js';

/** The report's files go through the one atomic write of litter; a failure is a `write-failed` {@link ReportError}. */
export async function writeReportFile(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(path, data);
  } catch (cause) {
    throw new ReportError('write-failed', `cannot write ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Text drawn into an image (SVG rendered by librsvg, vega legends): at most `max` characters, the rest as
 * `...`. Names come from the dataset, and the text layout costs grow faster than their length: a
 * 100,000-character class name took the report many minutes. No picture shows more than this anyway.
 */
export function shortLabel(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** Escapes text for SVG and HTML. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number for people: integers as they are, others with 4 significant digits; NaN as n/a. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Number.isInteger(value)) return String(value);
  return Number(value.toPrecision(4)).toString();
}
