import { initBackend, resolveModel } from '@litter/model';
import { testModelFactory } from '@litter/model/conformance';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import liteDefault, { model } from './index.js';

testModelFactory(model, { backends: ['cpu', 'wasm'] });

describe('@litter/model-lite', () => {
  it('is the default export and the `model` export, as resolveModel looks for it (the CLI registers it as lite)', async () => {
    expect(liteDefault).toBe(model);
    const resolved = await resolveModel('@litter/model-lite');
    expect(resolved.name).toBe('lite');
    expect(resolved.create).toBe(model.create);
  });

  it('is compact: conv-batchnorm-relu blocks, global average pooling, few weights', () => {
    const built = model.create({ inputShape: [64, 48, 3], classes: 3 });
    try {
      const kinds = built.layers.map((layer) => layer.getClassName());
      expect(kinds.filter((k) => k === 'ConvBatchNormRelu')).toHaveLength(6);
      expect(kinds).toContain('GlobalAveragePooling2D');
      expect(kinds).not.toContain('Flatten');
      expect(built.countParams()).toBeLessThan(200_000);
    } finally {
      built.dispose();
    }
  });

  it('adds the CenterNet head without changing the rest: same seed, same logits, map at stride 8', async () => {
    await initBackend({ backend: 'cpu' });
    const plain = model.create({ inputShape: [48, 64, 3], classes: 2, seed: 4 });
    const boxed = model.create({ inputShape: [48, 64, 3], classes: 2, boxes: true, seed: 4 });
    try {
      expect(boxed.outputs.map((o) => o.shape)).toEqual([
        [null, 2],
        [null, 48 / 8, 64 / 8, 6],
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

  it('puts the CenterNet head on block 5, with two hidden layers and half its gradient into the backbone', () => {
    const boxed = model.create({ inputShape: [32, 32, 3], classes: 3, boxes: true, seed: 1 });
    try {
      const scale = boxed.getLayer('centres_gradient');
      expect(scale.inboundNodes[0]!.inboundLayers.map((layer) => layer.name)).toEqual(['block5']);
      expect(scale.getConfig().scale).toBe(0.5);
      const hidden = boxed.layers.filter((layer) => /^centres_conv/.test(layer.name));
      expect(hidden.map((layer) => layer.name)).toEqual(['centres_conv', 'centres_conv2']);
      expect(boxed.getLayer('centres_conv2').inboundNodes[0]!.inboundLayers[0]!.name).toBe('centres_conv');
      expect(boxed.getLayer('centres_conv2').getWeights()[0]!.shape).toEqual([3, 3, 64, 64]);
      expect(boxed.layers.map((layer) => layer.name)).not.toContain('centres_up'); // no neck: stride 8
      // Block 6 feeds the pooled logits only.
      const readers = boxed.layers.filter((layer) =>
        layer.inboundNodes.some((node) => node.inboundLayers.some((inbound) => inbound.name === 'block6')),
      );
      expect(readers.map((layer) => layer.name)).toEqual(['pool']);
    } finally {
      boxed.dispose();
    }
  });
});
