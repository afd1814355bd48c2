import { SeededRandom } from '@litter/dataset';
import { describe, expect, it } from 'vitest';
import { flipHalf } from './_augment.js';

describe('flipHalf', () => {
  const height = 3;
  const width = 5;
  const classes = 2;
  const count = 40;
  const pixels = height * width * 3;
  // Every value distinct, so a mirrored image cannot equal the original by accident.
  const original = Float32Array.from({ length: count * pixels }, (_, i) => i);
  const originalBoxes = Float32Array.from({ length: count * classes * 4 }, (_, i) =>
    i % 4 === 0 ? 0.1 : i % 4 === 1 ? 0.2 : i % 4 === 2 ? 0.3 : 0.9,
  );

  const mirrored = (n: number) => {
    const out = new Float32Array(pixels);
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        for (let k = 0; k < 3; k++) {
          out[(r * width + c) * 3 + k] = original[n * pixels + (r * width + (width - 1 - c)) * 3 + k]!;
        }
      }
    }
    return out;
  };

  it('mirrors the images the seeded generator picks, with their boxes, and leaves the others', () => {
    const images = original.slice();
    const boxes = originalBoxes.slice();
    flipHalf(images, boxes, count, { height, width, classes }, new SeededRandom(7));
    const draws = new SeededRandom(7);
    let flipped = 0;
    for (let n = 0; n < count; n++) {
      const image = images.subarray(n * pixels, (n + 1) * pixels);
      const box = Array.from(boxes.subarray(n * classes * 4, (n + 1) * classes * 4));
      if (draws.next() < 0.5) {
        expect(image).toEqual(original.subarray(n * pixels, (n + 1) * pixels));
        expect(box.map((v) => v.toFixed(6))).toEqual(
          [0.1, 0.2, 0.3, 0.9, 0.1, 0.2, 0.3, 0.9].map((v) => v.toFixed(6)),
        );
      } else {
        flipped++;
        expect(image).toEqual(mirrored(n));
        // x1' = 1 - x2, x2' = 1 - x1; y unchanged
        expect(box.map((v) => v.toFixed(6))).toEqual(
          [0.7, 0.2, 0.9, 0.9, 0.7, 0.2, 0.9, 0.9].map((v) => v.toFixed(6)),
        );
      }
    }
    expect(flipped).toBeGreaterThan(10);
    expect(flipped).toBeLessThan(30);
  });

  it('only touches the first `count` images (a short last batch in a larger buffer)', () => {
    const images = original.slice();
    flipHalf(images, undefined, 3, { height, width, classes }, new SeededRandom(1));
    expect(images.subarray(3 * pixels)).toEqual(original.subarray(3 * pixels));
  });
});
