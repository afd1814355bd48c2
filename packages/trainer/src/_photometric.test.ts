import { SeededRandom as Rng } from '@litter/dataset';
import { describe, expect, it } from 'vitest';
import { colorTransform, jitterColors } from './_photometric.js';

const shape = { height: 4, width: 5 };
const pixels = shape.height * shape.width * 3;
const batch = (count: number) => {
  const rng = new Rng(3);
  return Float32Array.from({ length: count * pixels }, () => rng.next());
};

describe('jitterColors', () => {
  it('leaves images alone with no jitter, still drawing four numbers per image', () => {
    const images = batch(3);
    const before = images.slice();
    const rng = new Rng(1);
    jitterColors(images, 3, shape, { brightness: 0, contrast: 0, saturation: 0, hue: 0 }, rng);
    for (let i = 0; i < images.length; i++) expect(images[i]).toBeCloseTo(before[i]!, 6);
    const reference = new Rng(1);
    for (let i = 0; i < 12; i++) reference.next();
    expect(rng.state()).toEqual(reference.state());
  });

  it('brightness scales, saturation 0 turns grey, contrast 0 turns the mean grey', () => {
    const dark = colorTransform({ brightness: 0.5, contrast: 1, saturation: 1, hue: 0 });
    expect(dark.matrix).toEqual([
      [0.5, 0, 0],
      [0, 0.5, 0],
      [0, 0, 0.5],
    ]);
    const grey = colorTransform({ brightness: 1, contrast: 1, saturation: 0, hue: 0 });
    for (const row of grey.matrix)
      expect(row.map((v) => Number(v.toFixed(6)))).toEqual([0.299, 0.587, 0.114]);
    const flat = colorTransform({ brightness: 1, contrast: 0, saturation: 1, hue: 0 });
    expect(flat.matrix.flat().every((v) => v === 0)).toBe(true);
    expect(flat.meanWeight).toBe(1);
  });

  it('a hue rotation keeps the grey of each pixel and a full turn is the identity', () => {
    const turn = colorTransform({ brightness: 1, contrast: 1, saturation: 1, hue: 1 });
    turn.matrix.forEach((row, i) => {
      row.forEach((v, j) => {
        expect(v).toBeCloseTo(i === j ? 1 : 0, 2);
      });
    });
    const third = colorTransform({ brightness: 1, contrast: 1, saturation: 1, hue: 1 / 3 });
    const luma = [0.299, 0.587, 0.114];
    const pixel = [0.8, 0.3, 0.1];
    const out = third.matrix.map((row) => row.reduce((sum, v, j) => sum + v * pixel[j]!, 0));
    const grey = (p: number[]) => p.reduce((sum, v, j) => sum + luma[j]! * v, 0);
    expect(grey(out)).toBeCloseTo(grey(pixel), 2);
    expect(out[0]).not.toBeCloseTo(pixel[0]!, 1);
  });

  it('changes each image differently, within [0, 1], and only the first count images', () => {
    const images = batch(4);
    const before = images.slice();
    jitterColors(
      images,
      3,
      shape,
      { brightness: 0.3, contrast: 0.3, saturation: 0.3, hue: 0.05 },
      new Rng(9),
    );
    const changed = (n: number) =>
      images
        .subarray(n * pixels, (n + 1) * pixels)
        .some((v, i) => Math.abs(v - before[n * pixels + i]!) > 1e-4);
    expect([0, 1, 2].every(changed)).toBe(true);
    expect(changed(3)).toBe(false);
    expect(images.every((v) => v >= 0 && v <= 1)).toBe(true);
    const again = before.slice();
    jitterColors(again, 3, shape, { brightness: 0.3, contrast: 0.3, saturation: 0.3, hue: 0.05 }, new Rng(9));
    expect(again).toEqual(images);
  });
});
