// Hostile datasets through the built CLI: each input is built here at test time (nothing large is committed),
// and each run is checked for its exit code, its one-line message naming the culprit, its peak memory and the
// bytes of the user's files afterwards.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pngBomb } from '@litter/dataset/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../../test/built.js';
import { cleanUp, copyDataset, expectOneLine, run, SMALL, snapshot, workDir } from './_hostile.js';

beforeAll(() => ensureBuilt());
afterAll(() => cleanUp());

const editLabels = (dataset: string, edit: (text: string) => string) => {
  const file = path.join(dataset, 'labels.json');
  writeFileSync(file, edit(readFileSync(file, 'utf8')));
};

describe('images that inflate far beyond their header', () => {
  it('cost what a legitimate image costs, and fail naming the image', async () => {
    const dir = workDir();
    const clean = copyDataset(dir, 'clean');
    const bombed = copyDataset(dir, 'bombed');
    // 512 MiB of zlib output behind a 96x72 header (20,808 bytes needed), 3.4 MB per file, in three images.
    const bomb = pngBomb({ width: 96, height: 72, inflated: 512 * 2 ** 20 });
    const bad = ['0-0y-1p.png', '1-2y-0p.png', '2-4y-2p.png'];
    for (const image of bad) writeFileSync(path.join(bombed, image), bomb);
    const before = snapshot(bombed);
    // At the images' own size the built-in decoder reads them; resized, sharp does (it stops at the rows needed).
    const own = ['--width', '96', '--height', '72'];
    const baseline = await run(['cache', 'build', clean, ...own]);
    expect(baseline.code, baseline.stderr).toBe(0);
    const result = await run(['cache', 'build', bombed, ...own]);
    expectOneLine(
      result,
      /3 images of .*labels\.json cannot be loaded: 0-0y-1p\.png: the compressed data inflates beyond the 20808 bytes that its 96x72 header needs/,
    );
    expect(result.stderr).toContain('--skip-bad-images');
    // Before: every decoding thread inflated 512 MiB per image (peak above 1 GiB).
    expect(result.peakMiB).toBeLessThan(baseline.peakMiB + 64);
    const skipped = await run(['cache', 'build', bombed, ...own, '--skip-bad-images', '--json']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(JSON.parse(skipped.stdout).images).toBe(72);
    expect(skipped.peakMiB).toBeLessThan(baseline.peakMiB + 64);
    const resized = await run(['cache', 'build', bombed, '--width', '32', '--height', '24']);
    expect(resized.code, resized.stderr).toBe(0);
    expect(resized.peakMiB).toBeLessThan(baseline.peakMiB + 64);
    const after = snapshot(bombed);
    for (const file of Object.keys(before)) expect(after[file], file).toBe(before[file]);
  });

  it('an image declaring more than 4096x4096 is refused by inspect and train alike', async () => {
    const dataset = copyDataset(workDir());
    writeFileSync(
      path.join(dataset, '0-0y-1p.png'),
      pngBomb({ width: 20000, height: 20000, inflated: 1000 }),
    );
    const inspect = await run(['inspect', dataset, '--json']);
    expect(inspect.code).toBe(1);
    expect(JSON.parse(inspect.stdout).problems).toContain(
      '0-0y-1p.png: it is 20000x20000, more than the 16,777,216 pixels (4096x4096) an image may have',
    );
    const build = await run(['cache', 'build', dataset]);
    expectOneLine(build, /0-0y-1p\.png: it is 20000x20000, more than the 16,777,216 pixels/);
  });
});

describe('names from labels.json', () => {
  it('deeply nested JSON is a labels problem naming the entry, not a stack overflow', async () => {
    const dataset = copyDataset(workDir());
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    editLabels(dataset, (text) => text.replace('"x1": ', `"x1": ${deep}, "x0": `));
    const inspect = await run(['inspect', dataset]);
    expect(inspect.code).toBe(1);
    expect(inspect.stdout).toContain(
      'labels.json entry 0 (0-0y-0p.png): meshes.Can.x1 = [...] is not a number',
    );
    const build = await run(['cache', 'build', dataset]);
    expectOneLine(
      build,
      /labels\.json has 1 problem: labels\.json entry 0 \(0-0y-0p\.png\): meshes\.Can\.x1 = \[\.\.\.\] is not a number/,
    );
  });

  it('escape codes in mesh names reach the terminal as text', async () => {
    const dataset = copyDataset(workDir());
    editLabels(dataset, (text) => text.replaceAll('"Can"', '"Can\\u001b[2J\\u001b]0;owned\\u0007"'));
    const result = await run(['inspect', dataset]);
    expect(result.code, result.stderr).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: they must not be there
    expect(result.stdout + result.stderr).not.toMatch(/[\u001b\u0007]/);
    expect(result.stdout).toContain('Can\\u001b[2J\\u001b]0;owned\\u0007');
  });

  it('a mesh named __proto__ is a class like any other, and a label set named constructor counts', async () => {
    const dir = workDir();
    const dataset = copyDataset(dir);
    editLabels(dataset, (text) =>
      text.replaceAll('"Can"', '"__proto__"').replaceAll('"Cube"', '"constructor"'),
    );
    const inspect = await run(['inspect', dataset, '--json']);
    const counts = Object.values(JSON.parse(inspect.stdout).labelSets) as unknown[];
    expect(counts.every((n) => typeof n === 'number')).toBe(true);
    const out = path.join(dir, 'run');
    const train = await run(['train', dataset, ...SMALL, '--steps', '2', '--out', out]);
    expect(train.code, train.stderr).toBe(0);
    expect(JSON.parse(readFileSync(path.join(out, 'vocabulary.json'), 'utf8'))).toEqual([
      'Sphere',
      '__proto__',
      'constructor',
    ]);
  });

  it('a 100,000-character class name does not stall training or its report', async () => {
    const dir = workDir();
    const dataset = copyDataset(dir);
    editLabels(dataset, (text) => text.replaceAll('"Can"', `"${'x'.repeat(100_000)}"`));
    const out = path.join(dir, 'run');
    // Before: the report's charts took about half an hour and ignored SIGTERM.
    const train = await run(['train', dataset, ...SMALL, '--steps', '2', '--out', out], { seconds: 120 });
    expect(train.code, train.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('x'.repeat(100_000));
  });
});
