import path from 'node:path';
import { writeFileAtomic } from '@litter/dataset/atomic';
import { readRecords, readState } from './_state.js';
import { RenderError } from './errors.js';
import { labelEntries } from './labels.js';
import type { Visibility } from './settings.js';

/**
 * Writes labels of a finished render under another visibility rule, without rendering again (every scene
 * record holds both the projected and the pixel boxes): e.g. `labels-projection.json` beside `labels.json`.
 *
 * @example
 * await relabel('renders', { visibility: 'projection', file: 'labels-projection.json' });
 */
export async function relabel(
  out: string,
  rule: { visibility: Visibility; minPixels?: number; file: string },
): Promise<{ labelsPath: string; images: number }> {
  const state = await readState(out);
  if (!state) throw new RenderError('out-dir', `${out} is not a litter render directory`);
  const records = await readRecords(out, state);
  const entries = labelEntries(records.values(), {
    visibility: rule.visibility,
    minPixels: rule.minPixels ?? state.settings.minPixels,
  });
  const labelsPath = path.resolve(out, rule.file);
  if (path.dirname(labelsPath) !== path.resolve(out)) {
    throw new RenderError(
      'options-invalid',
      `relabel writes beside the images: ${rule.file} must be a file name`,
    );
  }
  await writeFileAtomic(labelsPath, `${JSON.stringify(entries, null, 2)}\n`);
  return { labelsPath, images: entries.length };
}
