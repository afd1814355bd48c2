import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { boxHeadOf, classificationLoss, maskedBoxLoss, pooledBoxHead, registerBoxHead } from './box-head.js';
import { centerNetHead } from './centernet.js';
import { ModelError } from './errors.js';
import { classificationHead } from './seed-cnn.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('the masked box loss', () => {
  // Two images, two classes; image 0 shows only class 0, image 1 only class 1.
  const boxMask = () => tf.tensor2d([1, 0, 0, 1], [2, 2]);
  const targets = () => tf.tensor2d([0.1, 0.2, 0.3, 0.4, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.9, 0.9], [2, 8]);

  it('is the mean absolute error over the coordinates of the visible classes', () => {
    const value = tf.tidy(() => {
      const output = tf.tensor2d(
        [0.2, 0.2, 0.3, 0.6, 0.9, 0.9, 0.9, 0.9, 0.7, 0.7, 0.7, 0.7, 0.5, 0.6, 0.9, 0.5],
        [2, 8],
      );
      return maskedBoxLoss(output, targets(), boxMask()).dataSync()[0]!;
    });
    // visible: image 0 class 0 |.1|+0+0+|.2| = .3; image 1 class 1 0+|.1|+0+|.4| = .5; 8 coordinates
    expect(value).toBeCloseTo(0.8 / 8, 6);
  });

  it('gives no error and no gradient to the boxes of absent classes', () => {
    const before = tf.memory().numTensors;
    const { value, gradient } = tf.tidy(() => {
      const output = tf.tensor2d(
        [0.1, 0.2, 0.3, 0.4, 0.9, 0.9, 0.9, 0.9, 0.7, 0.7, 0.7, 0.7, 0.5, 0.5, 0.9, 0.9],
        [2, 8],
      );
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) =>
        maskedBoxLoss(x as tf.Tensor2D, targets(), boxMask()),
      )(output);
      return { value: value.dataSync()[0]!, gradient: Array.from(grad.dataSync()) };
    });
    // the visible boxes are exact: whatever the absent classes' outputs, the loss is 0
    expect(value).toBe(0);
    // absent: image 0 class 1 (columns 4-7), image 1 class 0 (columns 8-11)
    expect(gradient.slice(4, 12)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is 0 for a batch without any visible class', () => {
    const value = tf.tidy(
      () =>
        maskedBoxLoss(
          tf.ones([2, 8]) as tf.Tensor2D,
          tf.zeros([2, 8]) as tf.Tensor2D,
          tf.zeros([2, 2]) as tf.Tensor2D,
        ).dataSync()[0]!,
    );
    expect(value).toBe(0);
  });
});

describe('the classification loss', () => {
  // softplus(x) - x y, the sigmoid cross entropy of logit x against label y, written out
  const term = (x: number, y: number) => Math.log1p(Math.exp(x)) - x * y;
  const logits = [2, -1, 0.5, -3];
  const labels = [1, 0, 0, 1];
  const loss = (positiveWeight?: number, images?: number) =>
    tf.tidy(
      () =>
        classificationLoss(
          tf.tensor2d(labels, [2, 2]),
          tf.tensor2d(logits, [2, 2]),
          images,
          positiveWeight,
        ).dataSync()[0]!,
    );

  it('is the mean sigmoid cross entropy, or its sum over a whole batch of `images` for a shard', () => {
    const sum = logits.reduce((total, x, k) => total + term(x, labels[k]!), 0);
    expect(loss()).toBeCloseTo(sum / 4, 5);
    expect(loss(1, 4)).toBeCloseTo(sum / 8, 5);
  });

  it('weights the terms of visible classes by positiveWeight', () => {
    const weighted = logits.reduce((total, x, k) => total + term(x, labels[k]!) * (labels[k] ? 3 : 1), 0);
    expect(loss(3)).toBeCloseTo(weighted / 4, 5);
    expect(loss(3)).toBeGreaterThan(loss(1));
  });

  it("weights the box heads' classification terms the same way", () => {
    const value = (positiveWeight: number) =>
      tf.tidy(() => {
        const output = tf.tensor2d([2, -1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [1, 12]);
        const targets = {
          labels: tf.tensor2d([1, 0], [1, 2]),
          boxes: tf.fill([1, 8], 0.5) as tf.Tensor2D,
          mask: tf.tensor2d([1, 0], [1, 2]),
        };
        return pooledBoxHead.loss([output], targets, { positiveWeight }).dataSync()[0]!;
      });
    // Boxes exact: only the cross entropy is left, term(2, 1) x w + term(-1, 0), over 2 classes
    expect(value(1)).toBeCloseTo((term(2, 1) + term(-1, 0)) / 2, 5);
    expect(value(4)).toBeCloseTo((4 * term(2, 1) + term(-1, 0)) / 2, 5);
  });
});

describe('boxHeadOf', () => {
  const build = (outputs: (input: tfl.SymbolicTensor) => tfl.SymbolicTensor | tfl.SymbolicTensor[]) => {
    const input = tfl.input({ shape: [8, 8, 3] });
    return tfl.model({ inputs: input, outputs: outputs(input) });
  };
  const pooled = (boxes: boolean) => (input: tfl.SymbolicTensor) =>
    classificationHead(
      tfl.layers.flatten().apply(input) as tfl.SymbolicTensor,
      { inputShape: [8, 8, 3], classes: 2, boxes },
      () => ({}),
    );

  it('tells logits only, the pooled [B, 5C] head and the CenterNet head apart', () => {
    const plain = build(pooled(false));
    const old = build(pooled(true));
    const centres = build((input) => [
      pooled(false)(input),
      tfl.layers.conv2d({ filters: 6, kernelSize: 1 }).apply(input) as tfl.SymbolicTensor,
    ]);
    try {
      expect(boxHeadOf(plain, 2)).toBeUndefined();
      expect(boxHeadOf(old, 2)).toBe(pooledBoxHead);
      expect(boxHeadOf(centres, 2)).toBe(centerNetHead);
      expect(() => boxHeadOf(old, 3)).toThrow(ModelError);
      try {
        boxHeadOf(centres, 3);
      } catch (error) {
        expect((error as ModelError).code).toBe('model-mismatch');
      }
    } finally {
      for (const model of [plain, old, centres]) model.dispose();
    }
  });

  it('registers a head once, and refuses another head of the same name', () => {
    registerBoxHead(centerNetHead);
    expect(() => registerBoxHead({ ...centerNetHead })).toThrow(/already registered/);
  });
});

describe('the pooled head', () => {
  it('decodes logits, then boxes with their corners ordered', () => {
    const output = tf.tensor2d([[0.5, -1, 0.6, 0.2, 0.1, 0.4, 0, 0, 1, 1]]);
    const { logits, boxes } = pooledBoxHead.decode([output], 2);
    output.dispose();
    expect(Array.from(logits)).toEqual([0.5, -1]);
    expect(Array.from(boxes)).toEqual([0.1, 0.2, 0.6, 0.4, 0, 0, 1, 1].map(Math.fround));
  });
});
