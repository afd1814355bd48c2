import type { Dataset } from '@litter/dataset';
import { type CreateModelOptions, type ModelFactory, registerModel } from '@litter/model';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * A tiny model for fast loop tests: conv 3x3x4 stride 2, relu, flatten, dropout (so resume must restore the
 * random state), dense logits; with boxes a sigmoid dense head of 4C values is concatenated.
 */
export const tinyModel: ModelFactory = {
  name: 'tiny-test',
  description: 'one conv layer, for tests',
  defaultInputSize: { width: 16, height: 16 },
  supportsBoxes: true,
  create(options: CreateModelOptions): tfl.LayersModel {
    const seed = options.seed ?? 0;
    const input = tfl.input({ shape: options.inputShape });
    let x = tfl.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        strides: 2,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      })
      .apply(input) as tfl.SymbolicTensor;
    x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dropout({ rate: 0.3 }).apply(x) as tfl.SymbolicTensor;
    const logits = tfl.layers
      .dense({
        units: options.classes,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      })
      .apply(x) as tfl.SymbolicTensor;
    if (!options.boxes) return tfl.model({ inputs: input, outputs: logits });
    const boxes = tfl.layers
      .dense({
        units: options.classes * 4,
        activation: 'sigmoid',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }),
      })
      .apply(x) as tfl.SymbolicTensor;
    const output = tfl.layers.concatenate({ axis: -1 }).apply([logits, boxes]) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: output });
  },
};

/**
 * Registers `lite` and `model-lite` as the CLI does (@litter/model cannot import @litter/model-lite itself), so
 * that resolveModel and the training workers know them.
 */
export function registerLite(): void {
  for (const name of ['lite', 'model-lite'])
    registerModel(name, { package: '@litter/model-lite', from: import.meta.url });
}

/** Deterministic pseudo-random numbers for building fixtures. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/**
 * An in-memory dataset of `size` images, `width` x `height`: a red square where class `Red` is visible and a
 * blue one where `Blue` is, on grey noise; 4 scenes. Built by hand (not by @litter/dataset) so loop tests need no
 * files.
 */
export function syntheticDataset(size = 48, width = 16, height = 16): Dataset {
  const random = lcg(42);
  const vocabulary = ['Blue', 'Red'];
  const classes = vocabulary.length;
  const pixels = new Uint8Array(size * height * width * 3);
  const labels = new Float32Array(size * classes);
  const boxes = new Float32Array(size * classes * 4);
  const boxMask = new Float32Array(size * classes);
  const images: string[] = [];
  const scenes: string[] = [];
  for (let i = 0; i < size; i++) {
    const scene = String(i % 4);
    scenes.push(scene);
    images.push(`${scene}-${i}y-0p.png`);
    const base = i * height * width * 3;
    for (let j = 0; j < height * width * 3; j++) pixels[base + j] = 100 + Math.floor(random() * 40);
    vocabulary.forEach((_, c) => {
      if (random() < 0.5) return;
      labels[i * classes + c] = 1;
      boxMask[i * classes + c] = 1;
      const side = 4;
      const x0 = Math.floor(random() * (width - side));
      const y0 = Math.floor(random() * (height - side));
      boxes.set([x0 / width, y0 / height, (x0 + side) / width, (y0 + side) / height], (i * classes + c) * 4);
      for (let y = y0; y < y0 + side; y++) {
        for (let x = x0; x < x0 + side; x++) {
          const p = base + (y * width + x) * 3;
          pixels[p] = c === 1 ? 230 : 20;
          pixels[p + 1] = 20;
          pixels[p + 2] = c === 0 ? 230 : 20;
        }
      }
    });
  }
  return {
    root: '/synthetic',
    labelsPath: '/synthetic/labels.json',
    cachePath: undefined,
    vocabulary,
    width,
    height,
    channels: 3,
    size,
    images,
    scenes,
    pixels,
    labels,
    boxes,
    boxMask,
    skipped: [],
    fingerprint: 'synthetic',
  };
}

/** The split of a {@link syntheticDataset} that trains on scenes 0-2 and validates on scene 3. */
export function lastSceneHeldOut(dataset: Dataset): { train: number[]; validation: number[] } {
  const indices = [...Array(dataset.size).keys()];
  return {
    train: indices.filter((i) => dataset.scenes[i] !== '3'),
    validation: indices.filter((i) => dataset.scenes[i] === '3'),
  };
}
