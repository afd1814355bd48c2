import type { ColorJitter } from './options.js';

/** The option's type (`TRAIN_OPTIONS.colorJitter`), for the modules that use {@link jitterColors}. */
export type { ColorJitter };

/** Luma weights (ITU-R BT.601), the grey of saturation and contrast. */
const LUMA = [0.299, 0.587, 0.114] as const;

/** RGB -> YIQ and back: hue is a rotation of the (I, Q) plane. */
const TO_YIQ = [
  [0.299, 0.587, 0.114],
  [0.596, -0.274, -0.322],
  [0.211, -0.523, 0.312],
] as const;
const FROM_YIQ = [
  [1, 0.956, 0.621],
  [1, -0.272, -0.647],
  [1, -1.106, 1.703],
] as const;

type Matrix = number[][];
const IDENTITY: Matrix = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
];
const multiply = (a: readonly (readonly number[])[], b: readonly (readonly number[])[]): Matrix =>
  a.map((row) => [0, 1, 2].map((j) => row[0]! * b[0]![j]! + row[1]! * b[1]![j]! + row[2]! * b[2]![j]!));

/**
 * The colour transform of one image as a 3x3 matrix and the factor of the image's mean grey added to each
 * channel: saturation (towards the pixel's grey), hue (rotation in YIQ), brightness (scale), then contrast
 * (towards the image's mean grey).
 */
export function colorTransform(factors: {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}): { matrix: Matrix; meanWeight: number } {
  const s = factors.saturation;
  const saturation: Matrix = [0, 1, 2].map((i) => LUMA.map((w, j) => (1 - s) * w + (i === j ? s : 0)));
  const angle = factors.hue * 2 * Math.PI;
  const rotation: Matrix = [
    [1, 0, 0],
    [0, Math.cos(angle), -Math.sin(angle)],
    [0, Math.sin(angle), Math.cos(angle)],
  ];
  // No rotation: exactly the identity (the YIQ matrices are inverses only to 3 decimals).
  const hue = angle === 0 ? IDENTITY : multiply(FROM_YIQ, multiply(rotation, TO_YIQ));
  const scale = factors.brightness * factors.contrast;
  const matrix = multiply(hue, saturation).map((row) => row.map((v) => v * scale));
  // contrast: c * (b x) + (1 - c) * mean, with the mean grey of the brightened image.
  return { matrix, meanWeight: (1 - factors.contrast) * factors.brightness };
}

/**
 * Photometric augmentation in place: each of the first `count` images of a batch (floats in [0, 1], HWC) gets
 * its own random brightness, contrast, saturation and hue (four draws from `rng` per image, always, so a
 * resumed run draws the same), clamped to [0, 1]. Labels and boxes do not change.
 *
 * Why: renders of one scene share one lighting and one set of materials; held-out scenes differ in both.
 */
export function jitterColors(
  images: Float32Array,
  count: number,
  shape: { height: number; width: number },
  jitter: ColorJitter,
  rng: { next(): number },
): void {
  const pixels = shape.height * shape.width;
  const draw = (amount: number) => 1 + amount * (2 * rng.next() - 1);
  for (let n = 0; n < count; n++) {
    const factors = {
      brightness: draw(jitter.brightness),
      contrast: draw(jitter.contrast),
      saturation: draw(jitter.saturation),
      hue: jitter.hue * (2 * rng.next() - 1),
    };
    const { matrix, meanWeight } = colorTransform(factors);
    const start = n * pixels * 3;
    const end = start + pixels * 3;
    let grey = 0;
    if (meanWeight !== 0) {
      for (let i = start; i < end; i += 3) {
        grey += LUMA[0] * images[i]! + LUMA[1] * images[i + 1]! + LUMA[2] * images[i + 2]!;
      }
      grey /= pixels;
    }
    const offset = meanWeight * grey;
    const [r, g, b] = matrix as [number[], number[], number[]];
    for (let i = start; i < end; i += 3) {
      const x = images[i]!;
      const y = images[i + 1]!;
      const z = images[i + 2]!;
      images[i] = Math.min(1, Math.max(0, r[0]! * x + r[1]! * y + r[2]! * z + offset));
      images[i + 1] = Math.min(1, Math.max(0, g[0]! * x + g[1]! * y + g[2]! * z + offset));
      images[i + 2] = Math.min(1, Math.max(0, b[0]! * x + b[1]! * y + b[2]! * z + offset));
    }
  }
}
