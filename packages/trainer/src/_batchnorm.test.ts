import { initBackend } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticDataset } from '../test/helpers.js';
import { batchNormLayers, evenlySpaced, recalibrateBatchNorm } from './_batchnorm.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

/** conv -> batch norm -> pooled logits, with the batch norm's input as a second output to check against. */
function bnModel() {
  const input = tfl.input({ shape: [16, 16, 3] });
  const conv = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }) })
    .apply(input) as tfl.SymbolicTensor;
  const normed = tfl.layers.batchNormalization().apply(conv) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(normed) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 2 }).apply(pooled) as tfl.SymbolicTensor;
  return {
    model: tfl.model({ inputs: input, outputs: logits }),
    probe: tfl.model({ inputs: input, outputs: conv }),
  };
}

describe('recalibrateBatchNorm', () => {
  it("sets the moving mean to the mean of the layer's input over the images, and keeps the momentum", () => {
    const dataset = syntheticDataset(48);
    const { model, probe } = bnModel();
    const [layer] = batchNormLayers(model);
    expect(layer).toBeDefined();
    const indices = [0, 5, 9, 12, 20, 33, 40, 47];
    const before = tf.memory().numTensors;
    recalibrateBatchNorm(model, dataset, indices, 4); // two batches of 4: the mean of their means
    expect(tf.memory().numTensors).toBe(before);
    expect(layer!.momentum).toBe(0.99);

    const expected = tf.tidy(() => {
      const pixels = 16 * 16 * 3;
      const images = new Float32Array(indices.length * pixels);
      indices.forEach((index, i) => {
        for (let j = 0; j < pixels; j++) images[i * pixels + j] = dataset.pixels[index * pixels + j]! / 255;
      });
      const conv = probe.predict(tf.tensor4d(images, [indices.length, 16, 16, 3])) as tf.Tensor4D;
      return Array.from(tf.mean(conv, [0, 1, 2]).dataSync());
    });
    const movingMean = Array.from(layer!.getWeights()[2]!.dataSync());
    // Still at their initial 0 unless recalibrated.
    expect(Math.max(...expected.map(Math.abs))).toBeGreaterThan(1e-3);
    movingMean.forEach((value, c) => {
      expect(value).toBeCloseTo(expected[c]!, 5);
    });
    model.dispose();
  });

  it('leaves models without batch norm alone, and spaces the images evenly', () => {
    const input = tfl.input({ shape: [16, 16, 3] });
    const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({
      inputs: input,
      outputs: tfl.layers.dense({ units: 2 }).apply(flat) as tfl.SymbolicTensor,
    });
    expect(batchNormLayers(model)).toEqual([]);
    expect(() => recalibrateBatchNorm(model, syntheticDataset(8), [0, 1], 2)).not.toThrow();
    model.dispose();
    expect(evenlySpaced([10, 11, 12, 13, 14, 15, 16, 17], 4)).toEqual([10, 12, 14, 16]);
    expect(evenlySpaced([1, 2], 4)).toEqual([1, 2]);
  });
});
