import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Io, resolvePath } from './_io.js';
import { CliError } from './errors.js';

/** The bundled sample's folder name, under `examples/` of the litter repository. */
export const SAMPLE_NAME = 'blender-cube-sphere';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Where the bundled sample may be: `examples/` of the repository (this file is `packages/cli/{src,dist}/`),
 * or `examples/` inside the package should a release ship it there.
 */
export const sampleCandidates = [
  path.resolve(here, '../../../examples', SAMPLE_NAME),
  path.resolve(here, '../examples', SAMPLE_NAME),
];

/** The bundled sample dataset, or a CliError saying to pass a DATASET (an installed package has no sample). */
export function sampleDataset(): string {
  const found = sampleCandidates.find((dir) => existsSync(path.join(dir, 'labels.json')));
  if (found) return found;
  throw new CliError(
    'missing-sample',
    `the bundled sample examples/${SAMPLE_NAME} is not here (it comes with the litter repository, not the npm package); pass a dataset: litter train path/to/dataset (a folder with labels.json and the PNGs)`,
  );
}

/**
 * A dataset argument: a folder with `labels.json` or the `labels.json` file itself. Missing -> a one-line
 * CliError that names the path as resolved.
 */
export function datasetPath(io: Io, argument: string): string {
  const resolved = resolvePath(io, argument);
  if (!existsSync(resolved)) {
    throw new CliError(
      'missing-dataset',
      `dataset ${resolved} does not exist; pass a folder with labels.json`,
    );
  }
  const isFile = resolved.endsWith('.json');
  if (!isFile && !existsSync(path.join(resolved, 'labels.json'))) {
    throw new CliError(
      'missing-dataset',
      `${resolved} has no labels.json; pass a folder with labels.json and the PNGs`,
    );
  }
  return resolved;
}

/**
 * `runs/2024-05-01T12-30-05` under the user's directory: sortable and safe in every file system; `-2`, `-3`...
 * when that exists.
 */
export function defaultRunDir(io: Io, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replaceAll(':', '-');
  const base = resolvePath(io, path.join('runs', stamp));
  // Two runs started in the same second must not share a directory.
  let dir = base;
  for (let n = 2; existsSync(dir); n++) dir = `${base}-${n}`;
  return dir;
}
