import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { GradientScale } from './gradient-scale.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('GradientScale', () => {
  it.each([0, 0.25, 1])('passes values through and scales the gradient by %d', (scale) => {
    const layer = new GradientScale({ scale });
    const before = tf.memory().numTensors;
    const { value, gradient } = tf.tidy(() => {
      const x = tf.tensor2d([
        [1, -2],
        [3, 4],
      ]);
      const f = (input: tf.Tensor) => tf.sum(tf.square(layer.apply(input) as tf.Tensor)) as tf.Scalar;
      const { value, grad } = tf.valueAndGrad(f)(x);
      return { value: value.dataSync()[0], gradient: Array.from(grad.dataSync()) };
    });
    expect(value).toBe(30);
    expect(gradient.map((g) => g + 0)).toEqual([2, -4, 6, 8].map((g) => g * scale + 0));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('serialises its scale', async () => {
    const input = tfl.input({ shape: [2] });
    const model = tfl.model({
      inputs: input,
      outputs: new GradientScale({ scale: 0.5 }).apply(input) as tfl.SymbolicTensor,
    });
    const restored = await tfl.models.modelFromJSON({
      modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'],
    });
    expect((restored.layers[1] as GradientScale).scale).toBe(0.5);
    model.dispose();
    restored.dispose();
  });
});
