import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { random } from '../test/random.js';
import { initBackend } from './backend.js';
import { registerTrainingKernels, restoreOriginalKernels } from './training-kernels.js';

type Case = {
  shape: [number, number, number, number];
  size: [number, number];
  alignCorners: boolean;
  halfPixelCenters: boolean;
};

const cases: Case[] = [
  { shape: [3, 2, 3, 4], size: [4, 6], alignCorners: false, halfPixelCenters: false }, // UpSampling2D x2
  { shape: [1, 3, 4, 2], size: [6, 8], alignCorners: false, halfPixelCenters: false },
  { shape: [2, 3, 5, 3], size: [7, 4], alignCorners: true, halfPixelCenters: false },
  { shape: [2, 4, 3, 1], size: [9, 7], alignCorners: false, halfPixelCenters: true },
];

/** `sum(resize(x) * dy)`'s gradient by x, on the current backend: the kernel under test. */
function gradient(c: Case, seed: number): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(
      random(
        c.shape.reduce((a, b) => a * b),
        seed,
      ),
      c.shape,
    );
    const [n, , , depth] = c.shape;
    const dy = tf.tensor4d(random(n * c.size[0] * c.size[1] * depth, seed + 1), [n, ...c.size, depth]);
    const f = (t: tf.Tensor) =>
      tf.sum(
        tf.mul(
          tf.image.resizeNearestNeighbor(t as tf.Tensor4D, c.size, c.alignCorners, c.halfPixelCenters),
          dy,
        ),
      );
    return tf.grad(f)(x).dataSync() as Float32Array;
  });
}

/**
 * The same gradient from the forward kernel alone: resizing an image of its own pixel indices tells where each
 * output pixel came from, and `dy` is added there.
 */
function reference(c: Case, seed: number): Float32Array {
  const [n, height, width, depth] = c.shape;
  const count = n * height * width * depth;
  const sources = tf.tidy(() => {
    const indices = tf.tensor4d(
      Float32Array.from({ length: count }, (_, k) => k),
      c.shape,
    );
    return tf.image.resizeNearestNeighbor(indices, c.size, c.alignCorners, c.halfPixelCenters).dataSync();
  });
  const dy = random(n * c.size[0] * c.size[1] * depth, seed + 1);
  const out = new Float32Array(count);
  sources.forEach((source, k) => {
    out[source]! += dy[k]!;
  });
  return out;
}

const maxDifference = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);
};

describe('ResizeNearestNeighborGrad on cpu', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
    await initBackend({ backend: 'cpu' });
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each(cases.map((c, i) => [i, c] as const))(
    'case %i: adds dy where the forward pass read it, with a flat tensor count (%j)',
    async (i, c) => {
      await tf.setBackend('cpu');
      const before = tf.memory().numTensors;
      const ours = gradient(c, 10 * i);
      expect(tf.memory().numTensors).toBe(before);
      expect(maxDifference(ours, reference(c, 10 * i))).toBeLessThan(1e-5);
    },
  );

  it("matches wasm's own kernel, and cpu's own on a batch of one image", async () => {
    const upsample = cases[0]!;
    await tf.setBackend('cpu');
    const ours = gradient(upsample, 1);
    await tf.setBackend('wasm');
    expect(maxDifference(ours, gradient(upsample, 1))).toBeLessThan(1e-5);
    await tf.setBackend('cpu');
    restoreOriginalKernels('cpu', [tf.ResizeNearestNeighborGrad]);
    try {
      const single = cases[1]!;
      const theirs = gradient(single, 2);
      // cpu's own is wrong for more than one image (_resize-grad.ts): that is why ours is registered.
      expect(maxDifference(gradient(upsample, 1), ours)).toBeGreaterThan(0.1);
      restoreOriginalKernels('cpu');
      registerTrainingKernels('cpu');
      expect(maxDifference(gradient(single, 2), theirs)).toBeLessThan(1e-5);
    } finally {
      restoreOriginalKernels('cpu');
      registerTrainingKernels('cpu');
    }
  });
});
