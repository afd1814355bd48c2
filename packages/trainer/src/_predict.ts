import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { TrainerError } from './errors.js';

/** Raw model outputs for a set of images. */
export interface RawPredictions {
  /** images x classes logits. */
  logits: Float32Array;
  /** images x classes x 4 boxes ([x1, y1, x2, y2], y down) when the model has a box head. */
  boxes: Float32Array | undefined;
}

/**
 * Whether `model` has the box head, from its output width: C (logits only) or 5C (logits, then boxes).
 * @throws {TrainerError} `model-mismatch` when it is neither.
 */
export function hasBoxHead(model: tfl.LayersModel, classes: number): boolean {
  const shape = model.outputs[0]?.shape;
  const width = shape?.[shape.length - 1];
  if (model.outputs.length === 1 && shape?.length === 2 && width === classes) return false;
  if (model.outputs.length === 1 && shape?.length === 2 && width === 5 * classes) return true;
  throw new TrainerError(
    'model-mismatch',
    `the model's output is ${JSON.stringify(model.outputs.map((o) => o.shape))} but ${classes} classes need ` +
      `[null, ${classes}] (or [null, ${5 * classes}] with boxes): check that the model was made for this dataset`,
  );
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

/**
 * Runs the model in inference mode over `count` images, `batchSize` at a time. `imageAt(k)` gives image k as
 * HWC uint8; it is scaled to [0, 1] float32 exactly as the training batches are.
 */
export function predictRaw(
  model: tfl.LayersModel,
  imageAt: (k: number) => Uint8Array,
  count: number,
  height: number,
  width: number,
  classes: number,
  batchSize = 32,
): RawPredictions {
  const boxes = hasBoxHead(model, classes);
  checkInputShape(model, height, width);
  const pixels = height * width * 3;
  const logits = new Float32Array(count * classes);
  const boxValues = boxes ? new Float32Array(count * classes * 4) : undefined;
  const outputWidth = boxes ? 5 * classes : classes;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const input = new Float32Array(n * pixels);
    for (let k = 0; k < n; k++) {
      const image = imageAt(start + k);
      for (let j = 0; j < pixels; j++) input[k * pixels + j] = image[j]! / 255;
    }
    const output = tf.tidy(() => model.predict(tf.tensor4d(input, [n, height, width, 3])) as tf.Tensor);
    const values = output.dataSync() as Float32Array;
    output.dispose();
    for (let k = 0; k < n; k++) {
      const row = values.subarray(k * outputWidth, (k + 1) * outputWidth);
      logits.set(row.subarray(0, classes), (start + k) * classes);
      boxValues?.set(row.subarray(classes), (start + k) * classes * 4);
    }
  }
  return { logits, boxes: boxValues };
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
