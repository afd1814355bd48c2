import { type BoxPredictions, boxIoU, computeDetectionMetrics, type DetectionMetrics } from './detection.js';
import { TrainerError } from './errors.js';

/** Metrics of one class at one threshold. */
export interface ClassMetrics {
  /** Class name (vocabulary entry). */
  name: string;
  /** An image counts as "visible" for this class when its probability is `>= threshold`. */
  threshold: number;
  /** Images where the class is visible in the labels. */
  support: number;
  /** Images predicted visible. */
  predicted: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
  trueNegatives: number;
  /** tp / (tp + fp); 0 when nothing is predicted visible (scikit-learn's `zero_division=0`). */
  precision: number;
  /** tp / (tp + fn); 0 when the class never occurs. */
  recall: number;
  /** 2tp / (2tp + fp + fn); 0 when the class never occurs and is never predicted. */
  f1: number;
  /**
   * Average precision over all thresholds (area under the step precision-recall curve, without interpolation,
   * as scikit-learn's `average_precision_score`); independent of `threshold`. 0 when the class never occurs.
   */
  averagePrecision: number;
  /** Localisation of this class's true positives, when the model has a box head. */
  box?: BoxMetrics;
}

/**
 * How well the boxes of correctly detected classes fit: over the true positives at the thresholds (class visible
 * in the labels and predicted visible) that have a true box, the predicted box against the true one.
 */
export interface BoxMetrics {
  /** True positives with a true box: the boxes the figures below are over. */
  count: number;
  /** Mean intersection over union of the predicted and the true box; 0 when `count` is 0. */
  meanIoU: number;
  /** Share of these boxes with IoU >= 0.5 (the usual cut for a correct localisation); 0 when `count` is 0. */
  shareIoU50: number;
}

/** Per-class and overall metrics at one set of per-class thresholds. */
export interface ThresholdMetrics {
  /** One threshold per class, vocabulary order. */
  thresholds: number[];
  classes: ClassMetrics[];
  /** Fraction of images whose every class is predicted right (the seed's "accuracy"). */
  exactMatch: number;
  /** Fraction of (image, class) pairs predicted wrong. */
  hammingLoss: number;
  /** Precision over all (image, class) pairs pooled. */
  microPrecision: number;
  microRecall: number;
  microF1: number;
  /** Mean of the per-class values. */
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  /** Localisation over the true positives of every class pooled, when the model has a box head. */
  box?: BoxMetrics;
}

/** The evaluation of a model on a set of images. Plain JSON (this is what `evaluation.json` holds). */
export interface Evaluation {
  /** Class names, index order. */
  vocabulary: string[];
  /** Number of images evaluated. */
  size: number;
  /** Mean sigmoid cross entropy on the class logits, when logits were available. */
  loss?: number;
  /** Mean over classes of the average precision. */
  meanAveragePrecision: number;
  /** At threshold 0.5 for every class. */
  fixed: ThresholdMetrics;
  /** At the per-class thresholds tuned on the validation split, when given. */
  tuned?: ThresholdMetrics;
  /** With a box head: COCO's AP at IoU 0.5, 0.75 and 0.5:0.95 per class and overall (threshold-free). */
  detection?: DetectionMetrics;
}

/** Options of {@link computeEvaluation}. */
export interface ComputeEvaluationOptions {
  /** Per-class thresholds (e.g. from {@link tuneThresholds}); adds {@link Evaluation.tuned}. */
  thresholds?: readonly number[];
  /** Mean loss to record in the evaluation. */
  loss?: number;
  /** Predicted and true boxes (model with a box head): adds {@link ClassMetrics.box} and {@link ThresholdMetrics.box}. */
  boxes?: BoxPredictions;
}

function checkShapes(probabilities: Float32Array, labels: Float32Array, classes: number): number {
  if (!Number.isInteger(classes) || classes < 1) {
    throw new TrainerError(
      'invalid-options',
      `the number of classes must be a positive integer, got ${classes}`,
    );
  }
  if (probabilities.length !== labels.length || probabilities.length % classes !== 0) {
    throw new TrainerError(
      'invalid-options',
      `probabilities (${probabilities.length} values) and labels (${labels.length} values) must both hold ` +
        `images x ${classes} classes`,
    );
  }
  return probabilities.length / classes;
}

const ratio = (numerator: number, denominator: number): number =>
  denominator === 0 ? 0 : numerator / denominator;

/** One operating point of a precision-recall curve. */
export interface PrecisionRecallPoint {
  /** Scores `>= threshold` count as predicted positive. */
  threshold: number;
  precision: number;
  recall: number;
}

/** A precision-recall curve of one class and its average precision. */
export interface PrecisionRecallCurve {
  /** One point per distinct score, highest threshold (lowest recall) first. Empty when there are no positives. */
  points: PrecisionRecallPoint[];
  /** {@link averagePrecision} of the same scores: 0 when there are no positives. */
  averagePrecision: number;
  /** How many targets are positive (`>= 0.5`). */
  positives: number;
}

/**
 * Scores must be finite: NaN is unordered (sorting and the walk over tied scores would never advance past it) and
 * a probability is never infinite. Such scores come from a model whose weights diverged or are damaged.
 */
function checkFinite(scores: ArrayLike<number>, what: string): void {
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) {
      throw new TrainerError(
        'non-finite-output',
        `${what}: score ${i} is ${scores[i]}: the model's outputs are not finite (its weights diverged or are damaged); use another checkpoint or train again`,
      );
    }
  }
}

/**
 * Walks the precision-recall curve of one class, highest score first: one point per distinct score (tied scores
 * cannot be separated by any threshold, so they enter together, as in scikit-learn). Returns the positives.
 */
function walkCurve(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
  what: string,
  onPoint: (threshold: number, truePositives: number, predicted: number) => void,
): number {
  const n = scores.length;
  if (targets.length !== n) {
    throw new TrainerError('invalid-options', `${what}: ${n} scores but ${targets.length} targets`);
  }
  checkFinite(scores, what);
  let positives = 0;
  for (let i = 0; i < n; i++) if (targets[i]! >= 0.5) positives++;
  if (positives === 0) return 0;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let truePositives = 0;
  let predicted = 0;
  for (let k = 0; k < n; ) {
    const score = scores[order[k]!]!;
    while (k < n && scores[order[k]!]! === score) {
      if (targets[order[k]!]! >= 0.5) truePositives++;
      predicted++;
      k++;
    }
    onPoint(score, truePositives, predicted);
  }
  return positives;
}

/**
 * Average precision of one class: the sum over the distinct scores, highest first, of
 * (recall gained at that score) x (precision at that score). Tied scores form one threshold, as in scikit-learn.
 *
 * @param scores predicted probabilities (or any monotone score), one per image
 * @param targets 1 where the class is visible, 0 elsewhere
 * @returns a value in [0, 1]; 0 when no target is positive
 * @example averagePrecision([0.9, 0.8, 0.3], [1, 0, 1]) // 1 * 0.5 + (2/3) * 0.5 = 0.8333
 */
export function averagePrecision(scores: ArrayLike<number>, targets: ArrayLike<number>): number {
  const points: [number, number][] = [];
  const positives = walkCurve(scores, targets, 'averagePrecision', (_, tp, predicted) =>
    points.push([tp, predicted]),
  );
  return stepSum(points, positives);
}

/** sum over the points of (recall_k - recall_(k-1)) * precision_k, recall_0 = 0; 0 without positives. */
function stepSum(
  points: readonly (readonly [truePositives: number, predicted: number])[],
  positives: number,
) {
  let previousRecall = 0;
  let sum = 0;
  for (const [truePositives, predicted] of points) {
    const recall = truePositives / positives;
    sum += (recall - previousRecall) * (truePositives / predicted);
    previousRecall = recall;
  }
  return sum;
}

/**
 * The precision-recall curve of one class (what the report draws), with its {@link averagePrecision}.
 *
 * @param scores the model's score per image (a probability, or any score where higher means more likely); finite
 * @param targets 1 (positive) or 0 per image; values `>= 0.5` count as positive
 * @example
 * precisionRecallCurve([0.9, 0.8, 0.3], [1, 0, 1]).averagePrecision; // (1/2)*1 + (1/2)*(2/3) = 0.8333
 */
export function precisionRecallCurve(
  scores: ArrayLike<number>,
  targets: ArrayLike<number>,
): PrecisionRecallCurve {
  const points: PrecisionRecallPoint[] = [];
  const counts: [number, number][] = [];
  const positives = walkCurve(scores, targets, 'precisionRecallCurve', (threshold, tp, predicted) => {
    counts.push([tp, predicted]);
    points.push({ threshold, precision: tp / predicted, recall: 0 });
  });
  points.forEach((point, k) => {
    point.recall = counts[k]![0] / positives;
  });
  return { points, averagePrecision: stepSum(counts, positives), positives };
}

/** {@link precisionRecallCurve} of every class. @param probabilities images x classes, image-major */
export function precisionRecallCurves(
  probabilities: Float32Array,
  labels: Float32Array,
  classes: number,
): PrecisionRecallCurve[] {
  checkShapes(probabilities, labels, classes);
  return Array.from({ length: classes }, (_, c) =>
    precisionRecallCurve(columnOf(probabilities, classes, c), columnOf(labels, classes, c)),
  );
}

/**
 * Per-class and overall metrics at given per-class thresholds.
 *
 * @param probabilities images x classes, image-major (row i holds image i's class probabilities)
 * @param labels images x classes multi-hot, same layout
 * @param thresholds one per class; an image is predicted visible for a class when its probability is >= it
 */
export function computeThresholdMetrics(
  probabilities: Float32Array,
  labels: Float32Array,
  vocabulary: readonly string[],
  thresholds: readonly number[],
  averagePrecisions?: readonly number[],
): ThresholdMetrics {
  const classes = vocabulary.length;
  const size = checkShapes(probabilities, labels, classes);
  if (thresholds.length !== classes) {
    throw new TrainerError('invalid-options', `${thresholds.length} thresholds given for ${classes} classes`);
  }
  const tp = new Array<number>(classes).fill(0);
  const fp = new Array<number>(classes).fill(0);
  const fn = new Array<number>(classes).fill(0);
  let exact = 0;
  for (let i = 0; i < size; i++) {
    let allRight = true;
    for (let c = 0; c < classes; c++) {
      const predicted = probabilities[i * classes + c]! >= thresholds[c]!;
      const actual = labels[i * classes + c]! >= 0.5;
      if (predicted && actual) tp[c]!++;
      else if (predicted) fp[c]!++;
      else if (actual) fn[c]!++;
      if (predicted !== actual) allRight = false;
    }
    if (allRight) exact++;
  }
  const perClass: ClassMetrics[] = vocabulary.map((name, c) => {
    const truePositives = tp[c]!;
    const falsePositives = fp[c]!;
    const falseNegatives = fn[c]!;
    return {
      name,
      threshold: thresholds[c]!,
      support: truePositives + falseNegatives,
      predicted: truePositives + falsePositives,
      truePositives,
      falsePositives,
      falseNegatives,
      trueNegatives: size - truePositives - falsePositives - falseNegatives,
      precision: ratio(truePositives, truePositives + falsePositives),
      recall: ratio(truePositives, truePositives + falseNegatives),
      f1: ratio(2 * truePositives, 2 * truePositives + falsePositives + falseNegatives),
      averagePrecision:
        averagePrecisions?.[c] ??
        averagePrecision(columnOf(probabilities, classes, c), columnOf(labels, classes, c)),
    };
  });
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const tpAll = sum(tp);
  const fpAll = sum(fp);
  const fnAll = sum(fn);
  const mean = (key: 'precision' | 'recall' | 'f1') => sum(perClass.map((m) => m[key])) / classes;
  return {
    thresholds: [...thresholds],
    classes: perClass,
    exactMatch: ratio(exact, size),
    hammingLoss: ratio(fpAll + fnAll, size * classes),
    microPrecision: ratio(tpAll, tpAll + fpAll),
    microRecall: ratio(tpAll, tpAll + fnAll),
    microF1: ratio(2 * tpAll, 2 * tpAll + fpAll + fnAll),
    macroPrecision: mean('precision'),
    macroRecall: mean('recall'),
    macroF1: mean('f1'),
  };
}

function columnOf(values: Float32Array, classes: number, c: number): Float32Array {
  const column = new Float32Array(values.length / classes);
  for (let i = 0; i < column.length; i++) column[i] = values[i * classes + c]!;
  return column;
}

/**
 * The full evaluation: metrics at threshold 0.5 and, when `thresholds` are given, at those.
 *
 * @param probabilities images x classes, image-major
 * @param labels images x classes multi-hot, same layout
 * @example
 * const evaluation = computeEvaluation(probabilities, labels, ['Cube', 'Sphere']);
 * evaluation.fixed.exactMatch; // fraction of images with every class right at 0.5
 */
export function computeEvaluation(
  probabilities: Float32Array,
  labels: Float32Array,
  vocabulary: readonly string[],
  options: ComputeEvaluationOptions = {},
): Evaluation {
  const classes = vocabulary.length;
  const size = checkShapes(probabilities, labels, classes);
  const averagePrecisions = vocabulary.map((_, c) =>
    averagePrecision(columnOf(probabilities, classes, c), columnOf(labels, classes, c)),
  );
  const evaluation: Evaluation = {
    vocabulary: [...vocabulary],
    size,
    meanAveragePrecision: averagePrecisions.reduce((a, b) => a + b, 0) / classes,
    fixed: computeThresholdMetrics(
      probabilities,
      labels,
      vocabulary,
      vocabulary.map(() => 0.5),
      averagePrecisions,
    ),
  };
  if (options.loss !== undefined) evaluation.loss = options.loss;
  if (options.thresholds !== undefined) {
    evaluation.tuned = computeThresholdMetrics(
      probabilities,
      labels,
      vocabulary,
      options.thresholds,
      averagePrecisions,
    );
  }
  if (options.boxes) {
    evaluation.detection = computeDetectionMetrics(probabilities, labels, vocabulary, options.boxes);
    for (const metrics of [evaluation.fixed, evaluation.tuned]) {
      if (!metrics) continue;
      const box = computeBoxMetrics(probabilities, labels, metrics.thresholds, options.boxes);
      metrics.box = box.overall;
      metrics.classes.forEach((m, c) => {
        m.box = box.classes[c]!;
      });
    }
  }
  return evaluation;
}

/**
 * Localisation metrics at per-class thresholds: over the true positives (label visible, probability >= threshold)
 * that have a true box (`mask`), the IoU of the predicted box with the true one; per class and pooled.
 *
 * @param probabilities images x classes, image-major
 * @param labels images x classes multi-hot, same layout
 * @param thresholds one per class
 */
export function computeBoxMetrics(
  probabilities: Float32Array,
  labels: Float32Array,
  thresholds: readonly number[],
  boxes: BoxPredictions,
): { classes: BoxMetrics[]; overall: BoxMetrics } {
  const classes = thresholds.length;
  const size = checkShapes(probabilities, labels, classes);
  if (
    boxes.predicted.length !== size * classes * 4 ||
    boxes.truth.length !== size * classes * 4 ||
    boxes.mask.length !== size * classes
  ) {
    throw new TrainerError(
      'invalid-options',
      `boxes must hold ${size} images x ${classes} classes (x 4 coordinates): got ${boxes.predicted.length} ` +
        `predicted, ${boxes.truth.length} true values and ${boxes.mask.length} mask values`,
    );
  }
  const sums = new Array<number>(classes).fill(0);
  const hits = new Array<number>(classes).fill(0);
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < size; i++) {
    for (let c = 0; c < classes; c++) {
      const k = i * classes + c;
      if (!(labels[k]! >= 0.5 && boxes.mask[k]! >= 0.5 && probabilities[k]! >= thresholds[c]!)) continue;
      const iou = boxIoU(boxes.predicted.subarray(k * 4, k * 4 + 4), boxes.truth.subarray(k * 4, k * 4 + 4));
      sums[c]! += iou;
      if (iou >= 0.5) hits[c]!++;
      counts[c]!++;
    }
  }
  const metrics = (count: number, sum: number, hit: number): BoxMetrics => ({
    count,
    meanIoU: ratio(sum, count),
    shareIoU50: ratio(hit, count),
  });
  const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    classes: counts.map((count, c) => metrics(count, sums[c]!, hits[c]!)),
    overall: metrics(total(counts), total(sums), total(hits)),
  };
}

/**
 * Per-class thresholds that maximise each class's F1 on the given (validation) predictions.
 *
 * All thresholds between two neighbouring distinct scores give the same predictions, so the candidates are these
 * intervals. Among the intervals with the best F1, the one nearest 0.5 wins, and within it 0.5 itself if it lies
 * inside, else the interval's midpoint (a threshold in the gap between scores, not on a score, generalises better).
 * A class whose labels are all 0 or all 1 here keeps 0.5: there is nothing to tune on.
 *
 * @param probabilities images x classes, image-major
 * @param labels images x classes multi-hot, same layout
 * @returns one threshold per class
 */
export function tuneThresholds(probabilities: Float32Array, labels: Float32Array, classes: number): number[] {
  checkShapes(probabilities, labels, classes);
  const thresholds: number[] = [];
  for (let c = 0; c < classes; c++) {
    thresholds.push(tuneOne(columnOf(probabilities, classes, c), columnOf(labels, classes, c)));
  }
  return thresholds;
}

function tuneOne(scores: Float32Array, targets: Float32Array): number {
  checkFinite(scores, 'tuneThresholds');
  const n = scores.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (targets[i]! >= 0.5) positives++;
  if (positives === 0 || positives === n) return 0.5;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let best = { f1: -1, distance: Number.POSITIVE_INFINITY, threshold: 0.5 };
  let truePositives = 0;
  let predicted = 0;
  for (let k = 0; k < n; ) {
    const upper = scores[order[k]!]!;
    while (k < n && scores[order[k]!]! === upper) {
      if (targets[order[k]!]! >= 0.5) truePositives++;
      predicted++;
      k++;
    }
    // Any threshold in (lower, upper] predicts exactly the images scored >= upper.
    const lower = k < n ? scores[order[k]!]! : 0;
    const f1 = (2 * truePositives) / (predicted + positives);
    const inside = 0.5 > lower && 0.5 <= upper;
    const threshold = inside ? 0.5 : (lower + upper) / 2;
    const distance = inside ? 0 : Math.min(Math.abs(0.5 - lower), Math.abs(0.5 - upper));
    const epsilon = 1e-12;
    if (f1 > best.f1 + epsilon || (Math.abs(f1 - best.f1) <= epsilon && distance < best.distance)) {
      best = { f1, distance, threshold };
    }
  }
  return best.threshold;
}
