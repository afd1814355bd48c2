import { SeededRandom as Rng } from '@litter/dataset';
import { describe, expect, it } from 'vitest';
import { type Affine, augmentGeometry, randomAffine, transformBox, warpImage } from './geometry.js';

const [H, W] = [30, 40];

/** A black image with a white rectangle over pixel rows r1..r2 and columns c1..c2 (inclusive). */
function rectangle(r1: number, r2: number, c1: number, c2: number): Float32Array {
  const image = new Float32Array(H * W * 3);
  for (let r = r1; r <= r2; r++)
    for (let c = c1; c <= c2; c++) image.fill(1, (r * W + c) * 3, (r * W + c + 1) * 3);
  return image;
}

/** The bounding box (normalised, pixel edges) of the pixels brighter than 0.5: found by looking, not computing. */
function scan(image: Float32Array): [number, number, number, number] | undefined {
  let [x1, y1, x2, y2] = [W, H, -1, -1];
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      if (image[(r * W + c) * 3]! <= 0.5) continue;
      [x1, y1, x2, y2] = [Math.min(x1, c), Math.min(y1, r), Math.max(x2, c), Math.max(y2, r)];
    }
  }
  return x2 < 0 ? undefined : [x1 / W, y1 / H, (x2 + 1) / W, (y2 + 1) / H];
}

describe('warpImage and transformBox', () => {
  it.each([0, 0.6])(
    'move a rectangle and its box alike (checked by scanning the warped pixels), for 40 random transforms, stretch %s',
    (stretch) => {
      const rng = new Rng(7);
      const source = rectangle(8, 19, 10, 29);
      const box = [10 / W, 8 / H, 30 / W, 20 / H];
      const target = new Float32Array(source.length);
      for (let t = 0; t < 40; t++) {
        const affine = randomAffine(rng, { scale: [0.8, 1.6], translate: 0.1, stretch });
        warpImage(source, target, H, W, affine);
        const seen = scan(target);
        const moved = transformBox(box, affine);
        expect(seen === undefined).toBe(moved === undefined);
        if (!seen || !moved) continue;
        // within a pixel (and a half at zoom-in, where the bilinear edge falls between pixels)
        expect(Math.abs(seen[0] - moved[0]) * W).toBeLessThanOrEqual(1.5);
        expect(Math.abs(seen[2] - moved[2]) * W).toBeLessThanOrEqual(1.5);
        expect(Math.abs(seen[1] - moved[1]) * H).toBeLessThanOrEqual(1.5);
        expect(Math.abs(seen[3] - moved[3]) * H).toBeLessThanOrEqual(1.5);
      }
    },
  );

  it('samples where the formula says, by hand: zoom 2 from a quarter in on a ramp', () => {
    // value = column index; output column j shows input x = 0.25 * 8 + (j + 0.5) / 2 - 0.5 = 1.75 + j / 2
    const [h, w] = [2, 8];
    const ramp = new Float32Array(h * w * 3).map((_, k) => Math.floor(k / 3) % w);
    const out = new Float32Array(ramp.length);
    warpImage(ramp, out, h, w, { scale: 2, x0: 0.25, y0: 0, flip: false });
    expect(Array.from({ length: w }, (_, j) => out[j * 3])).toEqual([
      1.75, 2.25, 2.75, 3.25, 3.75, 4.25, 4.75, 5.25,
    ]);
  });

  it('samples where the formula says, by hand: a stretch of 2 along x only, from a quarter in', () => {
    // value = column index + 10 x row index; output (i, j) shows input x = 1.75 + j / 2, y = i
    const [h, w] = [3, 8];
    const ramp = new Float32Array(h * w * 3).map(
      (_, k) => (Math.floor(k / 3) % w) + 10 * Math.floor(k / 3 / w),
    );
    const out = new Float32Array(ramp.length);
    warpImage(ramp, out, h, w, { scale: 1, x0: 0.25, y0: 0, flip: false, stretchX: 2, stretchY: 1 });
    expect(Array.from({ length: w }, (_, j) => out[(2 * w + j) * 3])).toEqual([
      21.75, 22.25, 22.75, 23.25, 23.75, 24.25, 24.75, 25.25,
    ]);
    const box = transformBox([0.25, 0.1, 0.5, 0.6], {
      scale: 1,
      x0: 0.25,
      y0: 0,
      flip: false,
      stretchY: 1.5,
    });
    [0, 0.15, 0.25, 0.9].forEach((v, k) => {
      expect(box![k]).toBeCloseTo(v, 12);
    });
  });

  it('is the identity without a transform, and a mirror of each row when flipped', () => {
    const source = new Float32Array(H * W * 3).map((_, k) => (k * 37) % 101);
    const out = new Float32Array(source.length);
    warpImage(source, out, H, W, { scale: 1, x0: 0, y0: 0, flip: false });
    expect(out).toEqual(source);
    warpImage(source, out, H, W, { scale: 1, x0: 0, y0: 0, flip: true });
    for (const [r, c] of [
      [0, 0],
      [5, 7],
      [29, 39],
    ] as const) {
      expect(out.subarray((r * W + c) * 3, (r * W + c + 1) * 3)).toEqual(
        source.subarray((r * W + W - 1 - c) * 3, (r * W + W - c) * 3),
      );
    }
    expect(transformBox([0.1, 0.2, 0.3, 0.4], { scale: 1, x0: 0, y0: 0, flip: true })).toEqual([
      0.7, 0.2, 0.9, 0.4,
    ]);
  });

  it('clips boxes to the image and drops those pushed out of it', () => {
    const zoom: Affine = { scale: 2, x0: 0.5, y0: 0, flip: false };
    const clipped = transformBox([0.4, 0.1, 0.7, 0.3], zoom)!;
    [0, 0.2, 0.4, 0.6].forEach((v, k) => {
      expect(clipped[k]).toBeCloseTo(v, 12);
    });
    expect(transformBox([0, 0, 0.3, 0.3], zoom)).toBeUndefined();
  });
});

describe('randomAffine', () => {
  it('draws five numbers per image whatever the options, in range, the crop inside without translate', () => {
    const a = new Rng(3);
    const b = new Rng(3);
    for (let k = 0; k < 200; k++) {
      const affine = randomAffine(a, { scale: [1, 1.5], translate: 0, probability: 0.5 });
      for (let d = 0; d < 5; d++) b.next();
      expect(affine.scale).toBeGreaterThanOrEqual(1);
      expect(affine.scale).toBeLessThanOrEqual(1.5);
      expect(affine.x0).toBeGreaterThanOrEqual(0);
      expect(affine.x0 + 1 / affine.scale).toBeLessThanOrEqual(1 + 1e-12);
      expect(affine.y0 + 1 / affine.scale).toBeLessThanOrEqual(1 + 1e-12);
    }
    expect(a.next()).toBe(b.next());
  });

  it('with stretch draws seven numbers, stretches one axis (each about as often) by [1, 1 + stretch], crop inside', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const axes = { x: 0, y: 0 };
    for (let k = 0; k < 400; k++) {
      const affine = randomAffine(a, { scale: [1, 1], translate: 0, stretch: 0.4 });
      for (let d = 0; d < 7; d++) b.next();
      const { stretchX = 1, stretchY = 1 } = affine;
      expect(Math.min(stretchX, stretchY)).toBe(1);
      expect(Math.max(stretchX, stretchY)).toBeLessThanOrEqual(1.4);
      if (stretchX > 1) axes.x++;
      if (stretchY > 1) axes.y++;
      expect(affine.x0).toBeGreaterThanOrEqual(0);
      expect(affine.x0 + 1 / stretchX).toBeLessThanOrEqual(1 + 1e-12);
      expect(affine.y0 + 1 / stretchY).toBeLessThanOrEqual(1 + 1e-12);
    }
    expect(a.next()).toBe(b.next());
    expect(axes.x).toBeGreaterThan(150);
    expect(axes.y).toBeGreaterThan(150);
  });

  it('rejects bad options', () => {
    expect(() => randomAffine(new Rng(1), { stretch: -0.5 })).toThrow(/stretch/);
    expect(() => randomAffine(new Rng(1), { scale: [1.5, 1] })).toThrow(/scale/);
    expect(() => randomAffine(new Rng(1), { translate: -1 })).toThrow(/translate/);
  });
});

describe('augmentGeometry', () => {
  it('moves the boxes of visible classes with the pixels and hides objects pushed out', () => {
    // one image, two classes: A in the middle, B in the left strip; zoom 2 onto the right half hides B.
    const batch = {
      images: rectangle(10, 19, 15, 24),
      labels: new Float32Array([1, 1]),
      boxes: new Float32Array([15 / W, 10 / H, 25 / W, 20 / H, 0, 0, 0.2, 0.2]),
      boxMask: new Float32Array([1, 1]),
    };
    // scale drawn as 2 (range [2, 2]); origin x = 0.5 + translate...: give translate 0 and draws that put x0 at 0.5
    const draws = [0, 0, 1, 0.5, 0.9]; // apply, scale, x (-> x0 = 0.5), y (-> y0 = 0.25), no flip
    const rng = { next: () => draws.shift()! };
    augmentGeometry(batch, 1, { height: H, width: W, classes: 2 }, rng, { scale: [2, 2], translate: 0 });
    const expected = transformBox(Float32Array.from([15 / W, 10 / H, 25 / W, 20 / H]), {
      scale: 2,
      x0: 0.5,
      y0: 0.25,
      flip: false,
    })!;
    expect(Array.from(batch.boxes.subarray(0, 4))).toEqual(expected.map(Math.fround));
    expect(Array.from(batch.labels)).toEqual([1, 0]);
    expect(Array.from(batch.boxMask)).toEqual([1, 0]);
    const seen = scan(batch.images as Float32Array)!;
    expect(Math.abs(seen[0] - expected[0]) * W).toBeLessThanOrEqual(1.5);
    expect(Math.abs(seen[3] - expected[3]) * H).toBeLessThanOrEqual(1.5);
  });
});
