import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { box, copyFixture, THREE_WIDE, tempDir, writeLabels } from '../test/helpers.js';
import { CorruptImageError, decodePngInto } from './_png.js';
import { loadDataset } from './dataset.js';
import { DatasetError } from './errors.js';
import { decodeImage, imageSize, imageSizeProblem, MAX_IMAGE_PIXELS } from './images.js';
import { parseLabels } from './labels.js';
import { GAMA, pngBomb } from './testing.js';
import { parseVocabulary } from './vocabulary.js';

const target = (width: number, height: number) => ({
  width,
  height,
  resize: false,
  background: [0, 0, 0] as const,
});

async function rejectionOf(promise: Promise<unknown>): Promise<DatasetError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  return error as DatasetError;
}

describe('a PNG whose data inflates beyond its header', () => {
  // 32x24 needs 24 * (1 + 32 * 3) = 2,328 bytes; the data inflates to 256 MiB.
  const bomb = pngBomb({ width: 32, height: 24, inflated: 256 * 2 ** 20 });

  it('stops inflating at the size the header needs (built-in decoder)', () => {
    const out = new Uint8Array(32 * 24 * 3);
    const started = performance.now();
    expect(() => decodePngInto(bomb, out, 0, target(32, 24))).toThrow(CorruptImageError);
    expect(() => decodePngInto(bomb, out, 0, target(32, 24))).toThrow(
      'the compressed data inflates beyond the 2328 bytes that its 32x24 header needs',
    );
    // Inflating all 256 MiB takes a second or more; stopping at 2 KB takes microseconds. Generous bound.
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('fails that image in every decoding thread, naming it, and skips it with skipBadImages', async () => {
    ensureBuilt(); // the decoding threads run the built package
    const dir = await copyFixture(THREE_WIDE);
    const original = JSON.parse(await readFile(join(dir, 'labels.json'), 'utf8')) as { image: string }[];
    // 75 images at 96x72: replace three of them, spread over the threads' chunks.
    const wide = pngBomb({ width: 96, height: 72, inflated: 256 * 2 ** 20 });
    const bad = [original[1]!.image, original[40]!.image, original[74]!.image];
    for (const image of bad) await writeFile(join(dir, image), wide);
    for (const workerThreads of [true, false]) {
      const error = await rejectionOf(loadDataset(dir, { cache: false, workerThreads, concurrency: 3 }));
      expect(error.code).toBe('image-corrupt');
      expect(error.problems).toEqual(
        bad.map(
          (image) =>
            `${image}: the compressed data inflates beyond the 20808 bytes that its 96x72 header needs`,
        ),
      );
    }
    const skipped = await loadDataset(dir, { cache: false, workerThreads: true, skipBadImages: true });
    expect(skipped.size).toBe(72);
  });

  it('costs sharp no more than the header size either (a PNG the built-in decoder passes on)', async () => {
    const withGamma = pngBomb({ width: 32, height: 24, inflated: 256 * 2 ** 20, chunks: [GAMA] });
    const out = new Uint8Array(32 * 24 * 3);
    expect(decodePngInto(withGamma, out, 0, target(32, 24)).status).toBe('fallback');
    const started = performance.now();
    expect((await decodeImage(withGamma)).length).toBe(32 * 24 * 3);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('images larger than litter decodes', () => {
  it('are refused from their declared size, before any data is inflated or allocated', async () => {
    expect(MAX_IMAGE_PIXELS).toBe(4096 * 4096);
    // 5000 x 5000 declared, 1 KB of data.
    const huge = pngBomb({ width: 5000, height: 5000, inflated: 1000 });
    const out = new Uint8Array(3);
    expect(() => decodePngInto(huge, out, 0, target(5000, 5000))).toThrow(
      'it is 5000x5000, more than the 16,777,216 pixels (4096x4096) an image may have',
    );
    const error = await rejectionOf(decodeImage(huge, { width: 32, height: 32 }));
    expect(error.code).toBe('image-corrupt');
    expect(error.message).toContain('more than the 16,777,216 pixels');
    // imageSize still says what the header says, and imageSizeProblem says why it is refused (inspect uses it).
    expect(await imageSize(huge)).toEqual({ width: 5000, height: 5000 });
    expect(imageSizeProblem(5000, 5000)).toContain('more than the 16,777,216 pixels');
    expect(imageSizeProblem(4096, 4096)).toBeUndefined();
  });

  it('fail on their own in a dataset (the others set the size), also through sharp (JPEG)', async () => {
    const dir = await tempDir();
    const small = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const bigJpeg = await sharp({ create: { width: 4100, height: 4100, channels: 3, background: '#808080' } })
      .jpeg({ quality: 10 })
      .toBuffer();
    await writeFile(join(dir, 'a-1.png'), pngBomb({ width: 9000, height: 9000, inflated: 1000 }));
    await writeFile(join(dir, 'a-2.png'), small);
    await writeFile(join(dir, 'b-1.jpg'), bigJpeg);
    await writeLabels(
      dir,
      ['a-1.png', 'a-2.png', 'b-1.jpg'].map((image) => ({ image, meshes: { Cube: box() } })),
    );
    const error = await rejectionOf(loadDataset(dir, { cache: false }));
    expect(error.problems).toEqual([
      'a-1.png: it is 9000x9000, more than the 16,777,216 pixels (4096x4096) an image may have',
      expect.stringMatching(/^b-1\.jpg: cannot be decoded \(.*pixel limit/),
    ]);
    const resized = await rejectionOf(loadDataset(dir, { cache: false, width: 16, height: 16 }));
    expect(resized.problems.map((p) => p.split(':')[0])).toEqual(['a-1.png', 'b-1.jpg']);
  });
});

describe('deeply nested JSON', () => {
  it('in labels.json or a vocabulary is a labels problem, not a stack overflow', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const labels = `[{"image": "a.png", "meshes": {"Cube": {"x1": ${deep}, "y1": 0, "x2": 1, "y2": 1}}}]`;
    let error: unknown;
    try {
      parseLabels(labels);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).problems).toEqual([
      'labels.json entry 0 (a.png): meshes.Cube.x1 = [...] is not a number',
    ]);
    expect(() => parseVocabulary(`[${deep}]`)).toThrow('entry 0 = [...] is not a non-empty string');
  });
});
