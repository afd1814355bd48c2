/* labels.json: the public entry points; the steps behind them are in `_labels.ts`. */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  labelsNotFound,
  parseLabelsJson,
  readLabelsText,
  resolveImagePaths,
  validateLabels,
} from './_labels.js';
import type { LabelEntry } from './label-entry.js';

export type { LabelEntry, NormalizedBox } from './label-entry.js';

/**
 * Parses and validates the text of a `labels.json`. Every problem is reported at once (the message lists
 * the first 20, `error.problems` has all), each naming the file, the entry index, its image and the field:
 * `labels.json entry 17 (3-4y-2p.png): meshes.Cube.x1 = 1.7 is outside [0, 1]`.
 *
 * Rejected: invalid JSON, a top level that is not an array, entries without `image` or `meshes`, coordinates
 * that are not numbers or outside [0, 1], x1 > x2 or y1 > y2, empty mesh names, duplicate images, and image
 * paths that are absolute or lead out of the dataset folder (`../x.png`). Symbolic links are checked by
 * {@link readLabels}, which knows the folder.
 *
 * @param json the file's text
 * @param options.file the name used in messages @default 'labels.json'
 * @throws DatasetError `labels-invalid`
 * @example
 * const entries = parseLabels(await readFile('data/labels.json', 'utf8'));
 */
export function parseLabels(json: string, options: { file?: string } = {}): LabelEntry[] {
  const file = options.file ?? 'labels.json';
  return validateLabels(parseLabelsJson(json, file), file);
}

/** The `labels.json` path for a path that is either that file or its folder. */
export async function resolveLabelsPath(labelsPathOrDir: string): Promise<string> {
  const path = resolve(labelsPathOrDir);
  try {
    return (await stat(path)).isDirectory() ? join(path, 'labels.json') : path;
  } catch (error) {
    throw labelsNotFound(path, error);
  }
}

/**
 * Reads and validates `labels.json` (a path to the file or to its folder), then checks that every image path
 * stays inside the dataset folder once symbolic links are followed. Images that do not exist are not an
 * error here: loading reports them.
 *
 * @throws DatasetError `labels-not-found`, `labels-invalid`
 * @example
 * const entries = await readLabels('examples/blender-cube-sphere');
 * console.log(entries.length, Object.keys(entries[0].meshes));
 */
export async function readLabels(labelsPath: string): Promise<LabelEntry[]> {
  const path = await resolveLabelsPath(labelsPath);
  const text = await readLabelsText(path);
  const entries = parseLabels(text, { file: basename(path) });
  resolveImagePaths(dirname(path), entries, basename(path));
  return entries;
}
