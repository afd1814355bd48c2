import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ModelError } from './errors.js';

/** What a box head's loss is computed against: one batch (or a shard of one), as tensors. */
export interface BoxTargets {
  /** `[n, C]` multi-hot presence labels. */
  labels: tf.Tensor2D;
  /** `[n, 4C]` true boxes, class-major `[x1, y1, x2, y2]`, normalised to [0, 1], y down (anything where absent). */
  boxes: tf.Tensor2D;
  /** `[n, C]`: 1 where the class is visible and its box valid. */
  mask: tf.Tensor2D;
}

/** Options of {@link BoxHead.loss}. */
export interface BoxLossOptions {
  /** Weight of the box terms against the classification terms. @default 1 */
  weight?: number;
  /**
   * Totals of the whole batch these rows are a shard of (data-parallel training): its images (classification
   * terms are a mean over them) and its visible boxes (box terms are a mean over them), so that the shards'
   * losses add up to the batch's. @default these rows' own
   */
  batch?: { images: number; boxes: number };
  /** The factor on the cross entropy of visible classes ({@link classificationLoss}). @default 1 */
  positiveWeight?: number;
}

/** What {@link BoxHead.decode} gives for `n` images and `C` classes. */
export interface DecodedBoxes {
  /** `n * C` presence logits (sigmoid for the probability), image-major. */
  logits: Float32Array;
  /**
   * `n * C * 4` boxes `[x1, y1, x2, y2]`, normalised to [0, 1], y down, corners ordered (`x1 <= x2`,
   * `y1 <= y2`): one box per class per image, meaningful where the class is visible.
   */
  boxes: Float32Array;
  /**
   * `n * C` confidences in [0, 1] of the boxes themselves, which rank them for average precision: how sure the
   * head is of the object and of where it is. @default the presence probabilities (`sigmoid(logits)`)
   */
  scores?: Float32Array;
}

/**
 * How a model with boxes is trained and read: the layout of its outputs, the loss on them and the decoder to one
 * box per class. A model package names the head its `create({ boxes: true })` builds in
 * {@link ModelFactory.boxHead}; the trainer calls only these three members, so any head fits.
 *
 * A package with its own head calls {@link registerBoxHead} when it is imported, so its saved models are
 * recognised ({@link boxHeadOf}) when they load back, as custom layers register with tfjs.
 */
export interface BoxHead {
  /** Short name, e.g. `centernet`; stored in run configs. */
  readonly name: string;
  /** Whether `model`'s outputs are this head's for `classes` classes (checked on the symbolic output shapes). */
  matches(model: tfl.LayersModel, classes: number): boolean;
  /**
   * The training loss of one batch, classification included, from the model's outputs in training mode
   * (`model.apply(images, { training: true })`, as an array). Call it inside `tf.tidy` or a gradient function.
   */
  loss(outputs: tf.Tensor[], targets: BoxTargets, options?: BoxLossOptions): tf.Scalar;
  /** Decodes the outputs of `model.predict` (as an array) for `classes` classes. Disposes nothing. */
  decode(outputs: tf.Tensor[], classes: number): DecodedBoxes;
}

/**
 * Mean absolute error over the coordinates of the visible classes only: an absent object has no box to learn,
 * so its four outputs get no error (and no gradient).
 *
 * @param predicted `[n, 4C]` box outputs, class-major `[x1, y1, x2, y2]`
 * @param targets `[n, 4C]` true boxes, same layout
 * @param mask `[n, C]` 1 where the class is visible
 * @param boxes what the sum is divided by, times 4: default the visible boxes here; a data-parallel shard passes
 *   the whole batch's
 * @returns the sum of |predicted - target| over visible coordinates divided by 4 x `boxes` (at least 1)
 */
export function maskedBoxLoss(
  predicted: tf.Tensor2D,
  targets: tf.Tensor2D,
  mask: tf.Tensor2D,
  boxes?: number,
): tf.Scalar {
  const [n, classes] = mask.shape;
  const coordinates = tf.reshape(tf.tile(tf.reshape(mask, [n, classes, 1]), [1, 1, 4]), [n, classes * 4]);
  const total = tf.sum(tf.mul(tf.abs(tf.sub(predicted, targets)), coordinates));
  return (
    boxes === undefined
      ? tf.div(total, tf.maximum(tf.sum(coordinates), 1))
      : tf.div(total, Math.max(4 * boxes, 1))
  ) as tf.Scalar;
}

/**
 * Sigmoid cross entropy summed over `[n, C]` and divided by `images x C` (the mean when `images` is n), the terms
 * of visible classes (label 1) times `positiveWeight`: a missed object then costs that many false alarms.
 *
 * @param positiveWeight @default 1 (plain cross entropy)
 */
export function classificationLoss(
  labels: tf.Tensor2D,
  logits: tf.Tensor2D,
  images?: number,
  positiveWeight = 1,
): tf.Scalar {
  const [n, classes] = labels.shape;
  // Every weight is positive, so the loss's mean over the non-zero weights is the mean over all n x C terms.
  const weights = positiveWeight === 1 ? undefined : tf.add(1, tf.mul(labels, positiveWeight - 1));
  const total = tf.mul(tf.losses.sigmoidCrossEntropy(labels, logits, weights), n * classes);
  return tf.div(total, (images ?? n) * classes) as tf.Scalar;
}

/** Orders each box's corners in place (`x1 <= x2`, `y1 <= y2`) and clips them to [0, 1]. */
export function orderBoxes(boxes: Float32Array): Float32Array {
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  for (let k = 0; k < boxes.length; k += 4) {
    const [x1, y1, x2, y2] = [boxes[k]!, boxes[k + 1]!, boxes[k + 2]!, boxes[k + 3]!];
    boxes[k] = clip(Math.min(x1, x2));
    boxes[k + 1] = clip(Math.min(y1, y2));
    boxes[k + 2] = clip(Math.max(x1, x2));
    boxes[k + 3] = clip(Math.max(y1, y2));
  }
  return boxes;
}

function outputShapes(model: tfl.LayersModel): (number | null)[][] {
  return model.outputs.map((output) => output.shape as (number | null)[]);
}

/**
 * The first box head of litter (runs trained before the CenterNet head): one `[B, 5C]` output from the pooled
 * feature vector, columns `0..C-1` the logits, then `4C` sigmoid box values, class-major `[x1, y1, x2, y2]`.
 * Loss: sigmoid cross entropy + weight x masked L1 over the visible boxes. Kept so old runs load and predict;
 * it knows nothing of where things are (issue 14: mean IoU 0.16 on held-out scenes).
 */
export const pooledBoxHead: BoxHead = {
  name: 'pooled',
  matches(model, classes) {
    const shapes = outputShapes(model);
    return shapes.length === 1 && shapes[0]!.length === 2 && shapes[0]![1] === 5 * classes;
  },
  loss([output], targets, options = {}) {
    const [n, classes] = targets.labels.shape;
    const out = output as tf.Tensor2D;
    const logits = tf.slice(out, [0, 0], [n, classes]);
    const predicted = tf.slice(out, [0, classes], [n, classes * 4]);
    return tf.add(
      classificationLoss(targets.labels, logits, options.batch?.images, options.positiveWeight),
      tf.mul(
        maskedBoxLoss(predicted, targets.boxes, targets.mask, options.batch?.boxes),
        options.weight ?? 1,
      ),
    ) as tf.Scalar;
  },
  decode([output], classes) {
    const values = output!.dataSync() as Float32Array;
    const n = values.length / (5 * classes);
    const logits = new Float32Array(n * classes);
    const boxes = new Float32Array(n * classes * 4);
    for (let k = 0; k < n; k++) {
      const row = values.subarray(k * 5 * classes, (k + 1) * 5 * classes);
      logits.set(row.subarray(0, classes), k * classes);
      boxes.set(row.subarray(classes), k * classes * 4);
    }
    return { logits, boxes: orderBoxes(boxes) };
  },
};

const registered: BoxHead[] = [];

/**
 * Makes a box head known to {@link boxHeadOf}, so models saved with it are recognised when they load back.
 * Model packages with their own head call it when imported. Registering the same object twice does nothing.
 * @throws {ModelError} `invalid-options` when another head of the same name is registered
 */
export function registerBoxHead(head: BoxHead): void {
  if (registered.includes(head)) return;
  if (registered.some((other) => other.name === head.name)) {
    throw new ModelError(
      'invalid-options',
      `a box head named "${head.name}" is already registered: give your head another name`,
    );
  }
  registered.push(head);
}

/**
 * The box head whose outputs `model` has for `classes` classes, or `undefined` when the model has only the
 * `[B, C]` logits. Looks at `prefer` first (e.g. the factory's own head), then at the registered heads.
 *
 * @throws {ModelError} `model-mismatch` when the outputs fit neither the logits nor any known head
 * @example
 * const head = boxHeadOf(model, vocabulary.length, [factory.boxHead]);
 */
export function boxHeadOf(
  model: tfl.LayersModel,
  classes: number,
  prefer: readonly (BoxHead | undefined)[] = [],
): BoxHead | undefined {
  const shapes = outputShapes(model);
  if (shapes.length === 1 && shapes[0]!.length === 2 && shapes[0]![1] === classes) return undefined;
  for (const head of [...prefer, ...registered]) if (head?.matches(model, classes)) return head;
  throw new ModelError(
    'model-mismatch',
    `the model's outputs are ${JSON.stringify(shapes)}, which neither ${classes} classes' logits ` +
      `([null, ${classes}]) nor any known box head (${registered.map((h) => h.name).join(', ')}) have: check that ` +
      'the model was made for this dataset, and import the model package that defines its head',
  );
}

registerBoxHead(pooledBoxHead);
