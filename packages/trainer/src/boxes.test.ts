import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classificationHead, initBackend, saveModel } from '@litter/model';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boxIoU } from './detection.js';
import { formatEvaluation } from './format.js';
import { computeBoxMetrics, computeEvaluation } from './metrics.js';
import { loadRun, predictImages } from './predict.js';

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

    // COCO APs (detection.test.ts checks their values): a table per class and a line of means
    expect(evaluation.detection?.classes.map((c) => c.objects)).toEqual([2, 3]);
    expect(text).toMatch(/^Detection \(COCO average precision, one box per class per image\)$/m);
    expect(text).toMatch(/^class +objects +AP50 +AP75 +AP$/m);
    expect(text).toMatch(/^AP50 \d\.\d{3} +AP75 \d\.\d{3} +AP \(IoU 0\.5:0\.95\) \d\.\d{3}$/m);

    const withoutBoxes = formatEvaluation(computeEvaluation(probabilities, labels, ['A', 'B']));
    expect(withoutBoxes).not.toMatch(/IoU|AP50/);
  });
});

describe('runs with the pooled [B, 5C] box head (before the CenterNet head)', () => {
  let directory: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    directory = await mkdtemp(join(tmpdir(), 'litter-pooled-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('still load and predict one ordered box per class', async () => {
    const input = tfl.input({ shape: [72, 96, 3] });
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(input) as tfl.SymbolicTensor;
    const output = classificationHead(pooled, { inputShape: [72, 96, 3], classes: 3, boxes: true }, () => ({
      seed: 3,
    }));
    const model = tfl.model({ inputs: input, outputs: output });
    await saveModel(model, directory);
    model.dispose();
    await writeFile(join(directory, 'vocabulary.json'), JSON.stringify(['Cone', 'Cube', 'Sphere']));
    const run = await loadRun(directory);
    try {
      expect(run.boxes).toBe(true);
      const [prediction] = await predictImages(run, [
        join(import.meta.dirname, '../../../test/fixtures/blender-three-wide/0-0y-0p.png'),
      ]);
      expect(prediction!.classes).toHaveLength(3);
      for (const { box } of prediction!.classes) {
        expect(box!.x1).toBeLessThanOrEqual(box!.x2);
        expect(box!.y1).toBeLessThanOrEqual(box!.y2);
        expect(box!.x1).toBeGreaterThanOrEqual(0);
        expect(box!.y2).toBeLessThanOrEqual(1);
      }
    } finally {
      run.model.dispose();
    }
  });
});
