import type { Dataset } from '@litter/dataset';
import { isBatchNormLayer } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type ImageSource, imagesOf } from './_predict.js';

/** The layer fields this needs; tfjs-layers' BatchNormalization declares `momentum` protected. */
type BatchNormLayer = tfl.layers.Layer & { momentum: number };

/** The model's batch-normalisation layers (none: nothing to recalibrate). */
export function batchNormLayers(model: tfl.LayersModel): BatchNormLayer[] {
  return model.layers.filter(isBatchNormLayer) as BatchNormLayer[];
}

/**
 * "Precise batch norm": replaces every batch-norm layer's moving mean and variance with their average over
 * the training images `indices`, run through the model with its current weights in training mode.
 *
 * Why: Keras' moving averages (momentum 0.99) lag far behind weights that move fast, so early in training a
 * model evaluated with them scores far below what its weights can (bench:tta: held-out exact match 0.2-0.3
 * with the moving statistics, 0.8 with recalibrated ones, same weights).
 */
export function recalibrateBatchNorm(
  model: tfl.LayersModel,
  dataset: Dataset,
  indices: readonly number[],
  batchSize: number,
): void {
  recalibrateOn(model, imagesOf(dataset, indices), batchSize);
}

/**
 * {@link recalibrateBatchNorm} over any images: the mean over their batches of `batchSize` (in order, the last
 * one maybe smaller) of each batch's statistics. Data-parallel workers each take whole batches of the same
 * images, so that the mean of their results, weighted by their batch counts, is this one's.
 */
export function recalibrateOn(model: tfl.LayersModel, images: ImageSource, batchSize: number): void {
  const layers = batchNormLayers(model);
  const { count, height, width } = images;
  if (layers.length === 0 || count === 0) return;
  const saved = layers.map((layer) => layer.momentum);
  const pixels = height * width * 3;
  const input = new Float32Array(Math.min(batchSize, count) * pixels);
  try {
    for (let k = 0; k * batchSize < count; k++) {
      // momentum k / (k + 1): batch k counts 1 / (k + 1) of the result, which is the mean over the batches.
      for (const layer of layers) layer.momentum = k / (k + 1);
      const n = Math.min(batchSize, count - k * batchSize);
      for (let i = 0; i < n; i++) {
        const source = images.imageAt(k * batchSize + i);
        for (let j = 0; j < pixels; j++) input[i * pixels + j] = source[j]! / 255;
      }
      tf.tidy(() => {
        model.apply(tf.tensor4d(input.slice(0, n * pixels), [n, height, width, 3]), { training: true });
      });
    }
  } finally {
    layers.forEach((layer, i) => {
      layer.momentum = saved[i]!;
    });
  }
}

/** Up to `count` of `indices`, evenly spaced (deterministic: no random draws, the same at every call). */
export function evenlySpaced(indices: readonly number[], count: number): number[] {
  if (indices.length <= count) return [...indices];
  return Array.from({ length: count }, (_, i) => indices[Math.floor((i * indices.length) / count)]!);
}
