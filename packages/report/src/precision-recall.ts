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
  /**
   * Average precision: `sum over points of (recall_k - recall_(k-1)) * precision_k`, with `recall_0 = 0`.
   * The step-wise sum, not interpolated (as scikit-learn's `average_precision_score`); tied scores form one
   * point. `NaN` when there are no positives (undefined).
   */
  averagePrecision: number;
  /** How many labels are positive (`>= 0.5`). */
  positives: number;
}

/**
 * The precision-recall curve and average precision of one class from its labels and scores.
 *
 * @param labels ground truth per sample, 1 (positive) or 0; values `>= 0.5` count as positive
 * @param scores the model's score per sample (a probability, or any score where higher means more likely)
 * @example
 * precisionRecallCurve([1, 0, 1], [0.9, 0.8, 0.3]).averagePrecision; // (1/2)*1 + (1/2)*(2/3) = 0.8333
 */
export function precisionRecallCurve(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
): PrecisionRecallCurve {
  if (labels.length !== scores.length) {
    throw new RangeError(
      `@litter/report: precisionRecallCurve got ${labels.length} labels and ${scores.length} scores; pass one score per label`,
    );
  }
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i]!)) {
      throw new RangeError(
        `@litter/report: precisionRecallCurve score ${i} is ${scores[i]}; pass finite scores`,
      );
    }
  }
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! >= 0.5) positives++;
  if (positives === 0) return { points: [], averagePrecision: Number.NaN, positives };

  const points: PrecisionRecallPoint[] = [];
  let truePositives = 0;
  let falsePositives = 0;
  let averagePrecision = 0;
  let previousRecall = 0;
  for (let k = 0; k < order.length; ) {
    const threshold = scores[order[k]!]!;
    // Tied scores cannot be separated by any threshold: they enter the predicted set together.
    while (k < order.length && scores[order[k]!]! === threshold) {
      if (labels[order[k]!]! >= 0.5) truePositives++;
      else falsePositives++;
      k++;
    }
    const precision = truePositives / (truePositives + falsePositives);
    const recall = truePositives / positives;
    averagePrecision += (recall - previousRecall) * precision;
    previousRecall = recall;
    points.push({ threshold, precision, recall });
  }
  return { points, averagePrecision, positives };
}
