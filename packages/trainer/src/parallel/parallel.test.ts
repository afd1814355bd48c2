import { fileURLToPath } from 'node:url';
import { SeededRandom } from '@litter/dataset';
import { boxHeadOf, initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../../test/built.js';
import { registerLite } from '../../test/helpers.js';
import { recalibrateOn } from '../_batchnorm.js';
import { predictRaw, type RawPredictions } from '../_predict.js';
import { createParallelTrainer, type OptimizerWeight, type ParallelTrainerOptions } from './index.js';

const tripwire = fileURLToPath(new URL('../../test/fixtures/tripwire-model.mjs', import.meta.url));

/** Deterministic values in [0, 1): the trainer's own seeded generator. */
function random(count: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  return Float32Array.from({ length: count }, () => rng.next());
}

interface Batch {
  images: Float32Array;
  labels: Float32Array;
  boxes: Float32Array;
  boxMask: Float32Array;
  size: number;
}

const SIZE = 16;
const CLASSES = 3;
const PIXELS = SIZE * SIZE * 3;

function makeBatch(size: number, seed: number): Batch {
  const mask = random(size * CLASSES, seed + 3).map((v) => (v < 0.6 ? 1 : 0));
  return {
    images: random(size * PIXELS, seed),
    labels: random(size * CLASSES, seed + 1).map((v) => (v < 0.5 ? 1 : 0)),
    boxes: random(size * CLASSES * 4, seed + 2),
    boxMask: mask,
    size,
  };
}

/** Uneven batches on purpose: 7 splits 4 + 3 over two workers, 1 leaves a worker without rows. */
const batches = [8, 7, 8, 1, 8].map((size, i) => makeBatch(size, 100 * i + 1));

/**
 * Single-process training, as train() does it: tf.variableGrads of the loss (sigmoid cross entropy, or the box
 * head's loss with boxes) and Adam's applyGradients.
 */
async function reference(options: {
  modelSpec: string;
  backend: 'wasm' | 'cpu';
  weights: Float32Array[];
  learningRate: number;
  boxLossWeight?: number;
  /** The factor on visible classes' cross entropy, written out here as train()'s batchLoss should apply it. */
  positiveWeight?: number;
  batches: Batch[];
  /** Also return the weights and the optimizer's state after this many steps. */
  saveAfter?: number;
}): Promise<{
  losses: number[];
  weights: Float32Array[];
  saved?: { weights: Float32Array[]; state: OptimizerWeight[] };
}> {
  await initBackend({ backend: options.backend });
  const factory = await resolveModel(options.modelSpec);
  const boxes = options.boxLossWeight !== undefined;
  const model = factory.create({ inputShape: [SIZE, SIZE, 3], classes: CLASSES, boxes, seed: 5 });
  model.setWeights(
    options.weights.map((values, i) => tf.tensor(values, model.weights[i]!.shape as number[])),
  );
  const optimizer = tf.train.adam(options.learningRate);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const losses: number[] = [];
  let saved: { weights: Float32Array[]; state: OptimizerWeight[] } | undefined;
  for (const batch of options.batches) {
    if (losses.length === options.saveAfter) {
      const state = await optimizer.getWeights();
      saved = {
        weights: model.getWeights().map((w) => Float32Array.from(w.dataSync())),
        state: state.map(({ name, tensor }) => ({
          name,
          dtype: tensor.dtype === 'int32' ? 'int32' : 'float32',
          shape: tensor.shape,
          values:
            tensor.dtype === 'int32'
              ? Int32Array.from(tensor.dataSync())
              : Float32Array.from(tensor.dataSync()),
        })),
      };
      state[0]!.tensor.dispose();
    }
    const n = batch.size;
    losses.push(
      tf.tidy(() => {
        const images = tf.tensor4d(batch.images, [n, SIZE, SIZE, 3]);
        const labels = tf.tensor2d(batch.labels, [n, CLASSES]);
        const loss = () => {
          const output = model.apply(images, { training: true }) as tf.Tensor2D;
          if (!boxes) {
            // max(x, 0) - x y + log(1 + e^-|x|), each term times w where y = 1, averaged over all n x C.
            const terms = tf.add(
              tf.sub(tf.relu(output), tf.mul(output, labels)),
              tf.log1p(tf.exp(tf.neg(tf.abs(output)))),
            );
            const w = options.positiveWeight ?? 1;
            return tf.mean(tf.mul(terms, tf.add(tf.mul(labels, w - 1), 1))) as tf.Scalar;
          }
          const head = boxHeadOf(model, CLASSES, [factory.boxHead])!;
          return head.loss(
            [output].flat(),
            {
              labels,
              boxes: tf.tensor2d(batch.boxes, [n, CLASSES * 4]),
              mask: tf.tensor2d(batch.boxMask, [n, CLASSES]),
            },
            { weight: options.boxLossWeight!, positiveWeight: options.positiveWeight ?? 1 },
          );
        };
        const { value, grads } = tf.variableGrads(loss, variables);
        optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name]! })));
        return value.dataSync()[0]!;
      }),
    );
  }
  const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  optimizer.dispose();
  model.dispose();
  return { losses, weights, ...(saved ? { saved } : {}) };
}

function maxRelativeDifference(actual: readonly number[], expected: readonly number[]): number {
  expect(actual).toHaveLength(expected.length);
  return Math.max(
    ...actual.map((a, i) => Math.abs(a - expected[i]!) / Math.max(Math.abs(expected[i]!), 1e-12)),
  );
}

function maxWeightDifference(actual: Float32Array[], expected: Float32Array[]): number {
  let diff = 0;
  actual.forEach((values, i) => {
    values.forEach((v, j) => {
      diff = Math.max(diff, Math.abs(v - expected[i]![j]!));
    });
  });
  return diff;
}

/** Mean absolute difference over all weights. */
function meanWeightDifference(actual: Float32Array[], expected: Float32Array[]): number {
  let sum = 0;
  let count = 0;
  actual.forEach((values, i) => {
    values.forEach((v, j) => {
      sum += Math.abs(v - expected[i]![j]!);
      count++;
    });
  });
  return sum / count;
}

async function train(options: ParallelTrainerOptions, steps: Batch[]) {
  const trainer = await createParallelTrainer(options);
  try {
    const initial = await trainer.getWeights();
    const losses: number[] = [];
    for (const batch of steps) {
      losses.push(
        await trainer.step(batch.images, batch.labels, batch.size, {
          boxes: batch.boxes,
          boxMask: batch.boxMask,
        }),
      );
    }
    return { initial, losses, weights: await trainer.getWeights() };
  } finally {
    await trainer.dispose();
  }
}

const base = {
  inputShape: [SIZE, SIZE, 3] as [number, number, 3],
  classes: CLASSES,
  seed: 5,
  learningRate: 1e-3,
};

describe('createParallelTrainer', () => {
  beforeAll(() => {
    registerLite();
    ensureBuilt();
  }, 120_000);

  it.each(['wasm', 'cpu'] as const)(
    'seed-cnn on two %s workers follows single-process training (losses within 1e-4 relative)',
    async (backend) => {
      const parallel = await train({ ...base, modelSpec: 'seed-cnn', backend, workers: 2 }, batches);
      const single = await reference({
        modelSpec: 'seed-cnn',
        backend,
        weights: parallel.initial,
        learningRate: base.learningRate,
        batches,
      });
      // The losses move, so equal lists mean something.
      expect(new Set(single.losses.map((l) => l.toFixed(4))).size).toBeGreaterThan(3);
      expect(maxRelativeDifference(parallel.losses, single.losses)).toBeLessThan(1e-4);
      // The weights agree too. Adam moves a weight by about the learning rate whatever the size of its gradient,
      // so where a gradient is nearly 0 rounding may flip its sign: a few weights can differ by up to one step.
      expect(meanWeightDifference(parallel.weights, single.weights)).toBeLessThan(1e-6);
      expect(maxWeightDifference(parallel.weights, single.weights)).toBeLessThan(base.learningRate);
    },
  );

  it('three workers, each updating its third of the weights, follow single-process training; tensors flat', async () => {
    const trainer = await createParallelTrainer({ ...base, modelSpec: 'seed-cnn', workers: 3 });
    const losses: number[] = [];
    const tensors: number[][] = [];
    let initial: Float32Array[];
    let weights: Float32Array[];
    try {
      initial = await trainer.getWeights();
      // 8 rows split 3 + 3 + 2, 7 as 3 + 2 + 2, 1 leaves two workers without rows.
      for (const batch of batches) {
        losses.push(await trainer.step(batch.images, batch.labels, batch.size));
        const timing = trainer.lastStepTiming()!;
        for (const list of [timing.computeMs, timing.waitMs, timing.applyMs]) expect(list).toHaveLength(3);
        tensors.push(timing.tensors);
      }
      weights = await trainer.getWeights();
    } finally {
      await trainer.dispose();
    }
    const single = await reference({
      modelSpec: 'seed-cnn',
      backend: 'wasm',
      weights: initial,
      learningRate: base.learningRate,
      batches,
    });
    expect(maxRelativeDifference(losses, single.losses)).toBeLessThan(1e-4);
    expect(meanWeightDifference(weights, single.weights)).toBeLessThan(1e-6);
    expect(maxWeightDifference(weights, single.weights)).toBeLessThan(base.learningRate);
    // Every range was updated: about as many weights kept their initial values as in single-process training
    // (those whose gradient was always 0; rounding can make one of them tiny instead).
    const unmoved = (after: Float32Array[]) => {
      let count = 0;
      after.forEach((w, i) => {
        for (let j = 0; j < w.length; j++) if (w[j] === initial[i]![j]) count++;
      });
      return count;
    };
    expect(Math.abs(unmoved(weights) - unmoved(single.weights))).toBeLessThan(10);
    for (const counts of tensors) expect(counts).toEqual(tensors[0]);
  });

  it('trains the box head with the same loss as train()', async () => {
    const parallel = await train(
      { ...base, modelSpec: 'seed-cnn', workers: 2, boxes: true, boxLossWeight: 0.5 },
      batches.slice(0, 3),
    );
    const single = await reference({
      modelSpec: 'seed-cnn',
      backend: 'wasm',
      weights: parallel.initial,
      learningRate: base.learningRate,
      boxLossWeight: 0.5,
      batches: batches.slice(0, 3),
    });
    expect(maxRelativeDifference(parallel.losses, single.losses)).toBeLessThan(1e-4);
  });

  it('weights the cross entropy of visible classes by positiveWeight, as train() does (with and without boxes)', async () => {
    const steps = batches.slice(0, 3);
    for (const boxOptions of [{}, { boxes: true, boxLossWeight: 0.5 }]) {
      const parallel = await train(
        { ...base, modelSpec: 'seed-cnn', workers: 2, positiveWeight: 3, ...boxOptions },
        steps,
      );
      const options = {
        modelSpec: 'seed-cnn',
        backend: 'wasm' as const,
        weights: parallel.initial,
        batches: steps,
      };
      const { learningRate } = base;
      const weighted = await reference({ ...options, learningRate, positiveWeight: 3, ...boxOptions });
      const plain = await reference({ ...options, learningRate, ...boxOptions });
      expect(maxRelativeDifference(parallel.losses, weighted.losses)).toBeLessThan(1e-4);
      // The weight matters: the plain loss is another one.
      expect(Math.abs(parallel.losses[0]! - plain.losses[0]!)).toBeGreaterThan(0.05);
    }
  });

  it('averages batch-norm moving means over the shards (model-lite)', async () => {
    const steps = batches.slice(0, 1);
    const parallel = await train({ ...base, modelSpec: 'model-lite', workers: 2 }, steps);
    const single = await reference({
      modelSpec: 'model-lite',
      backend: 'wasm',
      weights: parallel.initial,
      learningRate: base.learningRate,
      batches: steps,
    });
    await initBackend({ backend: 'wasm' });
    const factory = await resolveModel('model-lite');
    const model = factory.create({ inputShape: [SIZE, SIZE, 3], classes: CLASSES });
    const names = model.weights.map((w) => w.name);
    model.dispose();
    const means = names.flatMap((name, i) => (name.includes('moving_mean') ? [i] : []));
    expect(means.length).toBe(6);
    // A moving mean moves linearly in the batch mean, so the average of the shards' moves the first batch norm's
    // as the whole batch would. Deeper layers see inputs normalised with each shard's own statistics (as in
    // PyTorch's DistributedDataParallel), so theirs only come close.
    expect(maxWeightDifference([parallel.weights[means[0]!]!], [single.weights[means[0]!]!])).toBeLessThan(
      1e-6,
    );
    for (const i of means) {
      expect(maxWeightDifference([parallel.weights[i]!], [single.weights[i]!])).toBeLessThan(1e-3);
      expect(maxWeightDifference([parallel.weights[i]!], [parallel.initial[i]!])).toBeGreaterThan(1e-4);
    }
  });

  it('estimates batch-norm statistics and predicts as one thread does, the images shared out (model-lite, boxes)', async () => {
    // 19 images in batches of 4 over 3 workers: 2, 2 and 1 batches (the last of 3 images); predictions of 7, 6
    // and 6 images.
    const rng = new SeededRandom(9);
    const count = 19;
    const gallery = Uint8Array.from({ length: count * PIXELS }, () => Math.floor(rng.next() * 256));
    const images = {
      count,
      height: SIZE,
      width: SIZE,
      imageAt: (k: number) => gallery.subarray(k * PIXELS, (k + 1) * PIXELS),
    };
    const options = { ...base, modelSpec: 'model-lite', workers: 3, boxes: true, boxLossWeight: 0.5 };
    const trainer = await createParallelTrainer(options);
    const step = async (batch: Batch) => {
      await trainer.step(batch.images, batch.labels, batch.size, {
        boxes: batch.boxes,
        boxMask: batch.boxMask,
      });
      return trainer.lastStepTiming()!.tensors;
    };
    let trained: Float32Array[];
    let statistics: Float32Array[];
    let withStatistics: RawPredictions;
    let withOwn: RawPredictions;
    try {
      const tensors = await step(batches[0]!);
      trained = await trainer.getWeights();
      statistics = await trainer.batchNormStatistics(images, 4);
      const predictOptions = { batchSize: 4, testTimeFlip: true };
      withStatistics = await trainer.predict(images, { ...predictOptions, nonTrainable: statistics });
      withOwn = await trainer.predict(images, predictOptions);
      // The replicas kept their own statistics and every tensor they made on the way was freed.
      expect(maxWeightDifference(await trainer.getWeights(), trained)).toBe(0);
      expect(await step(batches[1]!)).toEqual(tensors);
      await expect(trainer.predict({ ...images, width: SIZE * 2 })).rejects.toThrow(/32x16.*16x16/);
    } finally {
      await trainer.dispose();
    }

    await initBackend({ backend: 'wasm' });
    const factory = await resolveModel('model-lite');
    const model = factory.create({ inputShape: [SIZE, SIZE, 3], classes: CLASSES, boxes: true });
    const load = (weights: Float32Array[]) =>
      model.setWeights(weights.map((values, i) => tf.tensor(values, model.weights[i]!.shape as number[])));
    const nonTrainable = () => model.nonTrainableWeights.map((w) => Float32Array.from(w.read().dataSync()));
    try {
      load(trained);
      const own = predictRaw(model, images, CLASSES, { batchSize: 4, testTimeFlip: true });
      recalibrateOn(model, images, 4);
      const recalibrated = nonTrainable();
      const single = predictRaw(model, images, CLASSES, { batchSize: 4, testTimeFlip: true });
      // The statistics moved (so that equal ones mean something), and equal one thread's.
      expect(maxWeightDifference(statistics, recalibrated)).toBeLessThan(1e-5);
      const trainedStatistics = trained.filter((_, i) => !model.weights[i]!.trainable);
      expect(maxWeightDifference(recalibrated, trainedStatistics)).toBeGreaterThan(1e-3);
      for (const [parallel, thread] of [
        [withStatistics, single],
        [withOwn, own],
      ] as const) {
        expect(parallel.logits).toHaveLength(count * CLASSES);
        expect(parallel.boxes).toHaveLength(count * CLASSES * 4);
        expect(maxRelativeDifference([...parallel.logits], [...thread.logits])).toBeLessThan(1e-4);
        expect(maxWeightDifference([parallel.boxes!], [thread.boxes!])).toBeLessThan(1e-5);
        expect(maxWeightDifference([parallel.scores!], [thread.scores!])).toBeLessThan(1e-5);
      }
      expect(maxWeightDifference([withStatistics.logits], [withOwn.logits])).toBeGreaterThan(1e-3);
    } finally {
      model.dispose();
    }
  });

  it('saves and restores the optimizer state exactly', async () => {
    const options = { ...base, modelSpec: 'seed-cnn', workers: 2 };
    const first = await createParallelTrainer(options);
    const straight: number[] = [];
    let saved: { weights: Float32Array[]; state: OptimizerWeight[] };
    let finalWeights: Float32Array[];
    try {
      for (const batch of batches.slice(0, 2)) {
        straight.push(await first.step(batch.images, batch.labels, batch.size));
      }
      saved = { weights: await first.getWeights(), state: await first.getOptimizerState() };
      for (const batch of batches.slice(2)) {
        straight.push(await first.step(batch.images, batch.labels, batch.size));
      }
      finalWeights = await first.getWeights();
    } finally {
      await first.dispose();
    }
    // tf.Optimizer.getWeights() layout: iterations, then a first and a second moment per trainable weight.
    expect(saved.state[0]).toMatchObject({ name: 'iter', dtype: 'int32', shape: [] });
    expect(Array.from(saved.state[0]!.values)).toEqual([2]);
    expect(saved.state.map((w) => w.name.split('/').at(-1))).toEqual([
      'iter',
      ...Array(10).fill('m'),
      ...Array(10).fill('v'),
    ]);

    const second = await createParallelTrainer({ ...options, initialWeights: saved.weights });
    const resumed: number[] = [];
    try {
      await second.setOptimizerState(saved.state);
      const restored = await second.getOptimizerState();
      expect(restored.map((w) => w.name)).toEqual(saved.state.map((w) => w.name));
      restored.forEach((w, i) => {
        expect(w.values).toEqual(saved.state[i]!.values);
      });
      for (const batch of batches.slice(2)) {
        resumed.push(await second.step(batch.images, batch.labels, batch.size));
      }
      // Bit for bit: the same losses and weights as without the interruption.
      expect(resumed).toEqual(straight.slice(2));
      expect(await second.getWeights()).toEqual(finalWeights);
    } finally {
      await second.dispose();
    }
  });

  it("takes over a tf.train.adam optimizer's state (checkpoints of single-process training)", async () => {
    const straight = await reference({
      modelSpec: 'seed-cnn',
      backend: 'wasm',
      weights: (await train({ ...base, modelSpec: 'seed-cnn', workers: 1 }, [])).initial,
      learningRate: base.learningRate,
      batches,
      saveAfter: 2,
    });
    const trainer = await createParallelTrainer({
      ...base,
      modelSpec: 'seed-cnn',
      workers: 2,
      initialWeights: straight.saved!.weights,
    });
    const continued: number[] = [];
    try {
      await trainer.setOptimizerState(straight.saved!.state);
      for (const batch of batches.slice(2)) {
        continued.push(await trainer.step(batch.images, batch.labels, batch.size));
      }
    } finally {
      await trainer.dispose();
    }
    expect(maxRelativeDifference(continued, straight.losses.slice(2))).toBeLessThan(1e-4);
  });

  it('rejects when a worker throws, and terminates every worker', async () => {
    const trainer = await createParallelTrainer({ ...base, modelSpec: tripwire, workers: 2 });
    const batch = makeBatch(4, 9);
    await expect(trainer.step(batch.images, batch.labels, 4)).resolves.toBeGreaterThan(0);
    const poisoned = batch.images.slice();
    poisoned[2 * PIXELS] = 42; // the first pixel of worker 1's rows
    const failure = trainer.step(poisoned, batch.labels, 4);
    await expect(failure).rejects.toThrow(/worker 1 failed: tripwire/);
    await expect(failure).rejects.toMatchObject({ code: 'worker-failed', name: 'TrainerError' });
    // All threads end without dispose(); later calls reject.
    await trainer.closed;
    await expect(trainer.step(batch.images, batch.labels, 4)).rejects.toThrow(/worker 1 failed/);
    await trainer.dispose();
  });

  it('rejects when a worker thread exits', async () => {
    const trainer = await createParallelTrainer({ ...base, modelSpec: tripwire, workers: 2 });
    const batch = makeBatch(4, 10);
    batch.images[0] = 43; // worker 0 calls process.exit
    await expect(trainer.step(batch.images, batch.labels, 4)).rejects.toThrow(/worker 0 exited \(code 3\)/);
    await trainer.closed;
    await trainer.dispose();
  });

  it('dispose() ends every thread and later calls reject', async () => {
    const trainer = await createParallelTrainer({ ...base, modelSpec: tripwire, workers: 2 });
    let exited = false;
    void trainer.closed.then(() => {
      exited = true;
    });
    await trainer.dispose();
    expect(exited).toBe(true);
    const batch = makeBatch(2, 11);
    await expect(trainer.step(batch.images, batch.labels, 2)).rejects.toThrow(/disposed/);
    await trainer.dispose(); // again: no error
  });

  it('checks its options', async () => {
    const reject = (options: Partial<ParallelTrainerOptions>, pattern: RegExp) =>
      expect(
        createParallelTrainer({
          ...base,
          modelSpec: tripwire,
          workers: 1,
          ...options,
        } as ParallelTrainerOptions),
      ).rejects.toThrow(pattern);
    await reject({ backend: 'tensorflow' as 'wasm' }, /wasm or cpu backend/);
    await reject({ workers: 0 }, /workers must be a positive integer/);
    await reject({ workerUrl: new URL('file:///nowhere/worker.js') }, /build @litter\/trainer/);
    await reject({ modelSpec: 'no-such-model-package' }, /worker 0 failed: .*no-such-model-package/);
    await reject({ initialWeights: [new Float32Array(3)] }, /initialWeights: 1 arrays/);
    const trainer = await createParallelTrainer({ ...base, modelSpec: tripwire, workers: 1 });
    try {
      await expect(trainer.step(new Float32Array(10), new Float32Array(3), 1)).rejects.toThrow(/needs 768/);
    } finally {
      await trainer.dispose();
    }
  });
});
