import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryIo } from '../test/_memory-io.js';
import { annotatedPaths, LabelLookup, toPixels } from './_annotate.js';
import { ExitCode } from './errors.js';
import { main } from './main.js';

const work = mkdtempSync(path.join(tmpdir(), 'litter-annotate-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('toPixels', () => {
  it('scales a normalised box to the image, top-left origin, to a tenth of a pixel', () => {
    expect(toPixels({ x1: 0.25, y1: 0.5, x2: 0.75, y2: 1 }, { width: 96, height: 72 })).toEqual({
      x1: 24,
      y1: 36,
      x2: 72,
      y2: 72,
    });
    expect(toPixels({ x1: 0.123456, y1: 0, x2: 1 / 3, y2: 0.1 }, { width: 100, height: 10 })).toEqual({
      x1: 12.3,
      y1: 0,
      x2: 33.3,
      y2: 1,
    });
  });

  it('keeps boxes inside the image', () => {
    expect(toPixels({ x1: -0.1, y1: 0, x2: 1.2, y2: 1 }, { width: 50, height: 40 })).toEqual({
      x1: 0,
      y1: 0,
      x2: 50,
      y2: 40,
    });
  });
});

describe('annotatedPaths', () => {
  it('names each output after its image, as PNG, numbering repeated names', () => {
    expect(annotatedPaths('/out', ['/a/x.png', '/b/x.png', '/c/y.jpg', '/d/x.jpeg'], () => false)).toEqual([
      '/out/x.png',
      '/out/x-2.png',
      '/out/y.png',
      '/out/x-3.png',
    ]);
  });

  it('never names a file that exists already, nor one of the inputs', () => {
    const existing = new Set(['/out/x.png', '/out/x-2.png', '/out/y.png']);
    expect(annotatedPaths('/out', ['/out/x.png', '/a/x.png', '/b/y.png'], (f) => existing.has(f))).toEqual([
      '/out/x-3.png',
      '/out/x-4.png',
      '/out/y-2.png',
    ]);
    // The input itself, in DIR, is never the output (even where it does not exist: it is still an input).
    expect(annotatedPaths('/out', ['/out/z.png'], () => false)).toEqual(['/out/z-2.png']);
  });
});

describe('LabelLookup', () => {
  const dataset = path.join(work, 'set');
  mkdirSync(path.join(dataset, 'sub'), { recursive: true });
  // Blender boxes: y up. In the image (y down) Cube's y1 = 1 - 0.8 = 0.2, y2 = 1 - 0.6 = 0.4.
  writeFileSync(
    path.join(dataset, 'labels.json'),
    JSON.stringify([
      { image: 'sub/a.png', meshes: { Cube: { x1: 0.1, y1: 0.6, x2: 0.3, y2: 0.8 } } },
      { image: 'b.png', meshes: {} },
    ]),
  );

  it('finds an image in the labels.json next to it, boxes in image coordinates (y down)', async () => {
    const lookup = new LabelLookup(memoryIo().io, undefined);
    // sub/a.png has no labels.json next to it
    expect(await lookup.trueBoxes(path.join(dataset, 'sub', 'a.png'))).toBeUndefined();
    expect(await lookup.trueBoxes(path.join(dataset, 'b.png'))).toEqual([]);
    expect(await lookup.trueBoxes(path.join(dataset, 'c.png'))).toBeUndefined();
  });

  it('reads a labels file given with --labels, entries relative to it', async () => {
    const lookup = new LabelLookup(memoryIo().io, path.join(dataset, 'labels.json'));
    const [cube] = (await lookup.trueBoxes(path.join(dataset, 'sub', 'a.png'))) ?? [];
    expect(cube?.name).toBe('Cube');
    const [x1, y1, x2, y2] = cube!.box;
    expect([x1, x2]).toEqual([0.1, 0.3]);
    expect(y1).toBeCloseTo(0.2, 10);
    expect(y2).toBeCloseTo(0.4, 10);
  });

  it('skips a broken labels.json next to the images with a warning, and fails on a broken --labels', async () => {
    const broken = path.join(work, 'broken');
    mkdirSync(broken);
    writeFileSync(path.join(broken, 'labels.json'), '{ not json');
    const capture = memoryIo();
    expect(
      await new LabelLookup(capture.io, undefined).trueBoxes(path.join(broken, 'x.png')),
    ).toBeUndefined();
    expect(capture.stderr).toMatch(
      /^@litter\/cli: .*labels\.json cannot be read .*drawn without true boxes\n$/,
    );
    await expect(
      new LabelLookup(memoryIo().io, path.join(broken, 'labels.json')).trueBoxes(path.join(broken, 'x.png')),
    ).rejects.toMatchObject({ code: 'labels-invalid' });
  });
});

describe('the box flags', () => {
  it.each([
    [['train', '--box-loss-weight', '2'], /--box-loss-weight needs --boxes/],
    [['train', '--boxes', '--box-loss-weight', '0'], /--box-loss-weight must be a number > 0/],
    [['predict', 'run', 'a.png', '--labels', 'labels.json'], /--labels is for the true boxes of --annotate/],
    [['report'], /Missing required positional argument: RUN/],
  ])('exits 2 for %j', async (argv, message) => {
    const capture = memoryIo({ cwd: work });
    writeFileSync(path.join(work, 'a.png'), '');
    mkdirSync(path.join(work, 'run'), { recursive: true });
    expect(await main(argv, capture.io)).toBe(ExitCode.usage);
    expect(capture.stderr.trimEnd().split('\n').at(-1)).toMatch(message);
  });

  it('litter report needs a run directory', async () => {
    const capture = memoryIo({ cwd: work });
    expect(await main(['report', 'set'], capture.io)).toBe(ExitCode.input);
    expect(capture.stderr).toMatch(/set is not a run directory \(no config\.json\)/);
  });
});
