import * as tfl from '@tensorflow/tfjs-layers';
import { addCenterNetHead, centerNetHead } from './centernet.js';
import { type CreateModelOptions, checkCreateOptions, type ModelFactory } from './contract.js';
import { LocalResponseNormalization } from './lrn.js';

/** The seed's LRN parameters (TensorFlow CIFAR-10 tutorial): depth radius 4, bias 1, alpha 0.001 / 9, beta 0.75. */
const SEED_LRN = { depthRadius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 } as const;

/**
 * A fresh initialiser seed per layer, so one model seed gives distinct but reproducible layers. Model packages use
 * it for their `seed` option. The values are never 0: tfjs-core treats a seed of 0 as "no seed" and draws from
 * `Math.random()`, so model seed 0 (the CLI's default) would otherwise give different weights on every run.
 *
 * @example
 * const seed = initializerSeeds(options.seed);
 * tfl.layers.conv2d({ filters: 8, kernelSize: 3, kernelInitializer: tfl.initializers.heNormal(seed()) });
 */
export function initializerSeeds(seed: number | undefined, stride = 7919): () => { seed?: number } {
  let next = 0;
  return () =>
    seed === undefined ? {} : { seed: ((Math.abs(Math.trunc(seed)) + stride * next++) % 2 ** 31) + 1 };
}

/**
 * Adds the pooled output head: `[B, C]` logits, or with boxes `[B, 5C]` = logits then `C*4` sigmoid box values
 * (class-major `[x1, y1, x2, y2]`: `pooledBoxHead`, the layout of runs from before the CenterNet head). The
 * built-in models take their logits from it (`boxes: false`) and their boxes from `addCenterNetHead`.
 */
export function classificationHead(
  features: tfl.SymbolicTensor,
  options: CreateModelOptions,
  initialiserSeed: () => { seed?: number },
): tfl.SymbolicTensor {
  const logits = tfl.layers
    .dense({
      units: options.classes,
      name: 'logits',
      kernelInitializer: tfl.initializers.glorotUniform(initialiserSeed()),
    })
    .apply(features) as tfl.SymbolicTensor;
  if (options.boxes !== true) return logits;
  const boxes = tfl.layers
    .dense({
      units: options.classes * 4,
      activation: 'sigmoid',
      name: 'boxes',
      kernelInitializer: tfl.initializers.glorotUniform(initialiserSeed()),
    })
    .apply(features) as tfl.SymbolicTensor;
  return tfl.layers
    .concatenate({ axis: -1, name: 'logits_and_boxes' })
    .apply([logits, boxes]) as tfl.SymbolicTensor;
}

/**
 * The seed's network, layer for layer: conv 5x5x64 ('same', bias 0.1, relu), max pool 3x3/2, LRN, conv 5x5x64
 * (bias 0.1, relu), LRN, max pool 3x3/2, dense 384 relu, dense 192 relu, dense C logits. Sigmoid at
 * prediction, never softmax. With `boxes`, the CenterNet head on the stride-4 map after pool2 is a second output.
 */
export const seedCnn: ModelFactory = {
  name: 'seed-cnn',
  description:
    "The seed blog post's CNN: two 5x5 conv + max pool + LRN stages, dense 384 and 192 (slow, accurate)",
  defaultInputSize: { width: 128, height: 128 },
  supportsBoxes: true,
  boxHead: centerNetHead,
  create(options: CreateModelOptions): tfl.LayersModel {
    checkCreateOptions(seedCnn, options);
    const seed = initializerSeeds(options.seed);
    const conv = (name: string) =>
      tfl.layers.conv2d({
        name,
        filters: 64,
        kernelSize: 5,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.heNormal(seed()),
        biasInitializer: tfl.initializers.constant({ value: 0.1 }),
      });
    const pool = (name: string) =>
      tfl.layers.maxPooling2d({ name, poolSize: 3, strides: 2, padding: 'same' });
    const dense = (name: string, units: number) =>
      tfl.layers.dense({
        name,
        units,
        activation: 'relu',
        kernelInitializer: tfl.initializers.heNormal(seed()),
        biasInitializer: tfl.initializers.constant({ value: 0.1 }),
      });

    const input = tfl.input({ shape: options.inputShape, name: 'image' });
    let x = conv('conv1').apply(input) as tfl.SymbolicTensor;
    x = pool('pool1').apply(x) as tfl.SymbolicTensor;
    x = new LocalResponseNormalization({ ...SEED_LRN, name: 'norm1' }).apply(x) as tfl.SymbolicTensor;
    x = conv('conv2').apply(x) as tfl.SymbolicTensor;
    x = new LocalResponseNormalization({ ...SEED_LRN, name: 'norm2' }).apply(x) as tfl.SymbolicTensor;
    x = pool('pool2').apply(x) as tfl.SymbolicTensor;
    const featureMap = x;
    x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
    x = dense('dense1', 384).apply(x) as tfl.SymbolicTensor;
    x = dense('dense2', 192).apply(x) as tfl.SymbolicTensor;
    const logits = classificationHead(x, { ...options, boxes: false }, seed);
    const outputs = options.boxes ? [logits, addCenterNetHead(featureMap, options, seed)] : logits;
    return tfl.model({ inputs: input, outputs, name: 'seed_cnn' });
  },
};
