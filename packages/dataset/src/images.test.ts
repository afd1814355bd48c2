import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { copyFile, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { box, CUBE_SPHERE, copyFixture, THREE_WIDE, tempDir, writeLabels } from '../test/helpers.js';
import { crc32 as pngCrc32 } from './_crc32.js';
import { DecodePool, threadsFor } from './_decode.js';
import { decodePngInto, paeth } from './_png.js';
import { type Dataset, loadDataset } from './dataset.js';
import { DatasetError } from './errors.js';
import { decodeImage, imageSize } from './images.js';

const W = 96;
const H = 72;
const SOURCE = join(THREE_WIDE, '0-0y-0p.png');

async function rejectionOf(promise: Promise<unknown>): Promise<DatasetError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  return error as DatasetError;
}

/** An 8-bit RGB PNG of `pixels` whose row y uses filter `filterOf(y)` (0 none, 1 Sub, 2 Up, 3 Average, 4 Paeth). */
function encodePng(
  pixels: Uint8Array,
  width: number,
  height: number,
  filterOf: (y: number) => number,
  /** Lengths of the IDAT chunks to cut the compressed data into (the last one takes the rest). */
  idatSplit: readonly number[] = [],
): Buffer {
  const stride = width * 3;
  const raw = Buffer.alloc(height * (stride + 1));
  const at = (y: number, i: number) => (y < 0 || i < 0 ? 0 : pixels[y * stride + i]!);
  for (let y = 0; y < height; y++) {
    const filter = filterOf(y);
    raw[y * (stride + 1)] = filter;
    for (let i = 0; i < stride; i++) {
      const [a, b, c] = [at(y, i - 3), at(y - 1, i), at(y - 1, i - 3)];
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      const paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      raw[y * (stride + 1) + 1 + i] = (at(y, i) - predictor) & 255;
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(pngCrc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const compressed = deflateSync(raw);
  const idat: Buffer[] = [];
  let start = 0;
  for (const length of idatSplit) {
    idat.push(chunk('IDAT', compressed.subarray(start, start + length)));
    start += length;
  }
  idat.push(chunk('IDAT', compressed.subarray(start)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...idat,
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Image n of a dataset. */
const imageOf = (d: Dataset, n: number) =>
  d.pixels.subarray(n * d.height * d.width * 3, (n + 1) * d.height * d.width * 3);

describe('pixel layout', () => {
  it('is HWC, height first: pixel (row r, column c) of the 96x72 fixture matches sharp', async () => {
    const dataset = await loadDataset(THREE_WIDE, { cache: false, workerThreads: false });
    expect([dataset.width, dataset.height, dataset.channels]).toEqual([W, H, 3]);
    expect(dataset.pixels.length).toBe(75 * H * W * 3);
    const names = ['0-0y-0p.png', '1-2y-3p.png', '2-4y-4p.png'];
    for (const name of names) {
      const n = dataset.images.indexOf(name);
      const { data, info } = await sharp(join(THREE_WIDE, name)).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([W, H, 3]);
      for (const [r, c] of [
        [0, 0],
        [0, W - 1],
        [H - 1, 0],
        [H - 1, W - 1],
        [10, 80],
        [71, 5],
        [40, 90],
      ] as const) {
        for (let ch = 0; ch < 3; ch++) {
          expect(dataset.pixels[((n * H + r) * W + c) * 3 + ch]).toBe(data[(r * info.width + c) * 3 + ch]);
        }
      }
      // ... and the whole image, byte for byte.
      expect(Buffer.from(imageOf(dataset, n)).equals(data)).toBe(true);
    }
  });

  it.each([
    ['blender-three-wide', THREE_WIDE],
    ['blender-cube-sphere', CUBE_SPHERE],
  ])('built-in PNG decoding equals sharp on every image of %s', async (_, fixture) => {
    const names = (await readdir(fixture)).filter((f) => f.endsWith('.png'));
    for (const name of names) {
      const bytes = await readFile(join(fixture, name));
      const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      const out = new Uint8Array(info.width * info.height * 3);
      const result = decodePngInto(bytes, out, 0, {
        width: info.width,
        height: info.height,
        resize: false,
        background: [0, 0, 0],
      });
      expect(result.status).toBe('ok');
      expect(Buffer.from(out).equals(data)).toBe(true);
    }
  });

  it('undoes every PNG row filter, at aligned and unaligned widths and output offsets', async () => {
    // Rows use filters 0..4 in turn (libpng's encoder picks them adaptively, so fixtures may miss some); the
    // widths and offsets cover both the word-wise and the byte-wise path of the Up filter.
    for (const width of [8, 7, 1]) {
      const height = 11;
      const pixels = randomBytes(width * height * 3);
      const png = encodePng(pixels, width, height, (y) => y % 5);
      const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect(data.equals(pixels)).toBe(true); // the test's encoder is right
      for (const offset of [0, 1, 4]) {
        const out = new Uint8Array(offset + pixels.length);
        const target = { width, height, resize: false, background: [0, 0, 0] as const };
        expect(decodePngInto(png, out, offset, target).status).toBe('ok');
        expect(Buffer.from(out.subarray(offset)).equals(pixels)).toBe(true);
      }
    }
  });

  it('predicts Paeth rows as the PNG specification says, for every neighbour triple', () => {
    let wrong = 0;
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        for (let c = 0; c < 256; c++) {
          const p = a + b - c;
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
          if (paeth(a, b, c) !== (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) wrong++;
        }
      }
    }
    expect(wrong).toBe(0);
  });

  it('joins image data split over several IDAT chunks (empty ones too), as sharp does', async () => {
    const [width, height] = [9, 6];
    const pixels = randomBytes(width * height * 3);
    const whole = encodePng(pixels, width, height, (y) => y % 5);
    const compressedLength = whole.readUInt32BE(33); // the single IDAT chunk's length
    for (const split of [[1], [0, 5, 0], [compressedLength - 1], [3, 3, 3, 3]]) {
      const png = encodePng(pixels, width, height, (y) => y % 5, split);
      const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect(data.equals(pixels)).toBe(true);
      const out = new Uint8Array(pixels.length);
      const target = { width, height, resize: false, background: [0, 0, 0] as const };
      expect(decodePngInto(png, out, 0, target).status).toBe('ok');
      expect(Buffer.from(out).equals(data)).toBe(true);
    }
    // A bigger image after a smaller one (the joining buffer is reused and grows).
    const big = randomBytes(40 * 30 * 3);
    const png = encodePng(big, 40, 30, (y) => y % 5, [7, 100, 1000]);
    const out = new Uint8Array(big.length);
    const target = { width: 40, height: 30, resize: false, background: [0, 0, 0] as const };
    expect(decodePngInto(png, out, 0, target).status).toBe('ok');
    expect(Buffer.from(out).equals(big)).toBe(true);
  });

  it('gives the same pixels on worker threads and in this thread', async () => {
    ensureBuilt(); // the decoding threads run the built package
    const threads = await loadDataset(THREE_WIDE, { cache: false, workerThreads: true, concurrency: 2 });
    const inline = await loadDataset(THREE_WIDE, { cache: false, workerThreads: false });
    expect(Buffer.from(threads.pixels).equals(Buffer.from(inline.pixels))).toBe(true);
  });

  it('decodes on the built decoding threads under vitest too, not in this thread', async () => {
    ensureBuilt();
    // The built worker script is there, so loadDataset starts threads (without it, it decodes in this thread).
    expect(threadsFor(1000, 4, 'auto')).toBe(3);
    const names = (await readdir(THREE_WIDE)).filter((name) => name.endsWith('.png')).sort();
    const jobs = names.map((image, index) => ({ index, image, path: join(THREE_WIDE, image) }));
    const target = { width: W, height: H, resize: false, background: [0, 0, 0] as const };
    const pixels = new Uint8Array(new SharedArrayBuffer(jobs.length * W * H * 3));
    // A pool decodes only on its threads: every result below came from one.
    const pool = DecodePool.start(2)!;
    const results: string[] = [];
    const chunks = Array.from({ length: Math.ceil(jobs.length / 16) }, (_, i) =>
      jobs.slice(i * 16, i * 16 + 16),
    );
    const take = () => chunks.shift();
    try {
      await pool.run(take, pixels, target, false, realpathSync(THREE_WIDE), (job, result) => {
        results[job.index] = result.status;
      });
    } finally {
      await pool.close();
    }
    expect(results).toEqual(jobs.map(() => 'ok'));
    const inThread = new Uint8Array(W * H * 3);
    for (const job of jobs) {
      expect(decodePngInto(await readFile(job.path), inThread, 0, target).status).toBe('ok');
      const decoded = pixels.subarray(job.index * W * H * 3, (job.index + 1) * W * H * 3);
      expect(Buffer.from(decoded).equals(inThread), job.image).toBe(true);
    }
  });
});

describe('image formats', () => {
  let dir: string;
  let original: Buffer;
  let alpha: Uint8Array;
  let gray: Buffer;

  beforeAll(async () => {
    dir = await tempDir();
    original = await sharp(SOURCE).raw().toBuffer();
    gray = await sharp(SOURCE).toColourspace('b-w').raw().toBuffer();
    // RGBA with every alpha value: original colours, alpha varying over the image.
    alpha = new Uint8Array(W * H);
    const rgba = Buffer.alloc(W * H * 4);
    const grayAlpha = Buffer.alloc(W * H * 2);
    for (let i = 0; i < W * H; i++) {
      alpha[i] = (i * 7 + (i >> 5)) & 255;
      rgba.set(original.subarray(i * 3, i * 3 + 3), i * 4);
      rgba[i * 4 + 3] = alpha[i]!;
      grayAlpha[i * 2] = gray[i]!;
      grayAlpha[i * 2 + 1] = alpha[i]!;
    }
    const raw = { raw: { width: W, height: H, channels: 3 as const } };
    await sharp(original, raw).png().toFile(join(dir, 'rgb8.png'));
    await sharp(original, raw).toColourspace('rgb16').png().toFile(join(dir, 'rgb16.png'));
    await sharp(gray, { raw: { width: W, height: H, channels: 1 } })
      .png()
      .toFile(join(dir, 'gray8.png'));
    await sharp(gray, { raw: { width: W, height: H, channels: 1 } })
      .toColourspace('grey16')
      .png()
      .toFile(join(dir, 'gray16.png'));
    await sharp(original, raw)
      .png({ palette: true, colours: 256, dither: 0 })
      .toFile(join(dir, 'palette.png'));
    await sharp(rgba, { raw: { width: W, height: H, channels: 4 } })
      .png()
      .toFile(join(dir, 'rgba.png'));
    await sharp(rgba, { raw: { width: W, height: H, channels: 4 } })
      .png({ progressive: true })
      .toFile(join(dir, 'rgba-interlaced.png'));
    await sharp(grayAlpha, { raw: { width: W, height: H, channels: 2 } })
      .png()
      .toFile(join(dir, 'gray-alpha.png'));
    await sharp(original, raw).jpeg({ quality: 95 }).toFile(join(dir, 'photo.jpg'));
    await sharp(original, raw).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(join(dir, 'cmyk.jpg'));
    const names = [
      'rgb8.png',
      'rgb16.png',
      'gray8.png',
      'gray16.png',
      'palette.png',
      'rgba.png',
      'rgba-interlaced.png',
      'gray-alpha.png',
      'photo.jpg',
      'cmyk.jpg',
    ];
    await writeLabels(
      dir,
      names.map((image) => ({ image, meshes: { Cube: box() } })),
    );
  });

  /** Loads the variants with a background; returns name -> pixels. */
  async function load(background?: 'white') {
    const dataset = await loadDataset(dir, { cache: false, ...(background ? { background } : {}) });
    return new Map(dataset.images.map((name, n) => [name, Buffer.from(imageOf(dataset, n))]));
  }

  /** What flattening onto `bg` gives, computed here: floor((c * a + bg * (255 - a)) / 255). */
  function flattened(colour: (i: number, ch: number) => number, bg: number): Buffer {
    const out = Buffer.alloc(W * H * 3);
    for (let i = 0; i < W * H; i++) {
      const a = alpha[i]!;
      for (let ch = 0; ch < 3; ch++) out[i * 3 + ch] = Math.floor((colour(i, ch) * a + bg * (255 - a)) / 255);
    }
    return out;
  }

  it('reads 8 and 16 bit RGB alike', async () => {
    const images = await load();
    expect(images.get('rgb8.png')!.equals(original)).toBe(true);
    expect(images.get('rgb16.png')!.equals(original)).toBe(true);
  });

  it('expands grayscale (8 and 16 bit) to three equal channels', async () => {
    const images = await load();
    const expected = Buffer.alloc(W * H * 3);
    for (let i = 0; i < W * H; i++) expected.fill(gray[i]!, i * 3, i * 3 + 3);
    expect(images.get('gray8.png')!.equals(expected)).toBe(true);
    expect(images.get('gray16.png')!.equals(expected)).toBe(true);
  });

  it('reads palette PNGs and JPEG (RGB and CMYK) close to the original', async () => {
    const images = await load();
    for (const [name, tolerance] of [
      ['palette.png', 4],
      ['photo.jpg', 3],
      // Through a CMYK profile and back: about 3 levels (libvips' default pipeline gave 9.5).
      ['cmyk.jpg', 4],
    ] as const) {
      const pixels = images.get(name)!;
      expect(pixels.length).toBe(W * H * 3);
      let sum = 0;
      for (let i = 0; i < pixels.length; i++) sum += Math.abs(pixels[i]! - original[i]!);
      expect(sum / pixels.length).toBeLessThan(tolerance);
    }
  });

  it('flattens RGBA and gray+alpha onto black by default and onto another background when asked', async () => {
    // One RGBA file goes through the built-in decoder, the interlaced one through sharp: both must agree.
    const target = { width: W, height: H, resize: false, background: [0, 0, 0] as const };
    const scratch = new Uint8Array(W * H * 3);
    expect(decodePngInto(await readFile(join(dir, 'rgba.png')), scratch, 0, target).status).toBe('ok');
    expect(decodePngInto(await readFile(join(dir, 'rgba-interlaced.png')), scratch, 0, target).status).toBe(
      'fallback',
    );
    for (const [background, bg] of [
      [undefined, 0],
      ['white', 255],
    ] as const) {
      const images = await load(background);
      const rgb = flattened((i, ch) => original[i * 3 + ch]!, bg);
      expect(images.get('rgba.png')!.equals(rgb)).toBe(true); // built-in decoder
      expect(images.get('rgba-interlaced.png')!.equals(rgb)).toBe(true); // sharp
      const gray2 = flattened((i) => gray[i]!, bg);
      const got = images.get('gray-alpha.png')!;
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - gray2[i]!));
      expect(worst).toBeLessThanOrEqual(1);
    }
  });

  it('resizes to width x height (stretching), from any format', async () => {
    const dataset = await loadDataset(dir, { cache: false, width: 40, height: 30 });
    expect([dataset.width, dataset.height]).toEqual([40, 30]);
    const expected = await sharp(original, { raw: { width: W, height: H, channels: 3 } })
      .resize(40, 30, { fit: 'fill' })
      .raw()
      .toBuffer();
    expect(Buffer.from(imageOf(dataset, dataset.images.indexOf('rgb8.png'))).equals(expected)).toBe(true);
    expect(dataset.pixels.length).toBe(10 * 30 * 40 * 3);
  });

  it('decodeImage gives what the dataset holds', async () => {
    const images = await load();
    expect(Buffer.from(await decodeImage(join(dir, 'rgba.png'))).equals(images.get('rgba.png')!)).toBe(true);
    expect(
      Buffer.from(await decodeImage(await readFile(join(dir, 'photo.jpg')))).equals(images.get('photo.jpg')!),
    ).toBe(true);
    expect((await decodeImage(join(dir, 'gray16.png'), { width: 20, height: 10 })).length).toBe(20 * 10 * 3);
    expect(await imageSize(join(dir, 'photo.jpg'))).toEqual({ width: W, height: H });
    expect((await rejectionOf(decodeImage(join(dir, 'nope.png')))).code).toBe('image-missing');
    expect((await rejectionOf(decodeImage(join(dir, 'labels.json')))).code).toBe('image-corrupt');
    expect((await rejectionOf(decodeImage(join(dir, 'rgb8.png'), { width: 10 }))).code).toBe(
      'options-invalid',
    );
  });
});

describe('bad images', () => {
  /** A copy of three-wide with a missing, a truncated, a damaged and a non-image file. */
  async function damaged(): Promise<{ dir: string; bad: string[] }> {
    const dir = await copyFixture(THREE_WIDE);
    const bad = ['0-1y-1p.png', '1-0y-0p.png', '1-3y-2p.png', '2-2y-2p.png'];
    const [missing, truncated, flipped, text] = bad as [string, string, string, string];
    await rm(join(dir, missing));
    await truncate(join(dir, truncated), 3000);
    const bytes = await readFile(join(dir, flipped));
    bytes[bytes.length - 200]! ^= 0xff; // inside the image data: the CRC catches it
    await writeFile(join(dir, flipped), bytes);
    await writeFile(join(dir, text), 'not an image at all');
    return { dir, bad };
  }

  it('names every missing or broken image at once, and writes no cache', async () => {
    const { dir, bad } = await damaged();
    const error = await rejectionOf(loadDataset(dir));
    expect(error.code).toBe('image-missing');
    expect(error.problems.map((p) => p.split(':')[0])).toEqual(bad);
    expect(error.problems[0]).toBe('0-1y-1p.png: the file does not exist');
    expect(error.message).toContain('skipBadImages');
    expect((await readdir(dir)).filter((f) => f.includes('litter-cache'))).toEqual([]);
  });

  it('skips them with skipBadImages, reporting each, and keeps labels aligned', async () => {
    const { dir, bad } = await damaged();
    const skippedSeen: string[] = [];
    const dataset = await loadDataset(dir, { skipBadImages: true, onSkip: (s) => skippedSeen.push(s.image) });
    const full = await loadDataset(THREE_WIDE, { cache: false });
    expect(skippedSeen).toEqual(bad);
    expect(dataset.skipped.map((s) => s.image)).toEqual(bad);
    expect(dataset.skipped.every((s) => s.reason.length > 0)).toBe(true);
    expect(dataset.size).toBe(71);
    expect(dataset.images).toEqual(full.images.filter((name) => !bad.includes(name)));
    const C = 3;
    dataset.images.forEach((name, n) => {
      const m = full.images.indexOf(name);
      expect([...dataset.labels.subarray(n * C, n * C + C)]).toEqual([
        ...full.labels.subarray(m * C, m * C + C),
      ]);
      expect(Buffer.from(imageOf(dataset, n)).equals(Buffer.from(imageOf(full, m)))).toBe(true);
    });
    // The cache remembers what it skipped.
    const again = await loadDataset(dir, { skipBadImages: true });
    expect(again.skipped).toEqual(dataset.skipped);
    expect(Buffer.from(again.pixels).equals(Buffer.from(dataset.pixels))).toBe(true);
  });

  it('says when images differ in size and no target size is given', async () => {
    const dir = await copyFixture(THREE_WIDE);
    await copyFile(join(CUBE_SPHERE, '0-0y-0p.png'), join(dir, '1-1y-1p.png'));
    const error = await rejectionOf(loadDataset(dir, { cache: false }));
    expect(error.code).toBe('image-size-mismatch');
    expect(error.problems).toEqual(['1-1y-1p.png: it is 128x128 but the first image is 96x72']);
    expect(error.message).toContain('Pass width and height');
    const resized = await loadDataset(dir, { cache: false, width: 96, height: 72 });
    expect(resized.size).toBe(75);
  });

  it('says when the images cannot fit in memory at the requested size', async () => {
    const error = await rejectionOf(loadDataset(THREE_WIDE, { cache: false, width: 65535, height: 65535 }));
    expect(error.code).toBe('options-invalid');
    expect(error.message).toContain('pass a smaller width and height');
  });

  it('reports progress for every image', async () => {
    const seen: number[] = [];
    await loadDataset(THREE_WIDE, { cache: false, onProgress: (p) => seen.push(p.done) });
    expect(seen).toEqual(Array.from({ length: 75 }, (_, i) => i + 1));
  });
});

describe('CRC-32', () => {
  it('the portable one equals zlib', async () => {
    const { crc32, portableCrc32 } = await import('./_crc32.js');
    const data = new Uint8Array(100_003).map((_, i) => (i * 2654435761) >>> 24);
    expect(portableCrc32(data)).toBe(crc32(data));
    expect(portableCrc32(data.subarray(500), portableCrc32(data.subarray(0, 500)))).toBe(crc32(data));
    expect(portableCrc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});
