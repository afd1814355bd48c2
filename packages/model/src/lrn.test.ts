import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { loadModel, saveModel } from './io.js';
import { LocalResponseNormalization } from './lrn.js';

const shape: [number, number, number, number] = [2, 3, 4, 7];
const params = { depthRadius: 2, bias: 1.5, alpha: 0.4, beta: 0.75 };

function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = (s / 2147483647) * 4 - 2;
  }
  return out;
}

const size = shape.reduce((a, b) => a * b);
const input = values(size, 11);
const weights = values(size, 29);

/** TensorFlow's definition, written out: y = x / (bias + alpha * sum over the channel window of x^2)^beta. */
function reference(x: Float32Array, p = params): Float32Array {
  const channels = shape[3];
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % channels;
    const base = i - c;
    let sum = 0;
    for (let d = Math.max(0, c - p.depthRadius); d <= Math.min(channels - 1, c + p.depthRadius); d++)
      sum += x[base + d]! ** 2;
    y[i] = x[i]! / (p.bias + p.alpha * sum) ** p.beta;
  }
  return y;
}

function objective(layer: LocalResponseNormalization, x: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(layer.apply(x) as tf.Tensor, tf.tensor(weights, shape)));
}

describe('LocalResponseNormalization', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it.each(['cpu', 'wasm'] as const)("computes TensorFlow's LRN on %s", async (backend) => {
    await initBackend({ backend });
    const layer = new LocalResponseNormalization(params);
    const y = tf.tidy(() => (layer.apply(tf.tensor(input, shape)) as tf.Tensor).dataSync());
    const expected = reference(input);
    for (let i = 0; i < size; i++) expect(y[i]).toBeCloseTo(expected[i]!, 5);
  });

  it('has a gradient that matches central finite differences', async () => {
    await initBackend({ backend: 'cpu' });
    const layer = new LocalResponseNormalization(params);
    const analytic = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) => objective(layer, x))(tf.tensor(input, shape))
        .dataSync(),
    );
    // f(x) evaluated in float64 from the written-out definition, so the differences are exact enough.
    const f = (x: Float32Array) => {
      const y = reference(x);
      let total = 0;
      for (let i = 0; i < y.length; i++) total += y[i]! * weights[i]!;
      return total;
    };
    const eps = 1e-3;
    let worst = 0;
    for (let i = 0; i < size; i++) {
      const plus = Float32Array.from(input);
      const minus = Float32Array.from(input);
      plus[i]! += eps;
      minus[i]! -= eps;
      const numeric = (f(plus) - f(minus)) / (plus[i]! - minus[i]!);
      worst = Math.max(worst, Math.abs(numeric - analytic[i]!) / Math.max(1, Math.abs(numeric)));
    }
    expect(worst).toBeLessThan(2e-3);
  });

  it('has the same gradient on wasm as on cpu', async () => {
    const layer = new LocalResponseNormalization(params);
    const grad = () =>
      tf.tidy(() =>
        tf
          .grad((x: tf.Tensor) => objective(layer, x))(tf.tensor(input, shape))
          .dataSync(),
      );
    await initBackend({ backend: 'cpu' });
    const cpu = grad();
    await initBackend({ backend: 'wasm' });
    const wasm = grad();
    for (let i = 0; i < size; i++) expect(wasm[i]).toBeCloseTo(cpu[i]!, 5);
  });

  it('is serialisable: a saved model with it loads back with its parameters', async () => {
    await initBackend({ backend: 'cpu' });
    const model = tfl.sequential({
      layers: [new LocalResponseNormalization({ ...params, inputShape: [3, 4, 7], name: 'lrn' })],
    });
    const directory = await mkdtemp(path.join(tmpdir(), 'litter-lrn-'));
    try {
      await saveModel(model, directory);
      const json = JSON.parse(await readFile(path.join(directory, 'model.json'), 'utf8'));
      expect(JSON.stringify(json.modelTopology)).toContain('"class_name":"LocalResponseNormalization"');
      const loaded = await loadModel(directory);
      const layer = loaded.getLayer('lrn') as LocalResponseNormalization;
      expect(layer).toBeInstanceOf(LocalResponseNormalization);
      expect([layer.depthRadius, layer.bias, layer.alpha, layer.beta]).toEqual([2, 1.5, 0.4, 0.75]);
      const x = tf.tensor(input, shape);
      const same = tf.tidy(
        () =>
          tf.max(tf.abs(tf.sub(loaded.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor))).dataSync()[0],
      );
      expect(same).toBe(0);
      x.dispose();
      loaded.dispose();
    } finally {
      model.dispose();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
