import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { box, copyFixture, THREE_WIDE, tempDir, writeLabels } from '../test/helpers.js';
import { checkSchema, labelsSchema, parsePlainlyValid } from './_labels.js';
import { loadDataset } from './dataset.js';
import { DatasetError, MAX_LISTED_PROBLEMS } from './errors.js';
import { parseLabels, readLabels } from './labels.js';

/** The DatasetError thrown by `fn`. */
function errorOf(fn: () => unknown): DatasetError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetError);
    return error as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

async function rejectionOf(promise: Promise<unknown>): Promise<DatasetError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  return error as DatasetError;
}

/** One-entry labels files that must be rejected, with the problem reported. */
const INVALID_ENTRIES: [string, unknown, string][] = [
  ['no image', { meshes: {} }, 'labels.json entry 0: image is missing'],
  ['no meshes', { image: 'a.png' }, 'labels.json entry 0 (a.png): meshes is missing'],
  ['a non-string image', { image: 3, meshes: {} }, 'labels.json entry 0: image = 3 is not a string'],
  ['an empty image', { image: '', meshes: {} }, 'labels.json entry 0: image is empty'],
  [
    'meshes as an array',
    { image: 'a.png', meshes: [] },
    'labels.json entry 0 (a.png): meshes = [] is not an object',
  ],
  ['a non-object entry', 7, 'labels.json entry 0: the entry = 7 is not an object'],
  [
    'a non-numeric coordinate',
    { image: 'a.png', meshes: { Cube: { ...box(), y2: '0.4' } } },
    'labels.json entry 0 (a.png): meshes.Cube.y2 = "0.4" is not a number',
  ],
  [
    'a missing coordinate',
    { image: 'a.png', meshes: { Cube: { x1: 0, y1: 0, x2: 1 } } },
    'labels.json entry 0 (a.png): meshes.Cube.y2 is missing',
  ],
  [
    'a negative coordinate',
    { image: 'a.png', meshes: { Cube: { ...box(), y1: -0.1 } } },
    'labels.json entry 0 (a.png): meshes.Cube.y1 = -0.1 is outside [0, 1]',
  ],
  [
    'x1 > x2',
    { image: 'a.png', meshes: { Cube: box(0.6, 0.2, 0.5, 0.4) } },
    'labels.json entry 0 (a.png): meshes.Cube: x1 = 0.6 is greater than x2 = 0.5',
  ],
  [
    'y1 > y2',
    { image: 'a.png', meshes: { Sphere: box(0.1, 0.9, 0.3, 0.4) } },
    'labels.json entry 0 (a.png): meshes.Sphere: y1 = 0.9 is greater than y2 = 0.4',
  ],
  [
    'a box that is not an object',
    { image: 'a.png', meshes: { Cube: 1 } },
    'labels.json entry 0 (a.png): meshes.Cube = 1 is not an object',
  ],
  [
    'an empty mesh name',
    { image: 'a.png', meshes: { '': box() } },
    'labels.json entry 0 (a.png): meshes has a mesh with an empty name',
  ],
  [
    'an absolute path',
    { image: '/etc/passwd', meshes: {} },
    'labels.json entry 0 (/etc/passwd): image "/etc/passwd" is an absolute path; image paths are relative to the folder of labels.json',
  ],
  [
    'a Windows absolute path',
    { image: 'C:\\data\\a.png', meshes: {} },
    'labels.json entry 0 (C:\\data\\a.png): image "C:\\data\\a.png" is an absolute path; image paths are relative to the folder of labels.json',
  ],
  [
    'a path out of the folder',
    { image: 'renders/../../a.png', meshes: {} },
    'labels.json entry 0 (renders/../../a.png): image "renders/../../a.png" leads out of the dataset folder',
  ],
  [
    'a backslash path out of the folder',
    { image: '..\\a.png', meshes: {} },
    'labels.json entry 0 (..\\a.png): image "..\\a.png" leads out of the dataset folder',
  ],
  [
    'a folder',
    { image: 'renders/', meshes: {} },
    'labels.json entry 0 (renders/): image "renders/" is not a file name',
  ],
  [
    'the name ..',
    { image: '..', meshes: {} },
    'labels.json entry 0 (..): image ".." leads out of the dataset folder',
  ],
  ['the name .', { image: '.', meshes: {} }, 'labels.json entry 0 (.): image "." is not a file name'],
];

describe('parseLabels', () => {
  it('parses the fixture, keeping every entry and box', async () => {
    const text = await readFile(join(THREE_WIDE, 'labels.json'), 'utf8');
    const entries = parseLabels(text);
    const raw = JSON.parse(text) as { image: string; meshes: Record<string, object> }[];
    expect(entries).toHaveLength(75);
    expect(entries.map((e) => e.image)).toEqual(raw.map((e) => e.image));
    expect(entries[0]!.meshes).toEqual(raw[0]!.meshes);
  });

  it('accepts an empty mesh set, keys in any order and extra fields', () => {
    const entries = parseLabels(
      JSON.stringify([
        { image: 'a-0.png', meshes: {} },
        { image: 'b-0.png', meshes: { Cube: { y2: 0.4, x2: 0.3, y1: 0.2, x1: 0.1 } }, note: 'x' },
      ]),
    );
    expect(entries[0]!.meshes).toEqual({});
    expect(entries[1]!.meshes.Cube).toEqual(box());
  });

  it('names file, entry, image and field, as in the issue', () => {
    const entries = Array.from({ length: 18 }, (_, i) => ({ image: `i${i}.png`, meshes: { Cube: box() } }));
    entries[17] = { image: '3-4y-2p.png', meshes: { Cube: { ...box(), x1: 1.7 } } };
    const error = errorOf(() => parseLabels(JSON.stringify(entries)));
    expect(error.code).toBe('labels-invalid');
    expect(error.problems).toEqual([
      'labels.json entry 17 (3-4y-2p.png): meshes.Cube.x1 = 1.7 is outside [0, 1]',
    ]);
    expect(error.message).toMatch(/^@litter\/dataset: /);
    expect(error.message).toContain(
      'labels.json entry 17 (3-4y-2p.png): meshes.Cube.x1 = 1.7 is outside [0, 1]',
    );
  });

  it('rejects invalid JSON', () => {
    const error = errorOf(() => parseLabels('[{"image": "a.png",\n "meshes": {}},]', { file: 'x.json' }));
    expect(error.code).toBe('labels-invalid');
    expect(error.message).toContain('x.json is not valid JSON');
  });

  it.each([
    ['an object', '{"image": "a.png"}', 'got an object'],
    ['a number', '5', 'got a number'],
    ['null', 'null', 'got null'],
  ])('rejects a top level that is %s', (_, json, expected) => {
    const error = errorOf(() => parseLabels(json));
    expect(error.code).toBe('labels-invalid');
    expect(error.message).toContain('must be a JSON array');
    expect(error.message).toContain(expected);
  });

  it.each(INVALID_ENTRIES)('rejects %s', (_, entry, problem) => {
    const error = errorOf(() => parseLabels(JSON.stringify([entry])));
    expect(error.code).toBe('labels-invalid');
    expect(error.problems).toEqual([problem]);
  });

  it('takes the common valid shape without zod, with the same result, and leaves the rest to zod', async () => {
    const fixture = JSON.parse(await readFile(join(THREE_WIDE, 'labels.json'), 'utf8')) as unknown[];
    const valid: unknown[][] = [
      fixture,
      [],
      [{ image: 'a.png', meshes: {} }],
      // extra fields (dropped), keys in any order, edges of the ranges, zero-size boxes
      [{ meshes: { Cube: { y2: 1, x2: 1, y1: 0, x1: 0, z: 3 } }, image: 'a.png', note: 'x' }],
      [{ image: 'b c.png', meshes: { 'Cube.001': box(0.5, 0.5, 0.5, 0.5), Sphere: box(-0, 0, 1, 1) } }],
      // names that mean something to plain objects are mesh names like any other
      JSON.parse(
        '[{"image": "a.png", "meshes": {"__proto__": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}, "constructor": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}}]',
      ),
    ];
    for (const raw of valid) {
      const plain = parsePlainlyValid(raw);
      expect(plain).toBeDefined();
      // As JSON: toStrictEqual compares `constructor` properties, which a mesh named so has.
      expect(JSON.stringify(plain)).toBe(JSON.stringify(checkSchema(raw, 0, raw, 'labels.json').entries));
      const fourCoordinates = (meshes: Record<string, Record<string, unknown>>) =>
        Object.entries(meshes).map(([name, { x1, y1, x2, y2 }]) => [name, { x1, y1, x2, y2 }]);
      expect(JSON.stringify(plain!.map((e) => Object.entries(e.meshes)))).toBe(
        JSON.stringify(
          (raw as { meshes: Record<string, Record<string, unknown>> }[]).map((e) =>
            fourCoordinates(e.meshes),
          ),
        ),
      );

      expect(plain!.map((e) => Object.keys(e.meshes))).toEqual(
        (raw as { meshes: object }[]).map((e) => Object.keys(e.meshes)),
      );
    }
    // Everything the schema rejects is left to zod, and so are shapes it would treat specially.
    for (const [, entry] of INVALID_ENTRIES) {
      if (!labelsSchema.safeParse([entry]).success) expect(parsePlainlyValid([entry])).toBeUndefined();
    }
    const special = [
      [{ image: 'a.png', meshes: { [Symbol('s')]: box() } }],
      [{ image: 'a.png', meshes: new Map() }],
      [[]],
      [{ image: 'a.png', meshes: { Cube: { ...box(), x1: Number.NaN } } }],
    ];
    for (const raw of special) expect(parsePlainlyValid(raw)).toBeUndefined();
  });

  it('keeps meshes named __proto__, constructor or toString, and checks their boxes', async () => {
    const text = (x1: number) =>
      `[{"image": "a.png", "meshes": {"__proto__": {"x1": ${x1}, "y1": 0, "x2": 1, "y2": 1}, "constructor": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}, "toString": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}}]`;
    const [entry] = parseLabels(text(0.5));
    expect(Object.keys(entry!.meshes)).toEqual(['__proto__', 'constructor', 'toString']);
    expect({ ...Object.getOwnPropertyDescriptor(entry!.meshes, '__proto__')?.value }).toEqual({
      x1: 0.5,
      y1: 0,
      x2: 1,
      y2: 1,
    });
    const error = errorOf(() => parseLabels(text(1.5)));
    expect(error.problems).toEqual([
      'labels.json entry 0 (a.png): meshes.__proto__.x1 = 1.5 is outside [0, 1]',
    ]);
    // Through loadDataset: the three are classes like any other.
    const dir = await copyFixture(THREE_WIDE);
    const fixture = await readFile(join(dir, 'labels.json'), 'utf8');
    await writeFile(
      join(dir, 'labels.json'),
      fixture.replaceAll('"Can"', '"__proto__"').replaceAll('"Cube"', '"constructor"'),
    );
    const renamed = await loadDataset(dir, { cache: false });
    const original = await loadDataset(THREE_WIDE, { cache: false });
    expect(original.vocabulary).toEqual(['Can', 'Cube', 'Sphere']);
    expect(renamed.vocabulary).toEqual(['Sphere', '__proto__', 'constructor']);
    const count = (d: typeof original, c: number) =>
      Array.from({ length: d.size }, (_, n) => d.labels[n * 3 + c]!).reduce((a, b) => a + b, 0);
    expect([count(renamed, 1), count(renamed, 2), count(renamed, 0)]).toEqual([
      count(original, 0),
      count(original, 1),
      count(original, 2),
    ]);
  });

  it('rejects duplicate images, also when written differently', () => {
    const error = errorOf(() =>
      parseLabels(
        JSON.stringify([
          { image: 'a.png', meshes: {} },
          { image: 'b.png', meshes: {} },
          { image: './a.png', meshes: {} },
        ]),
      ),
    );
    expect(error.problems).toEqual([
      'labels.json entry 2 (./a.png): image "./a.png" is listed twice (also entry 0)',
    ]);
    const plain = errorOf(() =>
      parseLabels(
        JSON.stringify([
          { image: 'renders/a.png', meshes: {} },
          { image: 'b.png', meshes: {} },
          { image: 'b.png', meshes: {} },
          { image: 'renders//a.png', meshes: {} },
        ]),
      ),
    );
    expect(plain.problems).toEqual([
      'labels.json entry 2 (b.png): image "b.png" is listed twice (also entry 1)',
      'labels.json entry 3 (renders//a.png): image "renders//a.png" is listed twice (also entry 0)',
    ]);
  });

  it('reports every problem at once, in entry order', () => {
    const error = errorOf(() =>
      parseLabels(
        JSON.stringify([
          { image: 'ok.png', meshes: { Cube: box() } },
          { image: 'b.png', meshes: { Cube: { ...box(), x2: 2 }, Sphere: { ...box(), y1: 'x' } } },
          { meshes: {} },
          { image: 'ok.png', meshes: {} },
        ]),
      ),
    );
    expect(error.problems).toEqual([
      'labels.json entry 1 (b.png): meshes.Cube.x2 = 2 is outside [0, 1]',
      'labels.json entry 1 (b.png): meshes.Sphere.y1 = "x" is not a number',
      'labels.json entry 2: image is missing',
      'labels.json entry 3 (ok.png): image "ok.png" is listed twice (also entry 0)',
    ]);
    expect(error.message).toContain('has 4 problems');
  });

  it('caps the listed problems and says how many more there are', () => {
    const entries = Array.from({ length: 30 }, (_, i) => ({
      image: `${i}.png`,
      meshes: { Cube: { ...box(), x1: 5 } },
    }));
    const error = errorOf(() => parseLabels(JSON.stringify(entries)));
    expect(error.problems).toHaveLength(30);
    expect(error.message).toContain(`... and ${30 - MAX_LISTED_PROBLEMS} more`);
    expect(error.message).toContain('entry 19 (19.png)');
    expect(error.message).not.toContain('entry 20 (20.png)');
  });
});

describe('readLabels', () => {
  it('reads a folder or the file itself', async () => {
    expect(await readLabels(THREE_WIDE)).toHaveLength(75);
    expect(await readLabels(join(THREE_WIDE, 'labels.json'))).toHaveLength(75);
  });

  it('says when there is no labels.json', async () => {
    const dir = await tempDir();
    const error = await rejectionOf(readLabels(dir));
    expect(error.code).toBe('labels-not-found');
    expect(error.message).toContain(join(dir, 'labels.json'));
    expect((await rejectionOf(readLabels(join(dir, 'nope')))).code).toBe('labels-not-found');
  });

  it('rejects images that symbolic links lead out of the folder, and accepts links inside it', async () => {
    const outside = await tempDir();
    await writeFile(join(outside, 'secret.png'), 'x');
    await mkdir(join(outside, 'renders'));
    await writeFile(join(outside, 'renders', 'b.png'), 'x');
    const dir = await tempDir();
    await writeFile(join(dir, 'real.png'), 'x');
    await symlink(join(outside, 'secret.png'), join(dir, 'a.png'));
    await symlink(join(outside, 'renders'), join(dir, 'linked'));
    await symlink(join(dir, 'real.png'), join(dir, 'inside.png'));
    await writeLabels(dir, [
      { image: 'a.png', meshes: {} },
      { image: 'linked/b.png', meshes: {} },
      { image: 'inside.png', meshes: {} },
      { image: 'missing.png', meshes: {} },
    ]);
    const error = await rejectionOf(readLabels(dir));
    expect(error.code).toBe('labels-invalid');
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(
      /^labels\.json entry 0 \(a\.png\): image "a\.png" leads to .*secret\.png, outside the dataset folder/,
    );
    expect(error.problems[1]).toMatch(
      /^labels\.json entry 1 \(linked\/b\.png\): image "linked\/b\.png" leads to .*b\.png, outside/,
    );
  });
});

describe('loadDataset with bad labels', () => {
  it('throws, does not crash, and writes no cache', async () => {
    const cases: unknown[] = [
      '{ not json',
      { image: 'a.png' },
      [{ image: 'a.png', meshes: { Cube: { ...box(), x1: 1.5 } } }],
      [{ image: '../a.png', meshes: {} }],
      [{ image: 'a.png' }],
      [],
    ];
    for (const labels of cases) {
      const dir = await tempDir();
      await writeLabels(dir, labels);
      const error = await rejectionOf(loadDataset(dir));
      expect(['labels-invalid', 'no-images']).toContain(error.code);
      expect(await readdir(dir)).toEqual(['labels.json']);
    }
  });

  it('rejects images that symbolic links lead out of the folder, on decoding threads too, without reading them', async () => {
    ensureBuilt(); // the decoding threads run the built package
    for (const workerThreads of [false, true]) {
      const outside = await tempDir();
      await copyFile(join(THREE_WIDE, '0-0y-0p.png'), join(outside, 'secret.png'));
      const dir = await copyFixture(THREE_WIDE);
      await rm(join(dir, '1-1y-1p.png'));
      await symlink(join(outside, 'secret.png'), join(dir, '1-1y-1p.png'));
      const error = await rejectionOf(loadDataset(dir, { workerThreads }));
      expect(error.code).toBe('labels-invalid');
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(
        /^labels\.json entry \d+ \(1-1y-1p\.png\): image "1-1y-1p\.png" leads to .*secret\.png, outside the dataset folder/,
      );
      expect((await readdir(dir)).filter((f) => f.includes('litter-cache'))).toEqual([]);
    }
  });

  it('does not hang on a FIFO named as an image', async (context) => {
    const dir = await copyFixture(THREE_WIDE);
    await rm(join(dir, '2-2y-2p.png'));
    if (spawnSync('mkfifo', [join(dir, '2-2y-2p.png')]).status !== 0) context.skip();
    const error = await rejectionOf(loadDataset(dir, { cache: false }));
    expect(error.code).toBe('image-corrupt');
    expect(error.problems).toEqual(['2-2y-2p.png: it is not a regular file']);
  });
});
