import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { lastSceneHeldOut, registerLite, syntheticDataset, tinyModel } from '../test/helpers.js';
import { batchNormLayers, evenlySpaced, recalibrateBatchNorm } from './_batchnorm.js';
import { TrainerError } from './errors.js';
import { train } from './train.js';
import type { TrainOptions, TrainResult } from './train-types.js';

/*
 * train() with `workers` > 1 runs the data-parallel trainer (src/parallel): the model in this thread only
 * validates and checkpoints, with the weights the workers hand back. seed-cnn at 16x16 on wasm, as a user's
 * run would be, only smaller.
 */
let root: string;
let seedCnn: TrainOptions['model'];
beforeAll(async () => {
  registerLite();
  ensureBuilt();
  await initBackend({ backend: 'wasm' });
  seedCnn = await resolveModel('seed-cnn');
  root = await mkdtemp(join(tmpdir(), 'litter-parallel-'));
}, 120_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dataset = syntheticDataset(48);
const split = lastSceneHeldOut(dataset);
let runs = 0;
const base = (): TrainOptions => ({
  dataset,
  model: seedCnn,
  runDir: join(root, `run-${runs++}`),
  split,
  batchSize: 7, // 36 training images: batches of 7 split 4 + 3, and the epoch ends with a batch of 1
  learningRate: 1e-3,
  seed: 3,
  logEvery: 1,
  validateEvery: 4,
  report: false,
});

const stepLosses = (result: TrainResult) =>
  result.history.filter((row) => row.event === 'step').map((row) => row.loss);

function maxRelativeDifference(actual: readonly number[], expected: readonly number[]): number {
  expect(actual).toHaveLength(expected.length);
  return Math.max(
    ...actual.map((a, i) => Math.abs(a - expected[i]!) / Math.max(Math.abs(expected[i]!), 1e-12)),
  );
}

describe('train with workers', () => {
  it('follows single-thread training, keeps the tensor count flat and records the worker count', async () => {
    const counts: number[] = [];
    const workerCounts: number[] = [];
    const options = { ...base(), steps: 8 };
    const before = tf.memory().numTensors;
    const parallel = await train({
      ...options,
      workers: 2,
      callbacks: {
        onTrainBegin: (e) => void workerCounts.push(e.workers),
        onStepEnd: () => void counts.push(tf.memory().numTensors),
      },
    });
    parallel.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(counts).size).toBe(1);
    expect(workerCounts).toEqual([2]);
    const config = JSON.parse(await readFile(join(options.runDir, 'config.json'), 'utf8'));
    expect(config.workers).toBe(2);

    const single = await train({ ...base(), steps: 8, workers: 1 });
    single.model.dispose();
    const losses = stepLosses(parallel);
    expect(new Set(losses.map((l) => l.toFixed(4))).size).toBeGreaterThan(3); // the loss moves
    expect(maxRelativeDifference(losses, stepLosses(single))).toBeLessThan(1e-4);
    // Validation ran on the workers' weights, copied into this thread's model.
    const validation = (result: TrainResult) =>
      result.history.filter((row) => row.event === 'validation').map((row) => row.loss);
    expect(validation(parallel)).toHaveLength(2);
    expect(maxRelativeDifference(validation(parallel), validation(single))).toBeLessThan(1e-4);
    expect(parallel.evaluation!.loss).toBeCloseTo(single.evaluation!.loss!, 4);
  });

  it('stops on abort with a checkpoint and resumes exactly, with any worker count', async () => {
    const straight = await train({ ...base(), steps: 8, workers: 2 });
    straight.model.dispose();

    // Stopped by a signal after step 3, resumed on two workers.
    const options = { ...base(), steps: 8, workers: 2 };
    const controller = new AbortController();
    const stopped = await train({
      ...options,
      signal: controller.signal,
      callbacks: { onStepEnd: (e) => void (e.step === 3 && controller.abort()) },
    });
    stopped.model.dispose();
    expect(stopped.stopped).toBe('signal');
    expect(stopped.step).toBe(3);
    const resumed = await train({ ...options, resume: true });
    resumed.model.dispose();
    // Same weights, moments and batches from the checkpoint on: the same losses.
    expect(maxRelativeDifference(stepLosses(resumed), stepLosses(straight))).toBeLessThan(1e-6);

    // A checkpoint of single-thread training resumed on two workers (and the other way round).
    const oneThread = { ...base(), workers: 1 };
    (await train({ ...oneThread, steps: 4 })).model.dispose();
    const continued = await train({ ...oneThread, steps: 8, resume: true, workers: 2 });
    continued.model.dispose();
    expect(maxRelativeDifference(stepLosses(continued), stepLosses(straight))).toBeLessThan(1e-4);
    const twoThreads = { ...base(), workers: 2 };
    (await train({ ...twoThreads, steps: 4 })).model.dispose();
    const back = await train({ ...twoThreads, steps: 8, resume: true, workers: 1 });
    back.model.dispose();
    expect(maxRelativeDifference(stepLosses(back), stepLosses(straight))).toBeLessThan(1e-4);
  });

  it('recalibrates batch norm before validating: the model it returns has the statistics of its weights', async () => {
    const lite = await resolveModel('model-lite');
    const options = { ...base(), model: lite, steps: 6, validateEvery: 3, learningRate: 3e-3, workers: 2 };
    const result = await train(options);
    const [layer] = batchNormLayers(result.model);
    const statistics = () => layer!.getWeights().map((w) => Array.from(w.dataSync()));
    // The moving mean and variance among the layer's weights (a ConvBatchNormRelu also holds the kernel).
    const [mean, variance] = ['moving_mean', 'moving_variance'].map((name) =>
      layer!.weights.findIndex((w) => w.name.endsWith(`/${name}`)),
    ) as [number, number];
    expect(mean).toBeGreaterThanOrEqual(0);
    const returned = statistics();
    // Recalibrating again with the same weights and images changes nothing; with the moving averages that
    // training leaves (momentum 0.99 from 0 and 1), it would change them a lot.
    recalibrateBatchNorm(result.model, dataset, evenlySpaced(split.train, 256), options.batchSize!);
    const again = statistics();
    for (const i of [mean, variance]) {
      again[i]!.forEach((value, c) => {
        expect(value).toBeCloseTo(returned[i]![c]!, 4);
      });
    }
    result.model.dispose();

    const raw = await train({ ...options, runDir: join(root, `run-${runs++}`), recalibrateBatchNorm: 0 });
    const [rawLayer] = batchNormLayers(raw.model);
    const rawMean = Array.from(rawLayer!.getWeights()[mean]!.dataSync());
    raw.model.dispose();
    expect(Math.max(...rawMean.map((m, c) => Math.abs(m - returned[mean]![c]!)))).toBeGreaterThan(1e-2);
  });

  it('says how to go on when the workers cannot load the model, and leaves no thread running', async () => {
    // Worker threads are OS threads of this process (Linux lists them in /proc/self/task).
    const threads = () => (existsSync('/proc/self/task') ? readdirSync('/proc/self/task').length : 0);
    const before = threads();
    const unresolvable = train({ ...base(), model: tinyModel, steps: 2, workers: 2 });
    await expect(unresolvable).rejects.toSatisfy(
      (error) =>
        error instanceof TrainerError &&
        error.code === 'worker-failed' &&
        /modelSpec/.test(error.message) &&
        /workers: 1/.test(error.message),
    );
    // A spec that resolves to another model than the one given.
    const other = train({ ...base(), model: tinyModel, modelSpec: 'seed-cnn', steps: 2, workers: 2 });
    await expect(other).rejects.toSatisfy(
      (error) => error instanceof TrainerError && error.code === 'model-mismatch',
    );
    await expect.poll(threads, { timeout: 2000 }).toBe(before);
    await expect(train({ ...base(), steps: 2, workers: 0 })).rejects.toSatisfy(
      (error) => error instanceof TrainerError && error.code === 'invalid-options',
    );
  });

  it('refuses workers on the tensorflow backend, which uses every core by itself', async () => {
    // A stand-in registered under the native binding's name (tfjs-node cannot be installed here); train()
    // must refuse before it runs a kernel.
    class NativeStandIn extends tf.KernelBackend {
      override dispose(): void {}
    }
    tf.registerBackend('tensorflow', () => new NativeStandIn(), -1);
    try {
      await tf.setBackend('tensorflow');
      await expect(train({ ...base(), steps: 2, workers: 2 })).rejects.toSatisfy(
        (error) =>
          error instanceof TrainerError &&
          error.code === 'invalid-options' &&
          /tensorflow backend uses every core/.test(error.message),
      );
    } finally {
      await tf.setBackend('wasm');
      tf.removeBackend('tensorflow');
    }
  });
});
