import { TrainerError } from './errors.js';

/** Predicted and true boxes of a set of images, for the localisation metrics. */
export interface BoxPredictions {
  /** images x classes x 4 predicted boxes `[x1, y1, x2, y2]`, normalised, y down (the model's box head). */
  predicted: Float32Array;
  /** images x classes x 4 true boxes, same layout (`Dataset.boxes`). */
  truth: Float32Array;
  /** images x classes: 1 where the class is visible and its true box valid (`Dataset.boxMask`). */
  mask: Float32Array;
  /**
   * images x classes confidences of the predicted boxes, which rank them for average precision (the box head's
   * `scores`, e.g. CenterNet's presence and heatmap peak together). @default the class probabilities
   */
  scores?: Float32Array;
}

/**
 * Intersection over union of two boxes `[x1, y1, x2, y2]`. A box is the rectangle its two corners span, so
 * swapped corners (a box head's outputs are not ordered) give the same box. 0 when the union is empty.
 *
 * @example boxIoU([0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5]) // 0.125 / 0.375 = 1/3
 */
export function boxIoU(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [ax1, ax2] = ordered(a[0]!, a[2]!);
  const [ay1, ay2] = ordered(a[1]!, a[3]!);
  const [bx1, bx2] = ordered(b[0]!, b[2]!);
  const [by1, by2] = ordered(b[1]!, b[3]!);
  const width = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1));
  const height = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1));
  const intersection = width * height;
  const union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - intersection;
  return union > 0 ? intersection / union : 0;
}

const ordered = (p: number, q: number): [number, number] => (p <= q ? [p, q] : [q, p]);

/** COCO's IoU thresholds: 0.5, 0.55, ..., 0.95. */
export const COCO_IOU_THRESHOLDS: readonly number[] = Array.from(
  { length: 10 },
  (_, k) => (50 + 5 * k) / 100,
);

/** COCO's recall points of the interpolated precision-recall curve: 0, 0.01, ..., 1. */
const RECALL_POINTS = Array.from({ length: 101 }, (_, k) => k / 100);

/** Detection metrics of one class (COCO's definitions, with one box per class per image). */
export interface DetectionClassMetrics {
  name: string;
  /** Images with a true box of this class (the ground truth the APs recall). */
  objects: number;
  /** Average precision at IoU 0.5 (COCO's 101-point interpolation); 0 when `objects` is 0. */
  ap50: number;
  /** Average precision at IoU 0.75. */
  ap75: number;
  /** Average precision averaged over IoU 0.5, 0.55, ..., 0.95 (COCO's "AP"). */
  ap: number;
}

/** Detection metrics of a set of images: per class, and the means over the classes that have objects. */
export interface DetectionMetrics {
  classes: DetectionClassMetrics[];
  /** Mean over classes (with objects) of AP at IoU 0.5 (PASCAL VOC's mAP, COCO's AP50). */
  ap50: number;
  ap75: number;
  /** Mean over classes (with objects) of AP at IoU 0.5:0.95 (COCO's headline AP). */
  ap: number;
}

/**
 * Average precision of one class at one IoU threshold, as COCO's evaluation computes it: detections sorted by
 * score (highest first, ties in image order), each a true positive when its image has a true box of the class
 * with IoU >= `iouThreshold` (each true box matches at most once: here there is one detection per image), else a
 * false positive; precision made monotone from the right and read at the 101 recall points 0, 0.01, ..., 1 (0
 * past the highest recall reached); AP is their mean.
 *
 * @param scores one per detection (image)
 * @param ious per detection its IoU with the image's true box, or `undefined` when the image has none
 * @param objects how many true boxes there are (the recall's denominator); 0 gives 0
 * @example cocoAveragePrecision([0.9, 0.8], [0.7, undefined], 1, 0.5) // 1: the one object found first
 */
export function cocoAveragePrecision(
  scores: ArrayLike<number>,
  ious: readonly (number | undefined)[],
  objects: number,
  iouThreshold: number,
): number {
  if (scores.length !== ious.length) {
    throw new TrainerError(
      'invalid-options',
      `cocoAveragePrecision: ${scores.length} scores but ${ious.length} IoUs`,
    );
  }
  if (objects <= 0) return 0;
  const order = Array.from({ length: scores.length }, (_, i) => i).sort(
    (a, b) => scores[b]! - scores[a]! || a - b,
  );
  const precision: number[] = [];
  const recall: number[] = [];
  let truePositives = 0;
  order.forEach((i, k) => {
    const iou = ious[i];
    if (iou !== undefined && iou >= iouThreshold) truePositives++;
    precision.push(truePositives / (k + 1));
    recall.push(truePositives / objects);
  });
  for (let k = precision.length - 2; k >= 0; k--) precision[k] = Math.max(precision[k]!, precision[k + 1]!);
  let sum = 0;
  let k = 0;
  for (const point of RECALL_POINTS) {
    while (k < recall.length && recall[k]! < point) k++;
    if (k < recall.length) sum += precision[k]!;
  }
  return sum / RECALL_POINTS.length;
}

/**
 * Detection metrics (COCO's AP at IoU 0.5, 0.75 and 0.5:0.95) of one box per class per image. Every image gives
 * each class one detection: its box, scored by `boxes.scores` when given, else by the class's probability. An image where the class is labelled
 * visible but has no valid box (`mask` 0) is left out for that class (COCO's "ignore"). Independent of thresholds;
 * the IoU of the correctly detected objects at a threshold is `computeBoxMetrics`'.
 *
 * @param probabilities images x classes, image-major
 * @param labels images x classes multi-hot, same layout
 * @param boxes predicted boxes, true boxes and mask of the same images
 * @example
 * const detection = computeDetectionMetrics(probabilities, labels, vocabulary, boxes);
 * detection.ap50; // mean over classes of AP at IoU 0.5
 */
export function computeDetectionMetrics(
  probabilities: Float32Array,
  labels: Float32Array,
  vocabulary: readonly string[],
  boxes: BoxPredictions,
): DetectionMetrics {
  const classes = vocabulary.length;
  const size = probabilities.length / classes;
  if (
    !Number.isInteger(size) ||
    labels.length !== probabilities.length ||
    boxes.predicted.length !== size * classes * 4 ||
    boxes.truth.length !== size * classes * 4 ||
    boxes.mask.length !== size * classes ||
    (boxes.scores !== undefined && boxes.scores.length !== size * classes)
  ) {
    throw new TrainerError(
      'invalid-options',
      `detection metrics need images x ${classes} probabilities and labels (and box scores), x 4 predicted and ` +
        `true box values and a mask of the same images: got ${probabilities.length}, ${labels.length}` +
        `${boxes.scores ? ` (${boxes.scores.length})` : ''}, ${boxes.predicted.length}, ${boxes.truth.length} ` +
        `and ${boxes.mask.length} values`,
    );
  }
  const scoreOf = boxes.scores ?? probabilities;
  const perClass = vocabulary.map((name, c): DetectionClassMetrics => {
    const scores: number[] = [];
    const ious: (number | undefined)[] = [];
    let objects = 0;
    for (let i = 0; i < size; i++) {
      const k = i * classes + c;
      const hasBox = boxes.mask[k]! >= 0.5;
      if (labels[k]! >= 0.5 && !hasBox) continue; // visible without a box: ignored
      scores.push(scoreOf[k]!);
      if (hasBox) {
        objects++;
        ious.push(boxIoU(boxes.predicted.subarray(k * 4, k * 4 + 4), boxes.truth.subarray(k * 4, k * 4 + 4)));
      } else {
        ious.push(undefined);
      }
    }
    const at = (t: number) => cocoAveragePrecision(scores, ious, objects, t);
    const aps = COCO_IOU_THRESHOLDS.map(at);
    return {
      name,
      objects,
      ap50: aps[0]!,
      ap75: aps[5]!,
      ap: aps.reduce((a, b) => a + b, 0) / aps.length,
    };
  });
  const counted = perClass.filter((m) => m.objects > 0);
  const mean = (key: 'ap50' | 'ap75' | 'ap') =>
    counted.length === 0 ? 0 : counted.reduce((sum, m) => sum + m[key], 0) / counted.length;
  return { classes: perClass, ap50: mean('ap50'), ap75: mean('ap75'), ap: mean('ap') };
}
