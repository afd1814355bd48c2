import type { Dataset } from '@litter/dataset';
import { type BoxHead, boxHeadOf, ModelError } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mirrorBoxes } from './_augment.js';
import { TrainerError } from './errors.js';

/** Raw model outputs for a set of images. */
export interface RawPredictions {
  /** images x classes logits. */
  logits: Float32Array;
  /** images x classes x 4 boxes ([x1, y1, x2, y2], y down, corners ordered) when the model has a box head. */
  boxes: Float32Array | undefined;
  /** images x classes confidences of the boxes (the box head's decoded `scores`) when the head gives them. */
  scores: Float32Array | undefined;
}

/**
 * The box head whose outputs `model` has (`boxHeadOf`: the pooled `[B, 5C]` one of old runs, the CenterNet
 * one, or `prefer`'s), or `undefined` for a model with only the `[B, C]` logits.
 * @throws {TrainerError} `model-mismatch` when its outputs fit no head for `classes` classes.
 */
export function boxHeadFor(
  model: tfl.LayersModel,
  classes: number,
  prefer: readonly (BoxHead | undefined)[] = [],
): BoxHead | undefined {
  try {
    return boxHeadOf(model, classes, prefer);
  } catch (error) {
    if (!(error instanceof ModelError)) throw error;
    throw new TrainerError(
      'model-mismatch',
      `${error.message.replace(/^@litter\/model: /, '')} (${classes} classes)`,
      { cause: error },
    );
  }
}

/** Checks the model's input against the image size it will be fed. */
export function checkInputShape(model: tfl.LayersModel, height: number, width: number): void {
  const shape = model.inputs[0]?.shape;
  if (
    model.inputs.length !== 1 ||
    shape?.length !== 4 ||
    shape[1] !== height ||
    shape[2] !== width ||
    shape[3] !== 3
  ) {
    throw new TrainerError(
      'model-mismatch',
      `the model takes input ${JSON.stringify(model.inputs.map((i) => i.shape))} but the images are ` +
        `${width}x${height} RGB ([null, ${height}, ${width}, 3]): load the dataset at the model's size`,
    );
  }
}

/** `count` images of one size as HWC uint8, image k at `imageAt(k)`: what predictions and recalibration read. */
export interface ImageSource {
  count: number;
  height: number;
  width: number;
  imageAt(k: number): Uint8Array;
}

/**
 * The dataset images at `indices`, in that order.
 * @throws {TrainerError} `invalid-options` for an index outside the dataset (a split of another dataset).
 */
export function imagesOf(dataset: Dataset, indices: readonly number[]): ImageSource {
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0 || index >= dataset.size) {
      throw new TrainerError(
        'invalid-options',
        `image index ${index} is outside the dataset (${dataset.size} images): the split belongs to another dataset`,
      );
    }
  }
  const { height, width } = dataset;
  const pixels = height * width * 3;
  return {
    count: indices.length,
    height,
    width,
    imageAt: (k) => dataset.pixels.subarray(indices[k]! * pixels, (indices[k]! + 1) * pixels),
  };
}

/** How predictions are made: by {@link predictDataset}, `evaluate`, `predictImages` and validation. */
export interface PredictOptions {
  /** Images per forward pass. @default 32 */
  batchSize?: number;
  /**
   * Also run each image mirrored left-right and average the two: the logits, the box scores and the boxes (the
   * mirror's mirrored back). Costs a second forward pass; raised held-out exact match and box IoU on three render
   * sets (BENCHMARKS.md, "Test-time flips"). A run records it (`testTimeFlip` of its settings) and its
   * predictions follow the record. @default false
   */
  testTimeFlip?: boolean;
}

/** The prediction options a run's settings give (its batch size and `testTimeFlip`). */
export function predictionSettings(settings: { batchSize: number; testTimeFlip: boolean }): PredictOptions {
  return { batchSize: settings.batchSize, testTimeFlip: settings.testTimeFlip };
}

/**
 * Runs the model in inference mode over `images`, `batchSize` at a time; each is scaled to [0, 1] float32 exactly
 * as the training batches are.
 */
export function predictRaw(
  model: tfl.LayersModel,
  images: ImageSource,
  classes: number,
  options: PredictOptions = {},
): RawPredictions {
  const { count, height, width, imageAt } = images;
  const batchSize = options.batchSize ?? 32;
  const views = options.testTimeFlip ? [false, true] : [false];
  const head = boxHeadFor(model, classes);
  checkInputShape(model, height, width);
  const pixels = height * width * 3;
  const logits = new Float32Array(count * classes);
  const boxValues = head ? new Float32Array(count * classes * 4) : undefined;
  let scores: Float32Array | undefined;
  /** Adds one view's share of the average for the images from `start` on (a mirror's boxes mirrored back). */
  const addView = (outputs: tf.Tensor[], mirrored: boolean, start: number): void => {
    const decoded = head
      ? head.decode(outputs, classes)
      : { logits: outputs[0]!.dataSync() as Float32Array, boxes: undefined, scores: undefined };
    addViewShare(logits, decoded.logits, start * classes, views.length);
    if (boxValues && decoded.boxes) {
      // On a copy: the decoded values may be a tensor's own array.
      const boxes = mirrored ? Float32Array.from(decoded.boxes) : decoded.boxes;
      if (mirrored) mirrorBoxes(boxes);
      addViewShare(boxValues, boxes, start * classes * 4, views.length);
    }
    if (decoded.scores) {
      scores ??= new Float32Array(count * classes);
      addViewShare(scores, decoded.scores, start * classes, views.length);
    }
  };
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const input = new Float32Array(n * pixels);
    for (let k = 0; k < n; k++) {
      const image = imageAt(start + k);
      for (let j = 0; j < pixels; j++) input[k * pixels + j] = image[j]! / 255;
    }
    // One upload of the batch for both views.
    const batch = tf.tensor4d(input, [n, height, width, 3]);
    try {
      for (const mirrored of views) {
        const outputs = tf.tidy(() => [model.predict(mirrored ? tf.reverse(batch, 2) : batch)].flat());
        try {
          addView(outputs, mirrored, start);
        } finally {
          tf.dispose(outputs);
        }
      }
    } finally {
      batch.dispose();
    }
  }
  const nan = logits.findIndex(Number.isNaN);
  if (nan !== -1) {
    throw new TrainerError(
      'non-finite-output',
      `the model's output for image ${Math.floor(nan / classes)} is NaN: its weights diverged or are damaged; use another checkpoint (--checkpoint) or train again`,
    );
  }
  return { logits, boxes: boxValues, scores };
}

/** Adds `values / views` into `sums` from `offset` on: one view's share of the average over the views. */
function addViewShare(sums: Float32Array, values: ArrayLike<number>, offset: number, views: number): void {
  for (let i = 0; i < values.length; i++) sums[offset + i]! += values[i]! / views;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Mean sigmoid cross entropy of logits against 0/1 labels, in the stable form max(x,0) - xz + log(1+e^-|x|). */
export function meanSigmoidCrossEntropy(logits: Float32Array, labels: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i]!;
    sum += Math.max(x, 0) - x * labels[i]! + Math.log1p(Math.exp(-Math.abs(x)));
  }
  return logits.length === 0 ? 0 : sum / logits.length;
}

/**
 * The box at `offset` of `values` (`[x1, y1, x2, y2]`) with its corners ordered (x1 <= x2, y1 <= y2): a box
 * head's four outputs are not ordered, and a box is the rectangle its two corners span.
 */
export function orderedBox(values: ArrayLike<number>, offset: number): [number, number, number, number] {
  const [x1, y1, x2, y2] = [values[offset]!, values[offset + 1]!, values[offset + 2]!, values[offset + 3]!];
  return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
}
