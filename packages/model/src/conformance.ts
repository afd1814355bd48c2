import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, initBackend } from './backend.js';
import { type BoxHead, boxHeadOf, pooledBoxHead } from './box-head.js';
import { contractProblems, type ModelFactory } from './contract.js';
import { loadModel, saveModel } from './io.js';

/** Options of {@link testModelFactory}. Defaults keep the suite to a few seconds per backend. */
export interface ConformanceOptions {
  /** Backends to run on. @default ['cpu'] */
  backends?: readonly Exclude<BackendName, 'tensorflow'>[];
  /** `[height, width]` input sizes to build; include a non-square one. @default [[16, 16], [12, 20]] */
  inputSizes?: readonly [height: number, width: number][];
  /** @default 3 */
  classes?: number;
  /** @default 4 */
  batchSize?: number;
  /** Training steps on one fixed tiny batch; the loss must drop. @default 8 */
  trainSteps?: number;
  /** Adam learning rate for those steps. @default 0.003 */
  learningRate?: number;
}

/** Random images in [0, 1] and multi-hot labels, fixed by `seed`. */
function tinyBatch(
  batch: number,
  height: number,
  width: number,
  classes: number,
  seed: number,
): { images: tf.Tensor4D; labels: tf.Tensor2D } {
  return tf.tidy(() => {
    const images = tf.randomUniform([batch, height, width, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
    const labels = tf.cast(
      tf.greater(tf.randomUniform([batch, classes], 0, 1, 'float32', seed + 1), 0.5),
      'float32',
    );
    return { images, labels: labels as tf.Tensor2D };
  });
}

/** A tiny batch with one random box per visible class (`[x1, y1, x2, y2]`, y down, inside the image). */
function tinyBoxBatch(batch: number, height: number, width: number, classes: number, seed: number) {
  return tf.tidy(() => {
    const { images, labels } = tinyBatch(batch, height, width, classes, seed);
    const corner = tf.randomUniform([batch, classes, 2], 0, 0.5, 'float32', seed + 2);
    const extent = tf.randomUniform([batch, classes, 2], 0.2, 0.5, 'float32', seed + 3);
    const boxes = tf.reshape(tf.concat([corner, tf.add(corner, extent)], 2), [batch, classes * 4]);
    return { images, labels, boxes: boxes as tf.Tensor2D, mask: labels };
  });
}

function lossStep(
  model: tfl.LayersModel,
  head: BoxHead,
  optimizer: tf.Optimizer,
  batch: ReturnType<typeof tinyBoxBatch>,
): number {
  const loss = optimizer.minimize(() => {
    const outputs = [model.apply(batch.images, { training: true })].flat() as tf.Tensor[];
    return head.loss(outputs, batch);
  }, true) as tf.Scalar;
  const value = loss.dataSync()[0]!;
  loss.dispose();
  return value;
}

/**
 * Runs `step` `steps` times: the loss ends finite and below the first step's, and the tensor count stays where the
 * first step (which creates the optimizer's slot variables) left it.
 */
function expectLossFalls(step: () => number, steps: number): void {
  const first = step();
  const afterFirst = tf.memory().numTensors;
  let last = first;
  for (let i = 1; i < steps; i++) last = step();
  expect(Number.isFinite(last)).toBe(true);
  expect(last).toBeLessThan(first);
  expect(tf.memory().numTensors).toBe(afterFirst);
}

/** Every output of `model` on `images`, flattened, in output order. */
function predictAll(model: tfl.LayersModel, images: tf.Tensor): number[][] {
  return tf.tidy(() => ([model.predict(images)].flat() as tf.Tensor[]).map((t) => Array.from(t.dataSync())));
}

function predict(model: tfl.LayersModel, images: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(images) as tf.Tensor).dataSync() as Float32Array);
}

/** {@link ConformanceOptions} with their defaults, and the size the training checks use. */
interface Settings {
  backends: readonly Exclude<BackendName, 'tensorflow'>[];
  inputSizes: readonly [height: number, width: number][];
  classes: number;
  batchSize: number;
  trainSteps: number;
  learningRate: number;
  trainHeight: number;
  trainWidth: number;
}

function settingsOf(options: ConformanceOptions): Settings {
  const inputSizes = options.inputSizes ?? [
    [16, 16],
    [12, 20],
  ];
  const [trainHeight, trainWidth] = inputSizes[inputSizes.length - 1] ?? [16, 16];
  return {
    backends: options.backends ?? ['cpu'],
    inputSizes,
    classes: options.classes ?? 3,
    batchSize: options.batchSize ?? 4,
    trainSteps: options.trainSteps ?? 8,
    learningRate: options.learningRate ?? 0.003,
    trainHeight,
    trainWidth,
  };
}

/** The factory's members and its option checks (no backend needed). */
function testContract(factory: ModelFactory): void {
  it('has every member of the ModelFactory contract', () => {
    expect(contractProblems(factory)).toEqual([]);
  });

  it('rejects invalid options', () => {
    expect(() => factory.create({ inputShape: [16, 16, 3], classes: 0 })).toThrow();
    expect(() => factory.create({ inputShape: [0, 16, 3], classes: 2 })).toThrow();
    if (!factory.supportsBoxes) {
      expect(() => factory.create({ inputShape: [16, 16, 3], classes: 2, boxes: true })).toThrow();
    }
  });
}

/** Builds at each input size: `[B, C]` logits, finite, no tensor left behind. */
function testBuilds(factory: ModelFactory, s: Settings): void {
  const { classes, batchSize } = s;
  for (const [height, width] of s.inputSizes) {
    it(`builds for ${height}x${width} and predicts [B, C] logits without leaking tensors`, () => {
      const model = factory.create({ inputShape: [height, width, 3], classes, seed: 1 });
      try {
        expect(model.inputs[0]?.shape).toEqual([null, height, width, 3]);
        expect(model.outputs[0]?.shape).toEqual([null, classes]);
        const { images } = tinyBatch(batchSize, height, width, classes, 3);
        const before = tf.memory().numTensors;
        const output = model.predict(images) as tf.Tensor;
        expect(output.shape).toEqual([batchSize, classes]);
        expect(output.dtype).toBe('float32');
        expect(Array.from(output.dataSync()).every(Number.isFinite)).toBe(true);
        output.dispose();
        expect(tf.memory().numTensors).toBe(before);
        images.dispose();
      } finally {
        model.dispose();
      }
    });
  }
}

/** With `supportsBoxes`: the head's outputs and decoding, its loss lowered by training, save and load. */
function testBoxes(factory: ModelFactory, s: Settings, backend: string, directory: () => string): void {
  const { classes, batchSize, trainHeight, trainWidth } = s;
  const head = factory.boxHead ?? pooledBoxHead;
  const create = (seed: number) =>
    factory.create({ inputShape: [trainHeight, trainWidth, 3], classes, boxes: true, seed });

  it(`with boxes has the outputs of its head (${head.name}), decoded to one box per class`, () => {
    const model = create(1);
    try {
      expect(boxHeadOf(model, classes, [factory.boxHead])).toBe(head);
      const { images } = tinyBatch(batchSize, trainHeight, trainWidth, classes, 4);
      const before = tf.memory().numTensors;
      const outputs = [model.predict(images)].flat() as tf.Tensor[];
      const { logits, boxes, scores } = head.decode(outputs, classes);
      tf.dispose(outputs);
      expect(tf.memory().numTensors).toBe(before);
      images.dispose();
      expect(logits.length).toBe(batchSize * classes);
      expect(Array.from(logits).every(Number.isFinite)).toBe(true);
      expect(boxes.length).toBe(batchSize * classes * 4);
      for (let k = 0; k < boxes.length; k += 4) {
        const [x1, y1, x2, y2] = boxes.subarray(k, k + 4);
        expect(0 <= x1! && x1! <= x2! && x2! <= 1 && 0 <= y1! && y1! <= y2! && y2! <= 1).toBe(true);
      }
      if (scores !== undefined) {
        expect(scores.length).toBe(batchSize * classes);
        expect(Array.from(scores).every((v) => v >= 0 && v <= 1)).toBe(true);
      }
    } finally {
      model.dispose();
    }
  });

  it('with boxes a few training steps on its loss lower it, with a flat tensor count', () => {
    const model = create(2);
    const optimizer = tf.train.adam(s.learningRate);
    const batch = tinyBoxBatch(batchSize, trainHeight, trainWidth, classes, 8);
    try {
      expectLossFalls(() => lossStep(model, head, optimizer, batch), s.trainSteps);
    } finally {
      optimizer.dispose();
      tf.dispose([batch.images, batch.labels, batch.boxes, batch.mask]);
      model.dispose();
    }
  });

  it('with boxes save then load gives identical outputs, recognised as the same head', async () => {
    const model = create(3);
    const { images } = tinyBatch(batchSize, trainHeight, trainWidth, classes, 9);
    const target = path.join(directory(), `${backend}-boxes-model`);
    try {
      const expected = predictAll(model, images);
      await saveModel(model, target);
      const loaded = await loadModel(target);
      try {
        expect(boxHeadOf(loaded, classes)).toBe(head);
        expect(predictAll(loaded, images)).toEqual(expected);
      } finally {
        loaded.dispose();
      }
    } finally {
      images.dispose();
      model.dispose();
    }
  });
}

/** The logits model: training lowers the loss, save and load, the same seed gives the same model. */
function testLogitsModel(factory: ModelFactory, s: Settings, backend: string, directory: () => string): void {
  const { classes, batchSize, trainHeight, trainWidth } = s;
  const create = (seed: number) =>
    factory.create({ inputShape: [trainHeight, trainWidth, 3], classes, seed });

  it('a few training steps on a tiny batch lower the loss, with a flat tensor count', () => {
    const model = create(2);
    const optimizer = tf.train.adam(s.learningRate);
    const { images, labels } = tinyBatch(batchSize, trainHeight, trainWidth, classes, 5);
    try {
      const step = () => {
        const loss = optimizer.minimize(
          () => tf.losses.sigmoidCrossEntropy(labels, model.apply(images, { training: true }) as tf.Tensor),
          true,
        ) as tf.Scalar;
        const value = loss.dataSync()[0]!;
        loss.dispose();
        return value;
      };
      expectLossFalls(step, s.trainSteps);
    } finally {
      optimizer.dispose();
      images.dispose();
      labels.dispose();
      model.dispose();
    }
  });

  it('save then load gives identical predictions', async () => {
    const model = create(3);
    const { images } = tinyBatch(batchSize, trainHeight, trainWidth, classes, 6);
    const target = path.join(directory(), `${backend}-model`);
    try {
      const expected = predict(model, images);
      await saveModel(model, target);
      const loaded = await loadModel(target);
      try {
        expect(loaded.outputs[0]?.shape).toEqual([null, classes]);
        expect(predict(loaded, images)).toEqual(expected);
      } finally {
        loaded.dispose();
      }
    } finally {
      images.dispose();
      model.dispose();
    }
  });

  // Seed 0 too: tfjs-core reads an initialiser seed of 0 as "unseeded".
  it.each([0, 9])('the same seed gives the same model (seed %i)', (seed) => {
    const a = create(seed);
    const b = create(seed);
    const { images } = tinyBatch(batchSize, trainHeight, trainWidth, classes, 7);
    try {
      expect(predict(a, images)).toEqual(predict(b, images));
    } finally {
      images.dispose();
      a.dispose();
      b.dispose();
    }
  });
}

/**
 * The conformance suite every model package runs in its own tests (vitest). It checks the
 * {@link ModelFactory} contract: the factory's members; builds for several input sizes including non-square
 * ones with output `[B, C]`; a few training steps on a tiny batch lower the loss; save then load gives
 * identical predictions; the same seed gives the same model; `tf.memory().numTensors` is the same before and
 * after predict and train steps. When `supportsBoxes`, the same for the model with boxes through its
 * {@link ModelFactory.boxHead} (its outputs recognised by `boxHeadOf`, decoded to ordered boxes in [0, 1] and
 * any box scores in [0, 1], its loss lowered by training, save and load, recognised again after loading).
 *
 * @example
 * // packages/my-model/src/conformance.test.ts
 * import { testModelFactory } from '@litter/model/conformance';
 * import { model } from './index.js';
 * testModelFactory(model, { backends: ['cpu', 'wasm'] });
 */
export function testModelFactory(factory: ModelFactory, options: ConformanceOptions = {}): void {
  const s = settingsOf(options);
  describe(`ModelFactory conformance: ${String((factory as Partial<ModelFactory>)?.name)}`, () => {
    testContract(factory);
    for (const backend of s.backends) {
      describe(`on ${backend}`, () => {
        let directory: string;
        beforeAll(async () => {
          await initBackend({ backend });
          directory = await mkdtemp(path.join(tmpdir(), 'litter-conformance-'));
        });
        afterAll(async () => {
          await rm(directory, { recursive: true, force: true });
        });
        testBuilds(factory, s);
        if (factory.supportsBoxes) testBoxes(factory, s, backend, () => directory);
        testLogitsModel(factory, s, backend, () => directory);
      });
    }
  });
}
