import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

/** test/fixtures/blender-three-wide: 96 x 72, classes Can, Cube, Sphere, 75 images, 3 scenes. */
export const THREE_WIDE = fileURLToPath(
  new URL('../../../test/fixtures/blender-three-wide', import.meta.url),
);
/** examples/blender-cube-sphere: 128 x 128, classes Cube, Sphere, 196 images, 4 scenes. */
export const CUBE_SPHERE = fileURLToPath(new URL('../../../examples/blender-cube-sphere', import.meta.url));

const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh temporary folder, removed after the test file. */
export async function tempDir(name = 'litter-dataset-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), name));
  made.push(dir);
  return dir;
}

/**
 * A writable copy of a fixture (so that caches land in a temporary folder), without any cache that another
 * program may have left in the fixture's folder.
 */
export async function copyFixture(fixture: string): Promise<string> {
  const dir = await tempDir();
  await cp(fixture, dir, {
    recursive: true,
    filter: (source) => !basename(source).includes('.litter-cache'),
  });
  return dir;
}

/** Writes `labels.json` into `dir` (any JSON value, or raw text). */
export async function writeLabels(dir: string, labels: unknown): Promise<string> {
  const path = join(dir, 'labels.json');
  await writeFile(path, typeof labels === 'string' ? labels : JSON.stringify(labels, null, 2));
  return path;
}

/** A valid box (Blender frame). */
export const box = (x1 = 0.1, y1 = 0.2, x2 = 0.3, y2 = 0.4) => ({ x1, y1, x2, y2 });
