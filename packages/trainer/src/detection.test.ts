import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COCO_IOU_THRESHOLDS, cocoAveragePrecision, computeDetectionMetrics } from './detection.js';

/** Detections and pycocotools' figures for them (test/fixtures/coco-reference.py wrote it). */
interface CocoReference {
  images: number;
  classes: number;
  labels: number[];
  scores: number[];
  truth: number[][];
  predicted: number[][];
  expected: { ap50: number; ap75: number; ap: number }[];
}

/** A predicted box with IoU `iou` against the true box [0, 0, 1, 1]: [0, 0, iou, 1]. */
const withIoU = (iou: number) => [0, 0, iou, 1];

describe('cocoAveragePrecision', () => {
  // Four images, three true boxes (images 0-2). Scores 0.9, 0.8, 0.7, 0.6; IoUs 0.92, 0.3, 0.62, none.
  // At IoU 0.5: TP, FP, TP, FP: recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 1/2; made monotone from the
  // right: 1, 2/3, 2/3, 1/2. Recall points 0..0.33 (34 of them) read 1, 0.34..0.66 (33) read 2/3, 0.67..1 read 0:
  // AP = (34 + 33 x 2/3) / 101 = 56 / 101.
  const scores = [0.9, 0.8, 0.7, 0.6];
  const ious = [0.92, 0.3, 0.62, undefined];

  it("interpolates at COCO's 101 recall points, by hand", () => {
    expect(cocoAveragePrecision(scores, ious, 3, 0.5)).toBeCloseTo(56 / 101, 12);
    // At 0.75 only image 0 is found: recall 1/3 at precision 1, then never more: 34 / 101.
    expect(cocoAveragePrecision(scores, ious, 3, 0.75)).toBeCloseTo(34 / 101, 12);
    expect(cocoAveragePrecision(scores, ious, 3, 0.95)).toBe(0);
  });

  it('is 1 when every object is found before any false positive, and 0 without objects', () => {
    expect(cocoAveragePrecision([0.9, 0.8, 0.1], [0.7, 0.8, undefined], 2, 0.5)).toBe(1);
    expect(cocoAveragePrecision([0.9], [undefined], 0, 0.5)).toBe(0);
  });

  it('counts an object missed by the detector in the recall (only 1 of 2 found: AP 51/101)', () => {
    // the one image with a true box that has no detection here still counts as an object
    expect(cocoAveragePrecision([0.9], [0.8], 2, 0.5)).toBeCloseTo(51 / 101, 12);
  });

  it('sorts by score, ties in image order', () => {
    // tie between a false positive (first) and a true positive: FP then TP, precision 1/2 at recall 1
    expect(cocoAveragePrecision([0.5, 0.5], [undefined, 0.9], 1, 0.5)).toBeCloseTo(0.5, 12);
  });
});

describe('computeDetectionMetrics', () => {
  it("gives pycocotools' AP50, AP75 and AP 0.5:0.95 on 16 images x 3 classes, one box per class per image", () => {
    // The independent reference: COCO's own evaluation (COCOeval, bbox) on the same detections, each image's
    // every class a detection as our decoders give them; no IoU within 0.004 of a threshold, no tied scores.
    const reference = JSON.parse(
      readFileSync(new URL('../test/fixtures/coco-reference.json', import.meta.url), 'utf8'),
    ) as CocoReference;
    const { images, classes } = reference;
    expect(reference.labels).toHaveLength(images * classes);
    const metrics = computeDetectionMetrics(
      Float32Array.from(reference.scores),
      Float32Array.from(reference.labels),
      Array.from({ length: classes }, (_, c) => `class ${c}`),
      {
        predicted: Float32Array.from(reference.predicted.flat()),
        truth: Float32Array.from(reference.truth.flat()),
        mask: Float32Array.from(reference.labels),
      },
    );
    reference.expected.forEach((expected, c) => {
      const got = metrics.classes[c]!;
      expect(got.objects).toBe(reference.labels.filter((l, k) => l === 1 && k % classes === c).length);
      expect(got.ap50).toBeCloseTo(expected.ap50, 9);
      expect(got.ap75).toBeCloseTo(expected.ap75, 9);
      expect(got.ap).toBeCloseTo(expected.ap, 9);
    });
    // the three classes differ (the fixture exercises more than a perfect detector)
    expect(new Set(reference.expected.map((e) => e.ap50.toFixed(6))).size).toBe(3);
  });

  it('gives per-class AP50, AP75 and AP 0.5:0.95 and their means over classes with objects', () => {
    // Class A: the four images above. Class B: visible on image 0 without a valid box (ignored), absent on
    // image 1 (a detection, false positive, scored 0.1), image 2 found with IoU 0.8, absent on 3 (score 0.2).
    const probabilities = new Float32Array([0.9, 0.7, 0.8, 0.1, 0.7, 0.6, 0.6, 0.2]);
    const labels = new Float32Array([1, 1, 1, 0, 1, 1, 0, 0]);
    const mask = new Float32Array([1, 0, 1, 0, 1, 1, 0, 0]);
    const truth = new Float32Array(4 * 2 * 4);
    for (let k = 0; k < 8; k++) truth.set([0, 0, 1, 1], k * 4);
    const predicted = new Float32Array([
      ...withIoU(0.92),
      ...withIoU(0.1),
      ...withIoU(0.3),
      ...withIoU(0.5),
      ...withIoU(0.62),
      ...withIoU(0.8),
      ...withIoU(0.9),
      ...withIoU(0.9),
    ]);
    const metrics = computeDetectionMetrics(probabilities, labels, ['A', 'B'], { predicted, truth, mask });
    const [a, b] = metrics.classes;
    expect(a!.objects).toBe(3);
    expect(a!.ap50).toBeCloseTo(56 / 101, 6);
    expect(a!.ap75).toBeCloseTo(34 / 101, 6);
    // IoU 0.92, 0.3, 0.62: thresholds 0.5-0.6 (3) give 56/101, 0.65-0.9 (6) give 34/101, 0.95 gives 0
    expect(a!.ap).toBeCloseTo((3 * 56 + 6 * 34) / 1010, 6);
    // B: one object (image 2, score 0.6, IoU 0.8), found first (its false positives score 0.1 and 0.2): AP 1 up
    // to IoU 0.8, 0 from 0.85
    expect(b!.objects).toBe(1);
    expect(b!.ap50).toBe(1);
    expect(b!.ap).toBeCloseTo(7 / 10, 6);
    expect(metrics.ap50).toBeCloseTo((56 / 101 + 1) / 2, 6);
    expect(metrics.ap).toBeCloseTo(((3 * 56 + 6 * 34) / 1010 + 0.7) / 2, 6);
  });

  it('leaves classes without objects out of the means', () => {
    const metrics = computeDetectionMetrics(
      new Float32Array([0.9, 0.4]),
      new Float32Array([1, 0]),
      ['A', 'B'],
      {
        predicted: new Float32Array([0, 0, 1, 1, 0, 0, 1, 1]),
        truth: new Float32Array([0, 0, 1, 1, 0, 0, 1, 1]),
        mask: new Float32Array([1, 0]),
      },
    );
    expect(metrics.classes[1]).toEqual({ name: 'B', objects: 0, ap50: 0, ap75: 0, ap: 0 });
    expect(metrics.ap).toBe(1);
  });

  it("uses COCO's ten IoU thresholds", () => {
    expect(COCO_IOU_THRESHOLDS).toEqual([0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]);
  });

  it("ranks the boxes by their own scores when given, else by the class's probability", () => {
    // The four images of cocoAveragePrecision's example (IoUs 0.92, 0.3, 0.62, no object): by probability
    // 0.9, 0.8, 0.7, 0.6 AP50 is 56/101. Scores 0.9, 0.1, 0.7, 0.6 put the poor box (IoU 0.3) last: TP, TP, FP,
    // FP, precision 1 up to recall 2/3, so the 67 recall points 0..0.66 read 1: 67/101.
    const probabilities = new Float32Array([0.9, 0.8, 0.7, 0.6]);
    const boxes = {
      predicted: new Float32Array([...withIoU(0.92), ...withIoU(0.3), ...withIoU(0.62), ...withIoU(1)]),
      truth: new Float32Array(Array.from({ length: 4 }, () => [0, 0, 1, 1]).flat()),
      mask: new Float32Array([1, 1, 1, 0]),
    };
    const labels = boxes.mask;
    expect(computeDetectionMetrics(probabilities, labels, ['A'], boxes).ap50).toBeCloseTo(56 / 101, 6);
    const scores = new Float32Array([0.9, 0.1, 0.7, 0.6]);
    expect(computeDetectionMetrics(probabilities, labels, ['A'], { ...boxes, scores }).ap50).toBeCloseTo(
      67 / 101,
      6,
    );
  });

  it('rejects arrays of other sizes', () => {
    expect(() =>
      computeDetectionMetrics(new Float32Array(2), new Float32Array(2), ['A', 'B'], {
        predicted: new Float32Array(4),
        truth: new Float32Array(8),
        mask: new Float32Array(2),
      }),
    ).toThrow(/detection metrics need/);
    expect(() =>
      computeDetectionMetrics(new Float32Array(2), new Float32Array(2), ['A', 'B'], {
        predicted: new Float32Array(8),
        truth: new Float32Array(8),
        mask: new Float32Array(2),
        scores: new Float32Array(1),
      }),
    ).toThrow(/detection metrics need/);
  });
});
