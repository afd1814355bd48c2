import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../test/synthetic.js';
import {
  annotateImage,
  PREDICTED_BOX_COLOR,
  ReportError,
  renderAnnotatedImage,
  TRUE_BOX_COLOR,
} from './index.js';

const IMAGE = `${FIXTURE_DIR}0-0y-0p.png`; // 96x72

/** RGB of one pixel of an encoded image. */
async function pixel(data: Buffer | string, x: number, y: number): Promise<[number, number, number]> {
  const { data: raw } = await sharp(data)
    .removeAlpha()
    .extract({ left: x, top: y, width: 1, height: 1 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return [raw[0]!, raw[1]!, raw[2]!];
}

const hex = (color: string) => [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16));

describe('annotateImage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'litter-annotate-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scales a tiny render up by a whole factor and draws boxes in their colours', async () => {
    const out = join(dir, 'nested', 'a.png');
    const result = await annotateImage(
      IMAGE,
      [
        { box: [0.25, 0.25, 0.75, 0.75], label: 'Cube 0.93', color: PREDICTED_BOX_COLOR },
        { box: [0.1, 0.5, 0.2, 0.9], label: 'Can', color: TRUE_BOX_COLOR, dashed: true, labelBelow: true },
      ],
      out,
    );
    expect(result).toEqual({ path: out, width: 288, height: 216 }); // 96x72 * 3 (default minSize 288)
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 288, 216]);
    // The left edge of the predicted box (x = 0.25 * 288 = 72) half-way down is the box colour.
    const edge = await pixel(out, 72, 108);
    expect(edge.map((v, i) => Math.abs(v - hex(PREDICTED_BOX_COLOR)[i]!)).every((d) => d < 40)).toBe(true);
    // Inside the box, away from edges and labels, the render is untouched (nearest-neighbour upscale).
    const original = await pixel(IMAGE, 48, 45);
    expect(await pixel(out, 48 * 3 + 1, 45 * 3 + 1)).toEqual(original);
  });

  it('keeps the size with minSize 0 and writes JPEG for .jpg', async () => {
    const out = join(dir, 'b.jpg');
    const result = await annotateImage(IMAGE, [{ box: [0, 0, 1, 1] }], out, { minSize: 0 });
    expect([result.width, result.height]).toEqual([96, 72]);
    expect((await sharp(out).metadata()).format).toBe('jpeg');
  });

  it('scales large images down to maxSize', async () => {
    const image = await renderAnnotatedImage(IMAGE, [], { minSize: 0, maxSize: 48 });
    expect([image.width, image.height]).toEqual([48, 36]);
  });

  it('escapes label text for the SVG overlay', async () => {
    const image = await renderAnnotatedImage(IMAGE, [{ box: [0.1, 0.1, 0.9, 0.9], label: '<Cube & "co">' }]);
    expect(image.width).toBe(288);
  });

  it('rejects a malformed box and an unreadable image with a ReportError', async () => {
    await expect(renderAnnotatedImage(IMAGE, [{ box: [0.1, 0.2, 0.3] }])).rejects.toMatchObject({
      name: 'ReportError',
      code: 'invalid-data',
    });
    const missing = renderAnnotatedImage(join(dir, 'missing.png'), []);
    await expect(missing).rejects.toBeInstanceOf(ReportError);
    await expect(missing).rejects.toMatchObject({ code: 'image-unreadable' });
    await expect(missing).rejects.toThrow(/^@litter\/report: cannot read image .*missing\.png/);
  });
});
