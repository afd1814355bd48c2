import { initBackend } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskedBoxLoss } from './_loss.js';
import { formatEvaluation } from './format.js';
import { boxIoU, computeBoxMetrics, computeEvaluation } from './metrics.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

// Three images, two classes (A, B). Every expected value below was worked out by hand from this table
// (boxes [x1, y1, x2, y2]):
//   image  p(A) A  true A             predicted A         IoU    p(B) B  true B             predicted B          IoU
//   0      0.9  1  [0, 0, .5, .5]     [.25, 0, .75, .5]   1/3    0.8  1  [.2, .2, .6, .6]   [.6, .6, .2, .2]     1
//   1      0.7  1  [0, 0, 1, 1]       [0, 0, .5, 1]       1/2    0.3  1  [.5, .5, 1, 1]     [0, 0, .1, .1]       0
//   2      0.6  0  (absent)           [.1, .1, .2, .2]    -      0.9  1  [0, 0, .4, .5]     [.1, 0, .5, .5]      0.6
// A's IoU of 1/3: intersection .25 x .5 = .125, union .25 + .25 - .125 = .375. B's 0.6: .3 x .5 = .15 over
// .2 + .2 - .15 = .25. B's predicted box on image 0 has its corners swapped: it is the same rectangle.
const probabilities = new Float32Array([0.9, 0.8, 0.7, 0.3, 0.6, 0.9]);
const labels = new Float32Array([1, 1, 1, 1, 0, 1]);
const truth = new Float32Array([
  ...[0, 0, 0.5, 0.5, 0.2, 0.2, 0.6, 0.6],
  ...[0, 0, 1, 1, 0.5, 0.5, 1, 1],
  // image 2's A is absent: its "true box" is whatever is stored there, here the very box predicted
  ...[0.1, 0.1, 0.2, 0.2, 0, 0, 0.4, 0.5],
]);
const predicted = new Float32Array([
  ...[0.25, 0, 0.75, 0.5, 0.6, 0.6, 0.2, 0.2],
  ...[0, 0, 0.5, 1, 0, 0, 0.1, 0.1],
  ...[0.1, 0.1, 0.2, 0.2, 0.1, 0, 0.5, 0.5],
]);
const mask = new Float32Array([1, 1, 1, 1, 0, 1]);
const boxes = { predicted, truth, mask };

describe('boxIoU', () => {
  it('divides the intersection by the union', () => {
    expect(boxIoU([0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5])).toBeCloseTo(1 / 3, 10);
    expect(boxIoU([0, 0, 1, 1], [0, 0, 0.5, 1])).toBe(0.5);
    expect(boxIoU([0, 0, 0.25, 0.25], [0.5, 0.5, 1, 1])).toBe(0);
    expect(boxIoU([0.2, 0.2, 0.2, 0.6], [0.2, 0.2, 0.2, 0.6])).toBe(0); // empty boxes
  });

  it('takes a box as the rectangle its corners span', () => {
    expect(boxIoU([0.6, 0.6, 0.2, 0.2], [0.2, 0.2, 0.6, 0.6])).toBeCloseTo(1, 6);
    expect(boxIoU([0.75, 0.5, 0.25, 0], [0, 0, 0.5, 0.5])).toBeCloseTo(1 / 3, 10);
  });
});

describe('localisation metrics', () => {
  it('average the IoU over the true positives of each class, and pool them', () => {
    const { classes, overall } = computeBoxMetrics(probabilities, labels, [0.5, 0.5], boxes);
    // A: true positives on images 0 and 1 (image 2 is a false positive); IoU 0.5 counts as >= 0.5
    expect(classes[0]!.count).toBe(2);
    expect(classes[0]!.meanIoU).toBeCloseTo((1 / 3 + 1 / 2) / 2, 6);
    expect(classes[0]!.shareIoU50).toBe(0.5);
    // B: true positives on images 0 and 2 (image 1 is a false negative at 0.5)
    expect(classes[1]!.count).toBe(2);
    expect(classes[1]!.meanIoU).toBeCloseTo((1 + 0.6) / 2, 6);
    expect(classes[1]!.shareIoU50).toBe(1);
    expect(overall.count).toBe(4);
    expect(overall.meanIoU).toBeCloseTo((1 / 3 + 1 / 2 + 1 + 0.6) / 4, 6);
    expect(overall.shareIoU50).toBe(0.75);
  });

  it('follow the thresholds, and skip classes without a true box', () => {
    // B's threshold 0.25 makes image 1 a true positive, with IoU 0
    const tuned = computeBoxMetrics(probabilities, labels, [0.5, 0.25], boxes).classes[1]!;
    expect(tuned.count).toBe(3);
    expect(tuned.meanIoU).toBeCloseTo(1.6 / 3, 6);
    expect(tuned.shareIoU50).toBeCloseTo(2 / 3, 10);
    // a visible class whose box is masked out is not counted
    const masked = computeBoxMetrics(probabilities, labels, [0.5, 0.5], {
      ...boxes,
      mask: new Float32Array([0, 1, 1, 1, 0, 1]),
    }).classes[0]!;
    expect(masked).toEqual({ count: 1, meanIoU: 0.5, shareIoU50: 1 });
  });

  it('are 0 (and shown as -) for a class without true positives', () => {
    const none = computeBoxMetrics(probabilities, labels, [0.95, 0.95], boxes);
    expect(none.overall).toEqual({ count: 0, meanIoU: 0, shareIoU50: 0 });
  });

  it('go into the evaluation at 0.5 and at the tuned thresholds, and into the table', () => {
    const evaluation = computeEvaluation(probabilities, labels, ['A', 'B'], {
      thresholds: [0.5, 0.25],
      boxes,
    });
    expect(evaluation.fixed.classes[0]!.box?.meanIoU).toBeCloseTo(5 / 12, 6);
    expect(evaluation.fixed.box?.count).toBe(4);
    expect(evaluation.tuned?.classes[1]?.box?.count).toBe(3);
    expect(evaluation.tuned?.box?.count).toBe(5);
    expect(JSON.parse(JSON.stringify(evaluation)).fixed.box.shareIoU50).toBe(0.75);

    const text = formatEvaluation(evaluation);
    expect(text).toMatch(/^class +visible +threshold +precision +recall +F1 +AP +boxes +IoU +IoU>=\.5$/m);
    // A at 0.5: 2 boxes, mean IoU 5/12, half of them at IoU >= 0.5
    expect(text).toMatch(/^A +2\/3 +0\.50 .* 2 +0\.417 +0\.500$/m);
    expect(text).toMatch(
      /^boxes of the 4 correctly detected objects: mean IoU 0\.608 +IoU >= 0\.5 for 0\.750$/m,
    );
    expect(text).toMatch(/^boxes of the 5 correctly detected objects: mean IoU 0\.487/m);

    const withoutBoxes = formatEvaluation(computeEvaluation(probabilities, labels, ['A', 'B']));
    expect(withoutBoxes).not.toMatch(/IoU/);
  });
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
