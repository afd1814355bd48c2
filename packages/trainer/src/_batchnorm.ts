import type { Dataset } from '@litter/dataset';
import { isBatchNormLayer } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

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
  const layers = batchNormLayers(model);
  if (layers.length === 0 || indices.length === 0) return;
  const saved = layers.map((layer) => layer.momentum);
  const { height, width } = dataset;
  const pixels = height * width * 3;
  const images = new Float32Array(Math.min(batchSize, indices.length) * pixels);
  try {
    for (let k = 0; k * batchSize < indices.length; k++) {
      // momentum k / (k + 1): batch k counts 1 / (k + 1) of the result, which is the mean over the batches.
      for (const layer of layers) layer.momentum = k / (k + 1);
      const batch = indices.slice(k * batchSize, (k + 1) * batchSize);
      batch.forEach((index, i) => {
        const source = dataset.pixels.subarray(index * pixels, (index + 1) * pixels);
        for (let j = 0; j < pixels; j++) images[i * pixels + j] = source[j]! / 255;
      });
      tf.tidy(() => {
        model.apply(tf.tensor4d(images.slice(0, batch.length * pixels), [batch.length, height, width, 3]), {
          training: true,
        });
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
