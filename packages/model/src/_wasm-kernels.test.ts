import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from '../test/compare.js';
import { random } from '../test/random.js';
import { initBackend } from './backend.js';

/*
 * The JavaScript wasm kernels of _wasm-kernels.ts against the cpu backend's own kernels (none of these five is
 * replaced on cpu): forward values and gradients through tf.grads, on the same inputs.
 */

const tensor = (shape: number[], seed: number) =>
  tf.tensor(
    random(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );

/**
 * Runs `compute` on cpu then on wasm (same seeds) and compares every output array. Also checks that the wasm
 * kernels free every intermediate they make.
 */
async function compareWithCpu(compute: () => Float32Array[], tolerance = 1e-5): Promise<void> {
  await tf.setBackend('cpu');
  const expected = compute();
  await tf.setBackend('wasm');
  const before = tf.backend().numDataIds();
  const actual = compute();
  expect(tf.backend().numDataIds()).toBe(before);
  expect(actual.length).toBe(expected.length);
  actual.forEach((values, i) => {
    expect(relativeError(values, expected[i]!), `output ${i}`).toBeLessThan(tolerance);
  });
}

/** Values and gradients of `sum(f(inputs) * upstream)` for every input. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: () => tf.Tensor[], seed: number) {
  return (): Float32Array[] =>
    tf.tidy(() => {
      const xs = inputs();
      const value = f(...xs);
      const upstream = tensor(value.shape, seed);
      const grads = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), upstream)))(xs);
      return [value, ...grads].map((t) => t.dataSync() as Float32Array);
    });
}

describe('JavaScript wasm kernels', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    await initBackend({ backend: 'wasm' });
  });

  it('replaces MaxPoolGrad, LRN, LRNGrad, BatchMatMul, Sum, Tile and Identity on wasm only', () => {
    for (const name of ['MaxPoolGrad', 'LRN', 'LRNGrad', 'BatchMatMul', 'Sum', 'Tile', 'Identity']) {
      expect(tf.getKernel(name, 'wasm')?.kernelFunc.name, name).toBe('');
      expect(tf.getKernel(name, 'cpu')?.kernelFunc.name, name).not.toBe('');
    }
  });

  it('clones on wasm by sharing the data: the clone outlives its source, and both are freed', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend();
    const before = backend.numDataIds();
    const x = tensor([3, 5, 7], 11);
    const expected = Float32Array.from(x.dataSync() as Float32Array);
    const copy = tf.clone(x);
    expect(backend.numDataIds()).toBe(before + 1);
    x.dispose();
    expect(copy.dataSync()).toEqual(expected);
    // A gradient through saved clones (tf.square saves its input) is the cpu backend's.
    const grad = tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(copy);
    expect(grad.dataSync()).toEqual(Float32Array.from(expected, (v) => 2 * v));
    tf.dispose([copy, grad]);
    expect(backend.numDataIds()).toBe(before);
  });

  type PoolCase = [
    shape: number[],
    filter: number | [number, number],
    strides: number | [number, number],
    pad: 'same' | 'valid' | number,
  ];
  const poolCases: PoolCase[] = [
    [[2, 9, 9, 5], 3, 2, 'same'],
    [[3, 8, 7, 4], 3, 2, 'valid'],
    [[2, 10, 11, 3], [2, 3], [2, 1], 'same'],
    [[1, 7, 7, 2], 3, 1, 'same'],
    [[2, 6, 9, 3], 2, 2, 1],
    [[2, 16, 16, 8], 3, 2, 'same'],
  ];
  it.each(poolCases.map((c, i) => [i, c] as const))(
    'MaxPoolGrad case %i matches cpu, ties at relu zeros included (%j)',
    async (i, [shape, filter, strides, pad]) => {
      // relu: about half the cells are 0, so whole windows tie and the first maximum must win.
      const inputs = () => [tf.relu(tensor(shape, 10 + i))];
      await compareWithCpu(
        valueAndGrads((x) => tf.maxPool(x as tf.Tensor4D, filter, strides, pad), inputs, 20 + i),
      );
      // Distinct values too (no ties).
      await compareWithCpu(
        valueAndGrads(
          (x) => tf.maxPool(x as tf.Tensor4D, filter, strides, pad),
          () => [tensor(shape, 30 + i)],
          40 + i,
        ),
      );
    },
  );

  type LrnCase = [shape: number[], radius: number, bias: number, alpha: number, beta: number];
  const lrnCases: LrnCase[] = [
    [[2, 4, 5, 16], 4, 1, 0.001 / 9, 0.75], // the seed's
    [[2, 3, 3, 7], 2, 2, 0.5, 0.75],
    [[1, 3, 4, 3], 5, 1, 1, 0.5], // radius wider than the channels
    [[2, 2, 3, 9], 1, 0.5, 2, 1],
    [[1, 2, 2, 6], 3, 1.5, 0.3, 0.6],
    [[3, 5, 6], 2, 1, 0.2, 0.75], // rank 3
  ];
  it.each(lrnCases.map((c, i) => [i, c] as const))(
    'LRN and LRNGrad case %i match cpu (%j)',
    async (i, [shape, radius, bias, alpha, beta]) => {
      // Values up to 3 so alpha * sum(x^2) is not negligible against the bias.
      const inputs = () => [tf.mul(tensor(shape, 50 + i), 3)];
      await compareWithCpu(
        valueAndGrads(
          (x) => tf.localResponseNormalization(x as tf.Tensor4D, radius, bias, alpha, beta),
          inputs,
          60 + i,
        ),
      );
    },
  );

  type MatMulCase = [a: number[], b: number[], transposeA: boolean, transposeB: boolean];
  const matMulCases: MatMulCase[] = [
    [[7, 5], [5, 9], false, false],
    [[5, 7], [5, 9], true, false],
    [[7, 5], [9, 5], false, true],
    [[5, 7], [9, 5], true, true],
    [[3, 40], [3, 6], true, false], // the dense kernel's gradient: x^T dy
    [[3, 6], [40, 6], false, true], // the dense input's gradient: dy W^T
    [[1, 5, 7], [1, 5, 4], true, false], // rank 3, batch 1
    [[2, 5, 7], [2, 4, 7], false, true], // batched: wasm's own kernel
  ];
  it.each(matMulCases.map((c, i) => [i, c] as const))(
    'BatchMatMul case %i matches cpu, with its gradients (%j)',
    async (i, [aShape, bShape, transposeA, transposeB]) => {
      await compareWithCpu(
        valueAndGrads(
          (a, b) => tf.matMul(a!, b!, transposeA, transposeB),
          () => [tensor(aShape, 70 + i), tensor(bShape, 80 + i)],
          90 + i,
        ),
      );
    },
  );

  type SumCase = [shape: number[], axis: number | number[], keepDims: boolean];
  const sumCases: SumCase[] = [
    [[4, 3, 5, 6], [0, 1, 2], false], // a conv bias gradient
    [[4, 3, 5, 6], [2, 0, 1], true],
    [[8, 5], 0, false],
    [[4, 3, 5], [0, 2], false], // not leading: wasm's own kernel
    [[4, 3, 5], -1, true],
    [[4, 3], [0, 1], false],
  ];
  it.each(sumCases.map((c, i) => [i, c] as const))(
    'Sum case %i matches cpu (%j)',
    async (i, [shape, axis, keepDims]) => {
      await compareWithCpu(() =>
        tf.tidy(() => {
          const out = tf.sum(tensor(shape, 100 + i), axis, keepDims);
          return [out.dataSync() as Float32Array, new Float32Array(out.shape)];
        }),
      );
    },
  );

  type TileCase = [shape: number[], reps: number[]];
  const tileCases: TileCase[] = [
    [
      [1, 1, 1, 5],
      [3, 4, 2, 1],
    ], // batch norm's gradient
    [
      [1, 7],
      [5, 1],
    ],
    [
      [1, 1, 3],
      [1, 6, 1],
    ],
    [
      [2, 3],
      [2, 2],
    ], // not a whole-tensor repeat: wasm's own kernel
    [
      [1, 4],
      [3, 2],
    ],
  ];
  it.each(tileCases.map((c, i) => [i, c] as const))(
    'Tile case %i matches cpu (%j)',
    async (i, [shape, reps]) => {
      await compareWithCpu(() =>
        tf.tidy(() => {
          const out = tf.tile(tensor(shape, 110 + i), reps);
          return [out.dataSync() as Float32Array, new Float32Array(out.shape)];
        }),
      );
    },
  );

  it('batch-norm training gradients (Tile, Sum) match cpu', async () => {
    await compareWithCpu(
      valueAndGrads(
        (x, scale, offset) => {
          const { mean, variance } = tf.moments(x!, [0, 1, 2]);
          return tf.batchNorm(x!, mean, variance, offset, scale, 1e-3);
        },
        () => [tensor([4, 5, 6, 8], 120), tf.add(tensor([8], 121), 1), tensor([8], 122)],
        123,
      ),
    );
  });

  it('seed-cnn-sized max pool and LRN gradients match cpu', async () => {
    await compareWithCpu(
      valueAndGrads(
        (x) =>
          tf.localResponseNormalization(
            tf.maxPool(tf.relu(x as tf.Tensor4D), 3, 2, 'same'),
            4,
            1,
            0.001 / 9,
            0.75,
          ),
        () => [tf.mul(tensor([4, 16, 16, 64], 7), 4)],
        8,
      ),
    );
  });
});
