import type { KernelFunc } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { random } from '../test/random.js';
import { filterSimdFor, makeConv2d } from './_wasm-kernels.js';
import { initBackend } from './backend.js';
import { registerTrainingKernels, restoreOriginalKernels } from './training-kernels.js';

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
interface Case {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: Pad;
}

const cases: Case[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [3, 8, 11, 2], filter: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { x: [2, 10, 7, 3], filter: [3, 2, 3, 5], strides: 1, pad: 'valid' },
  { x: [2, 10, 7, 3], filter: [3, 2, 3, 5], strides: 2, pad: 'valid' },
  { x: [1, 12, 9, 4], filter: [5, 3, 4, 2], strides: [2, 3], pad: 'same' },
  { x: [2, 7, 13, 3], filter: [4, 4, 3, 2], strides: 3, pad: 'same' },
  { x: [2, 8, 6, 2], filter: [1, 1, 2, 3], strides: 2, pad: 'valid' },
  {
    x: [2, 9, 8, 3],
    filter: [3, 3, 3, 2],
    strides: 1,
    pad: [
      [0, 0],
      [1, 2],
      [2, 0],
      [0, 0],
    ],
  },
  {
    x: [2, 9, 8, 3],
    filter: [3, 3, 3, 2],
    strides: 2,
    pad: [
      [0, 0],
      [0, 1],
      [1, 1],
      [0, 0],
    ],
  },
  { x: [4, 16, 16, 3], filter: [5, 5, 3, 8], strides: 1, pad: 'same' },
  // More than IM2COL_MAX_PATCH (128) patch values: on wasm, dW through the composed convolution at stride 1,
  // gathered patches at stride 2 (up to IM2COL_MAX_STRIDED_PATCH).
  { x: [2, 9, 9, 16], filter: [3, 3, 16, 4], strides: 1, pad: 'same' },
  { x: [2, 11, 10, 8], filter: [5, 5, 8, 3], strides: 2, pad: 'valid' },
  { x: [3, 8, 8, 32], filter: [3, 3, 32, 5], strides: 2, pad: 'same' },
  // model-lite's strided blocks: even and odd sizes (padding 0 or 1 before), and a stride with empty phases.
  { x: [2, 16, 20, 8], filter: [3, 3, 8, 16], strides: 2, pad: 'same' },
  { x: [2, 15, 21, 8], filter: [3, 3, 8, 16], strides: 2, pad: 'same' },
  { x: [2, 11, 9, 3], filter: [3, 3, 3, 4], strides: [3, 2], pad: 'same' },
  { x: [2, 9, 7, 6], filter: [1, 1, 6, 3], strides: 2, pad: 'same' },
  // Channels in 4s and 8s: dW by the SIMD kernel on wasm (_filter-grad-simd.ts). Several chunks of images
  // (3 images of 192 KiB), every stride and padding kind, taps that reach past the image, 1x1 filters.
  { x: [3, 64, 64, 4], filter: [3, 3, 4, 8], strides: 1, pad: 'same' },
  { x: [3, 9, 11, 4], filter: [3, 3, 4, 8], strides: 1, pad: 'valid' },
  {
    x: [2, 10, 9, 12],
    filter: [5, 3, 12, 24],
    strides: [2, 1],
    pad: [
      [0, 0],
      [2, 1],
      [0, 2],
      [0, 0],
    ],
  },
  { x: [2, 13, 7, 16], filter: [4, 4, 16, 8], strides: 3, pad: 'same' },
  { x: [2, 3, 3, 4], filter: [5, 5, 4, 8], strides: 1, pad: 'same' },
  { x: [2, 9, 7, 8], filter: [1, 1, 8, 8], strides: 2, pad: 'same' },
  // Other input channels, output channels in 8s: the SIMD filter gradient on x zero-padded to channels in 4s
  // (model-lite's first layer at even and odd sizes, 6 and 1 channels).
  { x: [2, 18, 24, 3], filter: [3, 3, 3, 16], strides: 2, pad: 'same' },
  { x: [3, 17, 23, 3], filter: [3, 3, 3, 8], strides: 2, pad: 'same' },
  { x: [2, 9, 10, 6], filter: [3, 2, 6, 8], strides: 1, pad: 'valid' },
  { x: [2, 8, 8, 1], filter: [3, 3, 1, 16], strides: [1, 2], pad: 'same' },
  // Conv2D in SIMD on wasm (_conv2d-simd.ts) for 4n -> 8n channels, rows of 4+ output pixels: rows of 4, of 5
  // and 6 (the last tile moved back), strides 1-3, valid padding with input left over, the phase
  // convolutions of the input gradients (16 -> 8 channels).
  { x: [2, 6, 4, 4], filter: [3, 3, 4, 8], strides: 1, pad: 'same' },
  { x: [3, 7, 10, 8], filter: [3, 3, 8, 16], strides: 2, pad: 'same' },
  { x: [2, 11, 17, 4], filter: [3, 2, 4, 8], strides: 3, pad: 'valid' },
  { x: [2, 8, 13, 12], filter: [2, 3, 12, 8], strides: [1, 2], pad: 'valid' },
];

/** y = conv2d(x, W), and dx and dW of sum(y * upstream), on the current backend. */
function convGradients(c: Case, seed: number): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor4d(
      random(
        c.x.reduce((a, b) => a * b),
        seed,
      ),
      c.x,
    );
    const w = tf.tensor4d(
      random(
        c.filter.reduce((a, b) => a * b),
        seed + 1,
      ),
      c.filter,
    );
    const y = tf.conv2d(x, w, c.strides, c.pad);
    const outShape = y.shape;
    const upstream = tf.tensor(
      random(
        outShape.reduce((a, b) => a * b),
        seed + 2,
      ),
      outShape,
    );
    const [dx, dw] = tf.grads((xs: tf.Tensor, ws: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(xs as tf.Tensor4D, ws as tf.Tensor4D, c.strides, c.pad), upstream)),
    )([x, w]);
    return {
      y: y.dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array,
      dw: dw!.dataSync() as Float32Array,
    };
  });
}

/** Largest absolute difference relative to the largest reference magnitude. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

/** wasm's own Conv2D (XNNPACK), put back for a moment. */
function restoredConv2d(): KernelFunc {
  restoreOriginalKernels('wasm');
  const own = tf.getKernel('Conv2D', 'wasm')!.kernelFunc;
  registerTrainingKernels('wasm');
  return own;
}

describe('composed convolution gradient kernels', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    await initBackend({ backend: 'wasm' });
  });

  /** The reference: tfjs-backend-cpu's own kernels. */
  async function cpuReference(c: Case, seed: number) {
    restoreOriginalKernels('cpu');
    await tf.setBackend('cpu');
    try {
      return convGradients(c, seed);
    } finally {
      registerTrainingKernels('cpu');
    }
  }

  it('registers Conv2DBackpropFilter and replaces Conv2DBackpropInput on wasm', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc.name).not.toBe('conv2DBackpropInput');
  });

  it('replaces Conv2DBackpropFilter on cpu and restores the original', () => {
    const composed = tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc;
    restoreOriginalKernels('cpu');
    const original = tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc;
    registerTrainingKernels('cpu');
    expect(original).toBeDefined();
    expect(original).not.toBe(composed);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc).not.toBe(original);
  });

  it('splits strided input gradients into stride-1 convolutions over dy (no zero-spread dy)', async () => {
    const c = cases.find((k) => k.x[1] === 15 && k.strides === 2)!;
    await tf.setBackend('wasm');
    const conv = tf.getKernel('Conv2D', 'wasm')!;
    const shapes: number[][] = [];
    tf.unregisterKernel('Conv2D', 'wasm');
    tf.registerKernel({
      ...conv,
      kernelFunc: (args) => {
        shapes.push((args.inputs.x as tf.TensorInfo).shape);
        return conv.kernelFunc(args);
      },
    });
    try {
      tf.tidy(() => {
        const dy = tf.ones([2, 8, 11, 16]) as tf.Tensor4D;
        tf.conv2dTranspose(dy, tf.ones(c.filter) as tf.Tensor4D, c.x, 2, 'same').dataSync();
      });
    } finally {
      tf.unregisterKernel('Conv2D', 'wasm');
      tf.registerKernel(conv);
    }
    expect(shapes).toHaveLength(4);
    for (const shape of shapes) expect(shape).toEqual([2, 8, 11, 16]);
  });

  it('computes filter gradients of 4n -> 8n channel layers in SIMD on wasm, without Conv2D or BatchMatMul (any input channels, padded)', async () => {
    await tf.setBackend('wasm');
    expect(filterSimdFor(tf.backend(), 8, 16)).toBeDefined();
    expect(filterSimdFor(tf.backend(), 3, 16)).toBeUndefined();
    expect(filterSimdFor(tf.backend(), 8, 12)).toBeUndefined();
    const called: string[] = [];
    const spied = ['Conv2D', 'BatchMatMul'].map((name) => tf.getKernel(name, 'wasm')!);
    for (const config of spied) {
      tf.unregisterKernel(config.kernelName, 'wasm');
      tf.registerKernel({
        ...config,
        kernelFunc: (args) => {
          called.push(config.kernelName);
          return config.kernelFunc(args);
        },
      });
    }
    try {
      tf.tidy(() => {
        const dy = tf.ones([2, 5, 5, 16]) as tf.Tensor4D;
        /** dW of a stride-2 3x3 convolution from `inChannels` channels of ones to dy's 16. */
        const filterGradient = (inChannels: number) =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.ones([2, 9, 9, inChannels]), dy }, {
            strides: [2, 2],
            pad: 'same',
            dataFormat: 'NHWC',
            filterShape: [3, 3, inChannels, 16],
          } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const dw = filterGradient(8);
        // Each weight of the middle tap sums dy over all 2 x 5 x 5 output pixels (x is ones).
        expect(dw.shape).toEqual([3, 3, 8, 16]);
        expect(dw.dataSync()[(1 * 3 + 1) * 8 * 16]).toBe(50);
        // 3 input channels (an RGB image): the SIMD kernel on a copy padded to 4.
        const rgb = filterGradient(3);
        expect(rgb.shape).toEqual([3, 3, 3, 16]);
        expect(rgb.dataSync()[(1 * 3 + 1) * 3 * 16 + 2 * 16 + 15]).toBe(50);
      });
    } finally {
      for (const config of spied) {
        tf.unregisterKernel(config.kernelName, 'wasm');
        tf.registerKernel(config);
      }
    }
    expect(called).toEqual([]);
  });

  it('runs Conv2D of 4n -> 8n channels with rows of 4+ pixels in SIMD on wasm, else wasm own', async () => {
    await tf.setBackend('wasm');
    const own = restoredConv2d();
    const calls: number[][] = [];
    const conv = makeConv2d((args) => {
      calls.push((args.inputs.x as tf.TensorInfo).shape);
      return own(args);
    });
    const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
    const run = (x: number[], filter: number[]) =>
      tf.tidy(() => {
        const inputs = { x: tf.ones(x), filter: tf.ones(filter) };
        const out = conv({ inputs, backend: tf.backend(), attrs } as unknown as Parameters<KernelFunc>[0]);
        tf.backend().disposeData((out as tf.TensorInfo).dataId);
      });
    run([1, 5, 6, 8], [3, 3, 8, 16]);
    expect(calls).toEqual([]);
    run([1, 5, 6, 3], [3, 3, 3, 16]);
    run([1, 5, 6, 8], [3, 3, 8, 12]);
    run([1, 5, 3, 8], [3, 3, 8, 16]);
    expect(calls).toEqual([
      [1, 5, 6, 3],
      [1, 5, 6, 8],
      [1, 5, 3, 8],
    ]);
  });

  it.each(cases.map((c, i) => [i, c] as const))(
    'case %i: cpu composed gradients match the cpu originals (%j)',
    async (i, c) => {
      const expected = await cpuReference(c, 100 * i + 50);
      await tf.setBackend('cpu');
      const actual = convGradients(c, 100 * i + 50);
      expect(relativeError(actual.dw, expected.dw)).toBeLessThan(1e-5);
      expect(relativeError(actual.dx, expected.dx)).toBeLessThan(1e-5);
    },
  );

  it.each(cases.map((c, i) => [i, c] as const))(
    'case %i: wasm gradients match the cpu backend (%j)',
    async (i, c) => {
      const expected = await cpuReference(c, 100 * i);
      await tf.setBackend('wasm');
      const wasmBackend = tf.backend();
      const before = wasmBackend.numDataIds();
      const actual = convGradients(c, 100 * i);
      // The composed kernels free every intermediate they make.
      expect(wasmBackend.numDataIds()).toBe(before);
      expect(relativeError(actual.y, expected.y)).toBeLessThan(1e-5);
      expect(relativeError(actual.dw, expected.dw)).toBeLessThan(1e-5);
      expect(relativeError(actual.dx, expected.dx)).toBeLessThan(1e-5);
    },
  );
});
