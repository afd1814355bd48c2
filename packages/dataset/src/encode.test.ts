import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, CUBE_SPHERE, THREE_WIDE } from '../test/helpers.js';
import { loadDataset } from './dataset.js';
import { encodeLabels, toImageBox } from './encode.js';
import type { LabelEntry } from './labels.js';
import { buildVocabulary } from './vocabulary.js';

type RawEntry = { image: string; meshes: Record<string, { x1: number; y1: number; x2: number; y2: number }> };

/** Labels computed here from the raw JSON, independently of the package. */
function expected(raw: RawEntry[]) {
  const names = [...new Set(raw.flatMap((e) => Object.keys(e.meshes)))].sort();
  const labels = raw.map((e) => names.map((n) => (n in e.meshes ? 1 : 0)));
  const boxes = raw.map((e) =>
    names.map((n) => {
      const b = e.meshes[n];
      // Image rows grow downward: the top edge is 1 - (Blender's upper y).
      return b ? [b.x1, 1 - b.y2, b.x2, 1 - b.y1].map(Math.fround) : [0, 0, 0, 0];
    }),
  );
  return { names, labels, boxes };
}

/** The seed's bug: index i set for the i-th mesh of the entry, whatever its name. */
function seedEncoding(raw: RawEntry[], names: string[]): number[][] {
  return raw.map((e) => {
    const v = names.map(() => 0);
    Object.keys(e.meshes).forEach((_, i) => {
      v[i] = 1;
    });
    return v;
  });
}

describe('encodeLabels', () => {
  it('sets the vocabulary index of each mesh, not its position in the entry (the seed bug)', () => {
    const entries: LabelEntry[] = [
      { image: 'only-sphere.png', meshes: { Sphere: box() } },
      { image: 'cube-and-sphere.png', meshes: { Sphere: box(), Cube: box() } },
      { image: 'nothing.png', meshes: {} },
    ];
    const vocabulary = ['Can', 'Cube', 'Sphere'];
    const { labels, boxMask } = encodeLabels(entries, vocabulary);
    expect([...labels]).toEqual([0, 0, 1, 0, 1, 1, 0, 0, 0]);
    expect([...boxMask]).toEqual([...labels]);
    // What the seed computed for the same entries: wrong as soon as an image lacks the first class.
    expect(seedEncoding(entries, vocabulary).flat()).toEqual([1, 0, 0, 1, 1, 0, 0, 0, 0]);
  });

  it('converts boxes from Blender (y up) to image coordinates (y down)', () => {
    expect(toImageBox({ x1: 0.2, y1: 0.1, x2: 0.4, y2: 0.3 })).toEqual([0.2, 0.7, 0.4, 0.9]);
    const { boxes } = encodeLabels([{ image: 'a.png', meshes: { B: box(0.2, 0.1, 0.4, 0.3) } }], ['A', 'B']);
    expect([...boxes]).toEqual([0, 0, 0, 0, ...[0.2, 0.7, 0.4, 0.9].map(Math.fround)]);
  });

  it('throws on a mesh outside the vocabulary', () => {
    expect(() => encodeLabels([{ image: 'a.png', meshes: { Torus: box() } }], ['Cube'])).toThrow(
      /"Torus" of a\.png/,
    );
  });

  it.each([
    ['blender-three-wide', THREE_WIDE],
    ['blender-cube-sphere', CUBE_SPHERE],
  ])('matches labels computed independently for %s', async (_, fixture) => {
    const raw = JSON.parse(await readFile(join(fixture, 'labels.json'), 'utf8')) as RawEntry[];
    const want = expected(raw);
    const dataset = await loadDataset(fixture, { cache: false });
    expect(dataset.vocabulary).toEqual(want.names);
    expect(dataset.images).toEqual(raw.map((e) => e.image));
    expect([...dataset.labels]).toEqual(want.labels.flat());
    expect([...dataset.boxMask]).toEqual(want.labels.flat());
    expect([...dataset.boxes]).toEqual(want.boxes.flat(2));
    // The fixture has images that lack the first class, so the seed's encoding really differs on it.
    const seed = seedEncoding(raw, want.names);
    expect(seed.flat()).not.toEqual(want.labels.flat());
    expect(buildVocabulary(raw)).toEqual(want.names);
  });
});
