import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, tempDir } from '../test/helpers.js';
import { DatasetError } from './errors.js';
import type { LabelEntry } from './labels.js';
import { buildVocabulary, parseVocabulary, readVocabularyFile } from './vocabulary.js';

const entries: LabelEntry[] = [
  { image: 'a.png', meshes: { Sphere: box(), cube: box() } },
  { image: 'b.png', meshes: {} },
  { image: 'c.png', meshes: { Can: box(), Sphere: box(), Äpfel: box() } },
];

function errorOf(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

describe('buildVocabulary', () => {
  it('sorts by code unit, locale-independent, without duplicates', () => {
    expect(buildVocabulary(entries)).toEqual(['Can', 'Sphere', 'cube', 'Äpfel']);
  });

  it('does not depend on the order of entries or meshes', () => {
    const shuffled = [...entries]
      .reverse()
      .map((e) => ({ ...e, meshes: Object.fromEntries(Object.entries(e.meshes).reverse()) }));
    expect(buildVocabulary(shuffled)).toEqual(buildVocabulary(entries));
  });

  it('keeps a pinned vocabulary as given, with classes the labels lack', () => {
    const pinned = ['Äpfel', 'Torus', 'Sphere', 'Can', 'cube'];
    expect(buildVocabulary(entries, pinned)).toEqual(pinned);
  });

  it('names a label outside the pinned vocabulary', () => {
    const error = errorOf(() => buildVocabulary(entries, ['Sphere', 'Can']));
    expect(error.code).toBe('vocabulary-unknown-label');
    expect(error.problems).toEqual([
      'label "cube" (in 1 image, first a.png) is not in the pinned vocabulary',
      'label "Äpfel" (in 1 image, first c.png) is not in the pinned vocabulary',
    ]);
    expect(error.message).toContain('[Sphere, Can]');
  });

  it('rejects a pinned vocabulary with duplicates, empty names or nothing', () => {
    expect(errorOf(() => buildVocabulary(entries, ['Can', 'Can'])).code).toBe('vocabulary-invalid');
    expect(errorOf(() => buildVocabulary(entries, ['Can', ''])).code).toBe('vocabulary-invalid');
    expect(errorOf(() => buildVocabulary(entries, [])).code).toBe('vocabulary-invalid');
  });
});

describe('vocabulary files', () => {
  it('reads a JSON array or one name per line', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'vocabulary.json'), '["Sphere", "Cube"]\n');
    await writeFile(join(dir, 'classes.txt'), '# classes\nSphere\r\n\n  Cube  \n');
    expect(await readVocabularyFile(join(dir, 'vocabulary.json'))).toEqual(['Sphere', 'Cube']);
    expect(await readVocabularyFile(join(dir, 'classes.txt'))).toEqual(['Sphere', 'Cube']);
  });

  it('rejects broken files clearly', async () => {
    expect(errorOf(() => parseVocabulary('["a", ', 'v.json')).message).toContain('v.json looks like JSON');
    expect(errorOf(() => parseVocabulary('[1, "a"]')).problems).toEqual([
      'entry 0 = 1 is not a non-empty string',
    ]);
    expect(errorOf(() => parseVocabulary('a\nb\na')).problems).toEqual(['"a" is listed twice']);
    const missing = await readVocabularyFile('/nonexistent/vocabulary.json').catch((e: unknown) => e);
    expect((missing as DatasetError).code).toBe('vocabulary-invalid');
  });
});
