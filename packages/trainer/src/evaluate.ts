import type { Dataset } from '@litter/dataset';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  imagesOf,
  meanSigmoidCrossEntropy,
  type PredictOptions,
  predictRaw,
  type RawPredictions,
  sigmoid,
} from './_predict.js';
import type { BoxPredictions } from './detection.js';
import { computeEvaluation, type Evaluation } from './metrics.js';

/** Options of {@link evaluate}. */
export interface EvaluateOptions extends PredictOptions {
  /** Per-class thresholds (e.g. the run's tuned ones); adds {@link Evaluation.tuned}. */
  thresholds?: readonly number[];
}

/** Model outputs on dataset images, with their labels: what {@link evaluate} and threshold tuning work on. */
export interface DatasetPredictions {
  /** images x classes sigmoid probabilities. */
  probabilities: Float32Array;
  /** images x classes multi-hot labels, same order. */
  labels: Float32Array;
  /** Mean sigmoid cross entropy. */
  loss: number;
  /**
   * With a box head: the predicted boxes (images x classes x 4, `[x1, y1, x2, y2]` normalised, y down), the
   * true ones and the box mask of the same images, as {@link computeEvaluation} takes them.
   */
  boxes: BoxPredictions | undefined;
}

/**
 * Runs `model` on the dataset images at `indices` (inference mode) and gathers probabilities and labels.
 *
 * @example
 * const { probabilities } = predictDataset(run.model, dataset, split.validation, { testTimeFlip: run.testTimeFlip });
 */
export function predictDataset(
  model: tfl.LayersModel,
  dataset: Dataset,
  indices: readonly number[],
  options: PredictOptions = {},
): DatasetPredictions {
  const raw = predictRaw(model, imagesOf(dataset, indices), dataset.vocabulary.length, options);
  return datasetPredictions(raw, dataset, indices);
}

/** The raw outputs of a model on the dataset images at `indices` (in that order), with those images' labels. */
export function datasetPredictions(
  raw: RawPredictions,
  dataset: Dataset,
  indices: readonly number[],
): DatasetPredictions {
  const classes = dataset.vocabulary.length;
  const labels = new Float32Array(indices.length * classes);
  indices.forEach((index, k) => {
    labels.set(dataset.labels.subarray(index * classes, (index + 1) * classes), k * classes);
  });
  let boxes: BoxPredictions | undefined;
  if (raw.boxes) {
    const truth = new Float32Array(indices.length * classes * 4);
    const mask = new Float32Array(indices.length * classes);
    indices.forEach((index, k) => {
      truth.set(dataset.boxes.subarray(index * classes * 4, (index + 1) * classes * 4), k * classes * 4);
      mask.set(dataset.boxMask.subarray(index * classes, (index + 1) * classes), k * classes);
    });
    boxes = { predicted: raw.boxes, truth, mask, ...(raw.scores ? { scores: raw.scores } : {}) };
  }
  return {
    probabilities: raw.logits.map(sigmoid),
    labels,
    loss: meanSigmoidCrossEntropy(raw.logits, labels),
    boxes,
  };
}

/**
 * The evaluation of predictions already made ({@link predictDataset}): at 0.5 and, when given, at `thresholds`,
 * with the localisation of the boxes when the model has a box head.
 */
export function evaluatePredictions(
  predictions: DatasetPredictions,
  vocabulary: readonly string[],
  thresholds?: readonly number[],
): Evaluation {
  return computeEvaluation(predictions.probabilities, predictions.labels, vocabulary, {
    loss: predictions.loss,
    ...(thresholds ? { thresholds } : {}),
    ...(predictions.boxes ? { boxes: predictions.boxes } : {}),
  });
}

/**
 * Evaluates `model` on the dataset images at `indices`: per class precision, recall, F1 and average precision;
 * overall exact match, Hamming loss, micro and macro F1; at 0.5 and, when given, at `thresholds`. With a box
 * head, also the localisation of the correctly detected classes (mean IoU, share with IoU >= 0.5).
 *
 * @example
 * const evaluation = evaluate(model, dataset, split.validation, { thresholds: run.thresholds });
 * console.log(formatEvaluation(evaluation));
 */
export function evaluate(
  model: tfl.LayersModel,
  dataset: Dataset,
  indices: readonly number[],
  options: EvaluateOptions = {},
): Evaluation {
  const predictions = predictDataset(model, dataset, indices, options);
  return evaluatePredictions(predictions, dataset.vocabulary, options.thresholds);
}
