import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from '../test/compare.js';
import { random } from '../test/random.js';
import { BATCH_NORM_RELU, BATCH_NORM_RELU_GRAD, usesBatchNormSimd } from './_batchnorm-kernels.js';
import { initBackend } from './backend.js';
import { ConvBatchNormRelu, isBatchNormLayer } from './conv-bn-relu.js';
import { registerTrainingKernels, restoreOriginalKernels } from './training-kernels.js';

/*
 * ConvBatchNormRelu (one differentiable op with the fused batch-norm + ReLU kernels) against tfjs's own ops
 * on the cpu backend with its original kernels: conv2d, moments, batchNorm, relu, differentiated by the tape.
 */

interface Case {
  x: [number, number, number, number];
  filters: number;
  kernelSize: number;
  strides: number;
  padding: 'same' | 'valid';
  /** Added to x: channel means far from 0 (float32 sums must not cancel). */
  xOffset?: number;
}

const cases: Case[] = [
  { x: [2, 9, 9, 3], filters: 4, kernelSize: 3, strides: 1, padding: 'same' },
  { x: [3, 8, 11, 5], filters: 7, kernelSize: 3, strides: 2, padding: 'same' },
  { x: [2, 15, 20, 8], filters: 16, kernelSize: 3, strides: 2, padding: 'same' },
  { x: [2, 10, 7, 3], filters: 5, kernelSize: 3, strides: 2, padding: 'valid' },
  { x: [1, 7, 13, 4], filters: 3, kernelSize: 5, strides: 1, padding: 'valid' },
  { x: [4, 6, 6, 16], filters: 32, kernelSize: 1, strides: 1, padding: 'same' },
  // On wasm the SIMD passes (channels a multiple of 4), over many blocks of pixels, with large channel means.
  { x: [4, 16, 20, 8], filters: 12, kernelSize: 3, strides: 1, padding: 'same', xOffset: 4 },
];

const EPSILON = 1e-3;
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const tensor = (shape: number[], seed: number, scale = 1, offset = 0) =>
  tf.tensor(
    random(size(shape), seed).map((v) => v * scale + offset),
    shape,
  );

interface Inputs {
  x: tf.Tensor4D;
  kernel: tf.Tensor4D;
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

function inputs(c: Case, seed: number): Inputs {
  const channels = c.x[3];
  return {
    x: tensor(c.x, seed, 1, c.xOffset ?? 0) as tf.Tensor4D,
    kernel: tensor([c.kernelSize, c.kernelSize, channels, c.filters], seed + 1) as tf.Tensor4D,
    // Away from 0 and 1, so that scale and shift are both exercised.
    gamma: tensor([c.filters], seed + 2, 0.5, 1) as tf.Tensor1D,
    beta: tensor([c.filters], seed + 3, 0.5, 0.1) as tf.Tensor1D,
  };
}

/** tfjs-layers' conv2d -> BatchNormalization (training) -> ReLU, written with tfjs ops. */
function reference(c: Case, { x, kernel, gamma, beta }: Inputs): tf.Tensor {
  const z = tf.conv2d(x, kernel, c.strides, c.padding);
  const { mean, variance } = tf.moments(z, [0, 1, 2]);
  return tf.relu(tf.batchNorm(z, mean, variance, beta, gamma, EPSILON));
}

/** Frees a layer's weights (tfjs-layers only disposes layers that were applied to symbolic tensors). */
function disposeWeights(layer: tfl.layers.Layer): void {
  for (const weight of layer.weights) weight.dispose();
}

/** A built layer holding `values`' weights. */
function layerWith(c: Case, values: Inputs): ConvBatchNormRelu {
  const layer = new ConvBatchNormRelu({
    filters: c.filters,
    kernelSize: c.kernelSize,
    strides: c.strides,
    padding: c.padding,
    epsilon: EPSILON,
  });
  layer.build([null, c.x[1], c.x[2], c.x[3]]);
  layer.setWeights([values.kernel, values.gamma, values.beta, tf.zeros([c.filters]), tf.ones([c.filters])]);
  return layer;
}

/** Output, then gradients of sum(output * upstream) w.r.t. x, kernel, gamma, beta. */
function valueAndGrads(c: Case, seed: number, useLayer: boolean): Float32Array[] {
  return tf.tidy(() => {
    const values = inputs(c, seed);
    const layer = useLayer ? layerWith(c, values) : undefined;
    const f = (x: tf.Tensor, kernel: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor => {
      if (!layer) return reference(c, { x, kernel, gamma, beta } as Inputs);
      // The layer reads its own weights: route the gradient through them by writing the inputs in.
      return layer.apply(x, { training: true }) as tf.Tensor;
    };
    const value = f(values.x, values.kernel, values.gamma, values.beta);
    const upstream = tensor(value.shape, seed + 4);
    let grads: tf.Tensor[];
    if (layer) {
      const [kernel, gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const dx = tf.grad((x: tf.Tensor) =>
        tf.sum(tf.mul(f(x, values.kernel, values.gamma, values.beta), upstream)),
      )(values.x);
      const { grads: byName } = tf.variableGrads(
        () => tf.sum(tf.mul(f(values.x, values.kernel, values.gamma, values.beta), upstream)) as tf.Scalar,
        [kernel!, gamma!, beta!],
      );
      grads = [dx, byName[kernel!.name]!, byName[gamma!.name]!, byName[beta!.name]!];
      disposeWeights(layer);
    } else {
      grads = tf.grads((x: tf.Tensor, k: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(x, k, g, b), upstream)),
      )([values.x, values.kernel, values.gamma, values.beta]);
    }
    return [value, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

async function cpuReference(c: Case, seed: number): Promise<Float32Array[]> {
  restoreOriginalKernels('cpu');
  await tf.setBackend('cpu');
  try {
    return valueAndGrads(c, seed, false);
  } finally {
    registerTrainingKernels('cpu');
  }
}

const NAMES = ['value', 'dx', 'dKernel', 'dGamma', 'dBeta'];

describe('ConvBatchNormRelu', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    await initBackend({ backend: 'wasm' });
  });

  it('registers its kernels on wasm and cpu', () => {
    for (const backend of ['wasm', 'cpu']) {
      expect(tf.getKernel(BATCH_NORM_RELU, backend)).toBeDefined();
      expect(tf.getKernel(BATCH_NORM_RELU_GRAD, backend)).toBeDefined();
    }
  });

  it('runs batch norm in WebAssembly SIMD on wasm where the channels are a multiple of 4', () => {
    const wasm = tf.findBackend('wasm')!;
    expect(usesBatchNormSimd(wasm, 12)).toBe(true);
    expect(usesBatchNormSimd(wasm, 7)).toBe(false);
    expect(usesBatchNormSimd(tf.findBackend('cpu')!, 12)).toBe(false);
  });

  it.each(cases.map((c, i) => [i, c] as const))(
    'case %i: values and gradients match tfjs ops on cpu, on wasm, on cpu and composed (%j)',
    async (i, c) => {
      const expected = await cpuReference(c, 100 * i);
      for (const backend of ['wasm', 'cpu', 'composed']) {
        await tf.setBackend(backend === 'composed' ? 'cpu' : backend);
        if (backend === 'composed') restoreOriginalKernels('cpu');
        try {
          const numTensors = tf.memory().numTensors;
          const dataIds = tf.backend().numDataIds();
          const actual = valueAndGrads(c, 100 * i, true);
          expect(tf.memory().numTensors, backend).toBe(numTensors);
          expect(tf.backend().numDataIds(), backend).toBe(dataIds);
          actual.forEach((values, k) => {
            expect(relativeError(values, expected[k]!), `${backend} ${NAMES[k]}`).toBeLessThan(1e-5);
          });
        } finally {
          if (backend === 'composed') registerTrainingKernels('cpu');
        }
      }
    },
  );

  it('updates the moving statistics as tfjs-layers BatchNormalization does, and infers with them', async () => {
    const c = cases[1]!;
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      tf.tidy(() => {
        const values = inputs(c, 7);
        const ours = layerWith(c, values);
        const conv = tfl.layers.conv2d({
          filters: c.filters,
          kernelSize: c.kernelSize,
          strides: c.strides,
          padding: c.padding,
          useBias: false,
        });
        const norm = tfl.layers.batchNormalization({ epsilon: EPSILON, momentum: 0.9 });
        ours.momentum = 0.9;
        const theirs = (x: tf.Tensor, training: boolean) =>
          tf.relu(norm.apply(conv.apply(x), { training }) as tf.Tensor);
        theirs(values.x, false);
        conv.setWeights([values.kernel]);
        norm.setWeights([values.gamma, values.beta, tf.zeros([c.filters]), tf.ones([c.filters])]);
        for (let step = 0; step < 3; step++) {
          const x = tensor(c.x, 20 + step, 2, 0.5);
          ours.apply(x, { training: true });
          theirs(x, true);
        }
        const [oursMean, oursVariance] = ours.getWeights().slice(3);
        const [theirMean, theirVariance] = norm.getWeights().slice(2);
        expect(
          relativeError(oursMean!.dataSync() as Float32Array, theirMean!.dataSync() as Float32Array),
        ).toBeLessThan(1e-5);
        expect(
          relativeError(oursVariance!.dataSync() as Float32Array, theirVariance!.dataSync() as Float32Array),
        ).toBeLessThan(1e-5);
        const inferred = ours.apply(values.x, { training: false }) as tf.Tensor;
        expect(
          relativeError(
            inferred.dataSync() as Float32Array,
            theirs(values.x, false).dataSync() as Float32Array,
          ),
        ).toBeLessThan(1e-5);
        for (const layer of [ours, conv, norm]) disposeWeights(layer);
      });
    }
  });

  it('computes no input gradient for a model input, and the weights get the same gradients', async () => {
    await tf.setBackend('wasm');
    const c = cases[2]!;
    const input = tfl.input({ shape: [c.x[1], c.x[2], c.x[3]] });
    const layer = new ConvBatchNormRelu({ filters: c.filters, strides: c.strides, epsilon: EPSILON });
    const model = tfl.model({ inputs: input, outputs: layer.apply(input) as tfl.SymbolicTensor });
    const calls: string[] = [];
    const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
    const runKernel = engine.runKernel;
    try {
      const values = inputs(c, 3);
      model.setWeights([
        values.kernel,
        values.gamma,
        values.beta,
        tf.zeros([c.filters]),
        tf.ones([c.filters]),
      ]);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const upstream = tensor(layer.computeOutputShape([c.x[0], c.x[1], c.x[2], c.x[3]]) as number[], 3 + 4);
      engine.runKernel = function (this: unknown, name: string, ...rest: unknown[]) {
        calls.push(name);
        return runKernel.call(this, name, ...rest);
      };
      const grads = tf.tidy(() => {
        const { grads: byName } = tf.variableGrads(
          () => tf.sum(tf.mul(model.apply(values.x, { training: true }) as tf.Tensor, upstream)) as tf.Scalar,
          variables,
        );
        return variables.map((v) => byName[v.name]!.dataSync() as Float32Array);
      });
      engine.runKernel = runKernel;
      expect(calls).toContain('Conv2DBackpropFilter');
      expect(calls).not.toContain('Conv2DBackpropInput');
      const expected = await cpuReference(c, 3);
      grads.forEach((values, k) => {
        expect(relativeError(values, expected[k + 2]!)).toBeLessThan(1e-5);
      });
      tf.dispose([upstream, values.x, values.kernel, values.gamma, values.beta]);
    } finally {
      engine.runKernel = runKernel;
      model.dispose();
    }
  });

  it('saves and loads through tf.serialization, and counts as a batch-norm layer', async () => {
    await tf.setBackend('cpu');
    const layer = new ConvBatchNormRelu({
      name: 'block',
      filters: 4,
      strides: 2,
      kernelInitializer: tfl.initializers.heNormal({ seed: 5 }),
    });
    const config = layer.getConfig();
    const copy = tf.serialization.SerializationMap.getMap().classNameMap.ConvBatchNormRelu![1](
      ConvBatchNormRelu as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
      JSON.parse(JSON.stringify(config)),
    ) as ConvBatchNormRelu;
    expect(copy.getConfig()).toEqual(config);
    expect(isBatchNormLayer(copy)).toBe(true);
    expect(isBatchNormLayer(tfl.layers.batchNormalization({}))).toBe(true);
    expect(isBatchNormLayer(tfl.layers.reLU({}))).toBe(false);
    expect(() => new ConvBatchNormRelu({ filters: 0 })).toThrow(/filters/);
  });
});
