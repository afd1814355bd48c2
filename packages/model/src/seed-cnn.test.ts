import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { testModelFactory } from './conformance.js';
import { ModelError } from './errors.js';
import type { LocalResponseNormalization } from './lrn.js';
import { seedCnn } from './seed-cnn.js';

testModelFactory(seedCnn, { backends: ['cpu', 'wasm'] });

describe('seed-cnn', () => {
  it("is the seed's network layer for layer", () => {
    const model = seedCnn.create({ inputShape: [32, 24, 3], classes: 2 });
    try {
      const summary = model.layers.map((layer) => [layer.getClassName(), layer.outputShape]);
      expect(summary).toEqual([
        ['InputLayer', [null, 32, 24, 3]],
        ['Conv2D', [null, 32, 24, 64]],
        ['MaxPooling2D', [null, 16, 12, 64]],
        ['LocalResponseNormalization', [null, 16, 12, 64]],
        ['Conv2D', [null, 16, 12, 64]],
        ['LocalResponseNormalization', [null, 16, 12, 64]],
        ['MaxPooling2D', [null, 8, 6, 64]],
        ['Flatten', [null, 8 * 6 * 64]],
        ['Dense', [null, 384]],
        ['Dense', [null, 192]],
        ['Dense', [null, 2]],
      ]);
      const config = model.getLayer('conv1').getConfig();
      expect(config).toMatchObject({ kernelSize: [5, 5], padding: 'same', activation: 'relu' });
      const lrn = model.getLayer('norm1') as LocalResponseNormalization;
      expect([lrn.depthRadius, lrn.bias, lrn.alpha, lrn.beta]).toEqual([4, 1, 0.001 / 9, 0.75]);
      expect(model.getLayer('pool1').getConfig()).toMatchObject({
        poolSize: [3, 3],
        strides: [2, 2],
        padding: 'same',
      });
      // Conv biases start at 0.1 as in the seed; logits are linear (sigmoid at prediction, never softmax).
      expect(
        Array.from(model.getLayer('conv2').getWeights()[1]!.dataSync()).every(
          (b) => Math.abs(b - 0.1) < 1e-7,
        ),
      ).toBe(true);
      expect(model.getLayer('logits').getConfig()).toMatchObject({ activation: 'linear' });
    } finally {
      model.dispose();
    }
  });

  it('rejects bad options with a ModelError', () => {
    expect(() => seedCnn.create({ inputShape: [32, 32, 1 as 3], classes: 2 })).toThrow(ModelError);
    expect(() => seedCnn.create({ inputShape: [32, 32, 3], classes: 1.5 })).toThrow(
      /classes must be a positive integer/,
    );
  });

  it('adds the CenterNet head without changing the rest: same seed, same logits, map at stride 4', async () => {
    await initBackend({ backend: 'cpu' });
    const plain = seedCnn.create({ inputShape: [48, 64, 3], classes: 2, seed: 4 });
    const boxed = seedCnn.create({ inputShape: [48, 64, 3], classes: 2, boxes: true, seed: 4 });
    try {
      expect(boxed.outputs.map((o) => o.shape)).toEqual([
        [null, 2],
        [null, 48 / 4, 64 / 4, 6],
      ]);
      const images = tf.randomUniform([2, 48, 64, 3], 0, 1, 'float32', 1);
      const [logits, map] = boxed.predict(images) as tf.Tensor[];
      const expected = plain.predict(images) as tf.Tensor;
      expect(Array.from(logits!.dataSync())).toEqual(Array.from(expected.dataSync()));
      tf.dispose([images, logits!, map!, expected]);
    } finally {
      plain.dispose();
      boxed.dispose();
    }
  });
});
