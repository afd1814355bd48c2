import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lastSceneHeldOut, syntheticDataset, tinyModel } from '../test/helpers.js';
import { TrainerError } from './errors.js';
import { evaluate } from './evaluate.js';
import { loadRun } from './predict.js';
import { train } from './train.js';
import type { TrainOptions } from './train-types.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'litter-trainer-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dataset = syntheticDataset(48);
const split = lastSceneHeldOut(dataset);
let runs = 0;
const base = (): TrainOptions => ({
  dataset,
  model: tinyModel,
  runDir: join(root, `run-${runs++}`),
  split,
  batchSize: 8,
  learningRate: 1e-2,
  seed: 3,
  workers: 1, // tinyModel is not a package the workers could load; train-parallel.test.ts covers workers
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('train', () => {
  it('keeps the number of tensors flat across steps, validations and checkpoints', async () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const result = await train({
      ...base(),
      steps: 30,
      validateEvery: 7,
      checkpointEvery: 5,
      logEvery: 4,
      callbacks: { onStepEnd: () => void counts.push(tf.memory().numTensors) },
    });
    expect(result.stopped).toBe('done');
    expect(counts).toHaveLength(30);
    // From the first step on (Adam's moments exist from then), nothing accumulates.
    expect(new Set(counts).size).toBe(1);
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('writes the run directory and reports every event', async () => {
    const events: string[] = [];
    const options = { ...base(), steps: 10, validateEvery: 5, logEvery: 2 };
    const result = await train({
      ...options,
      callbacks: [
        {
          onTrainBegin: (e) =>
            void events.push(`begin ${e.step}/${e.totalSteps} ${e.trainSize}+${e.validationSize}`),
          onValidation: (e) => void events.push(`validation ${e.step}`),
          onCheckpoint: async (e) => void events.push(`checkpoint ${e.kind} ${e.step}`),
          onTrainEnd: (e) => void events.push(`end ${e.stopped} ${e.evaluation?.size}`),
        },
        {}, // hooks are optional
      ],
    });
    result.model.dispose();
    expect(events[0]).toBe('begin 0/10 36+12');
    expect(events).toContain('validation 5');
    expect(events).toContain('checkpoint last 10');
    expect(events.at(-1)).toBe('end done 12');

    const files = await listFiles(options.runDir);
    for (const kind of ['last', 'best']) {
      for (const file of ['model.json', 'weights.bin', 'optimizer.json', 'optimizer.bin', 'state.json']) {
        expect(files).toContain(`checkpoints/${kind}/${file}`);
      }
      expect(files).toContain(`checkpoints/${kind}/thresholds.json`);
    }
    for (const file of [
      'config.json',
      'vocabulary.json',
      'metrics.jsonl',
      'metrics.csv',
      'thresholds.json',
    ]) {
      expect(files).toContain(file);
    }
    expect(files).toContain('evaluation.json');
    expect(files).toContain('evaluation.txt');
    expect(files.filter((f) => /tmp|previous|saving|\.old/.test(f))).toEqual([]);

    const config = JSON.parse(await readFile(join(options.runDir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model: 'tiny-test', width: 16, height: 16, batchSize: 8, seed: 3 });
    expect(config.split.validation).toEqual(split.validation);
    const rows = (await readFile(join(options.runDir, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(rows.filter((r) => r.event === 'step').map((r) => r.step)).toEqual([2, 4, 6, 8, 10]);
    expect(rows.filter((r) => r.event === 'validation').map((r) => r.step)).toEqual([5, 10]);
    expect(result.history).toEqual(rows);
    const csv = (await readFile(join(options.runDir, 'metrics.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toMatch(/^event,step,epoch,loss,/);
    expect(csv).toHaveLength(rows.length + 1);

    const saved = JSON.parse(await readFile(join(options.runDir, 'evaluation.json'), 'utf8'));
    expect(saved.validation).toEqual(JSON.parse(JSON.stringify(result.evaluation)));
    expect(await readFile(join(options.runDir, 'evaluation.txt'), 'utf8')).toMatch(/exact match/);
    const thresholds = JSON.parse(await readFile(join(options.runDir, 'thresholds.json'), 'utf8'));
    expect(thresholds).toEqual(result.thresholds);
    expect(result.evaluation!.tuned!.thresholds).toEqual(thresholds);

    // loadRun gives back the evaluated model with its thresholds: evaluating it again gives the same numbers.
    const run = await loadRun(options.runDir);
    expect(run.thresholds).toEqual(thresholds);
    expect(run.vocabulary).toEqual(['Blue', 'Red']);
    const again = evaluate(run.model, dataset, split.validation, { thresholds: run.thresholds });
    run.model.dispose();
    expect(again.fixed.exactMatch).toBe(result.evaluation!.fixed.exactMatch);
    expect(again.loss).toBeCloseTo(result.evaluation!.loss!, 5);
  });

  it('resumes exactly: losses after a stop equal those of an uninterrupted run', async () => {
    const steps = 12;
    const straight: number[] = [];
    const rates: number[] = [];
    // Flips and the warm-up draw on the run's state too: the resumed run must flip the same images.
    const recipe = { flip: true, warmupSteps: 4, schedule: 'cosine' } as const;
    const a = await train({
      ...base(),
      ...recipe,
      steps,
      validateEvery: 4,
      callbacks: {
        onStepEnd: (e) => {
          straight.push(e.loss);
          rates.push(e.learningRate);
        },
      },
    });
    a.model.dispose();
    // Linear warm-up over 4 steps, then the cosine decay.
    const cosine = (step: number) => 1e-2 * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
    rates.forEach((rate, step) => {
      expect(rate).toBeCloseTo(step < 4 ? (cosine(step) * (step + 1)) / 4 : cosine(step), 12);
    });
    const unflipped: number[] = [];
    const b = await train({
      ...base(),
      ...recipe,
      flip: false,
      steps,
      callbacks: { onStepEnd: (e) => void unflipped.push(e.loss) },
    });
    b.model.dispose();
    // Same weights and batches: only the flips make the losses differ.
    expect(unflipped.slice(0, 3)).not.toEqual(straight.slice(0, 3));

    const options = { ...base(), ...recipe, steps, validateEvery: 4 };
    const interrupted: number[] = [];
    const controller = new AbortController();
    const first = await train({
      ...options,
      signal: controller.signal,
      callbacks: {
        onStepEnd: (e) => {
          interrupted.push(e.loss);
          if (e.step === 6) controller.abort();
        },
      },
    });
    first.model.dispose();
    expect(first.stopped).toBe('signal');
    expect(first.step).toBe(6);
    expect(first.message).toMatch(/resume/);
    expect(first.evaluation).toBeUndefined();

    const resumedEvents: { step: number; resumed: boolean }[] = [];
    const second = await train({
      ...options,
      resume: true,
      callbacks: {
        onTrainBegin: (e) => void resumedEvents.push({ step: e.step, resumed: e.resumed }),
        onStepEnd: (e) => void interrupted.push(e.loss),
      },
    });
    second.model.dispose();
    expect(resumedEvents).toEqual([{ step: 6, resumed: true }]);
    expect(second.stopped).toBe('done');
    expect(interrupted).toHaveLength(steps);
    // the losses move (so equal lists mean something) ...
    expect(new Set(straight.map((l) => l.toFixed(6))).size).toBeGreaterThan(6);
    // ... and after the resume they follow the uninterrupted run
    for (let i = 0; i < steps; i++) expect(interrupted[i]).toBeCloseTo(straight[i]!, 5);
    expect(second.evaluation!.loss).toBeCloseTo(a.evaluation!.loss!, 5);
    // the history holds each step once
    expect(second.history.filter((r) => r.event === 'validation').map((r) => r.step)).toEqual([4, 8, 12]);
  });

  it('stops on a non-finite loss and keeps the last good checkpoint', async () => {
    const poisoned = syntheticDataset(48);
    const options = { ...base(), dataset: poisoned, steps: 20, checkpointEvery: 2, validateEvery: 100 };
    const result = await train({
      ...options,
      callbacks: {
        onStepEnd: (e) => {
          if (e.step === 4) poisoned.labels.fill(Number.NaN);
        },
      },
    });
    expect(result.stopped).toBe('nan');
    expect(result.step).toBe(4);
    expect(result.message).toMatch(/NaN at step 5.*step 4.*learning rate/);
    expect(result.evaluation).toBeUndefined();
    // the weights in memory never saw the bad step
    for (const weight of result.model.getWeights()) expect(tf.all(tf.isFinite(weight)).dataSync()[0]).toBe(1);
    result.model.dispose();
    const state = JSON.parse(await readFile(join(options.runDir, 'checkpoints/last/state.json'), 'utf8'));
    expect(state.step).toBe(4);
  });

  it('trains by epochs and with the box head', async () => {
    const steps: number[] = [];
    const result = await train({
      ...base(),
      epochs: 2,
      boxes: true,
      boxLossWeight: 2,
      schedule: 'cosine',
      callbacks: { onStepEnd: (e) => void steps.push(e.learningRate) },
    });
    // 36 training images, batches of 8: 5 steps an epoch
    expect(steps).toHaveLength(10);
    expect(steps[0]).toBeCloseTo(1e-2, 10);
    expect(steps[9]!).toBeLessThan(steps[5]!);
    expect(result.model.outputs[0]!.shape).toEqual([null, 10]);
    expect(result.evaluation!.vocabulary).toEqual(['Blue', 'Red']);
    // validation rows, the evaluation and evaluation.txt carry the detection figures
    const rows = result.history.filter((row) => row.event === 'validation');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      for (const key of ['meanIoU', 'shareIoU50', 'ap50', 'ap'] as const) {
        expect(row[key]).toBeGreaterThanOrEqual(0);
        expect(row[key]).toBeLessThanOrEqual(1);
      }
    }
    expect(result.evaluation!.detection!.classes.map((c) => c.name)).toEqual(['Blue', 'Red']);
    expect(await readFile(join(result.runDir, 'evaluation.txt'), 'utf8')).toMatch(/^AP50 \d\.\d{3} +AP75/m);
    result.model.dispose();
  });

  it('weights the loss of visible classes by positiveWeight (in-process) and records it', async () => {
    const firstLoss = async (positiveWeight?: number) => {
      const losses: number[] = [];
      const result = await train({
        ...base(),
        steps: 1,
        ...(positiveWeight === undefined ? {} : { positiveWeight }),
        callbacks: { onStepEnd: (e) => void losses.push(e.loss) },
      });
      result.model.dispose();
      const config = JSON.parse(await readFile(join(result.runDir, 'config.json'), 'utf8'));
      return { loss: losses[0]!, recorded: config.positiveWeight };
    };
    const plain = await firstLoss();
    const weighted = await firstLoss(3);
    expect(plain.recorded).toBe(1);
    expect(weighted.recorded).toBe(3);
    // The same first batch and weights: only the visible classes' terms are tripled.
    expect(weighted.loss).toBeGreaterThan(plain.loss * 1.2);
  });

  it('rejects bad options with TrainerErrors that say what to do', async () => {
    const reject = (options: Partial<TrainOptions>, code: string, message: RegExp) =>
      expect(train({ ...base(), ...options })).rejects.toSatisfy(
        (error) => error instanceof TrainerError && error.code === code && message.test(error.message),
      );
    await reject({ steps: 5, epochs: 1 }, 'invalid-options', /one of steps, epochs and time/);
    await reject({ time: 5, steps: 1 }, 'invalid-options', /one of steps, epochs and time/);
    await reject({ time: -1 }, 'invalid-options', /time must be a positive number/);
    await reject({ batchSize: 0 }, 'invalid-options', /batchSize/);
    await reject({ warmupSteps: -1 }, 'invalid-options', /warmupSteps/);
    await reject({ recalibrateBatchNorm: 1.5 }, 'invalid-options', /recalibrateBatchNorm/);
    await reject({ resume: true }, 'resume-missing', /cannot resume/);
    await reject({ split: { train: [], validation: [1] } }, 'empty-split', /training split is empty/);
    await reject({ split: { train: [99], validation: [] } }, 'invalid-options', /outside the dataset/);

    const options = { ...base(), steps: 2 };
    (await train(options)).model.dispose();
    await reject({ runDir: options.runDir, steps: 2 }, 'invalid-options', /already holds a run/);
    await reject(
      { runDir: options.runDir, resume: true, batchSize: 4 },
      'resume-mismatch',
      /batch size 8, now 4/,
    );
    const again = await train({ ...options, overwrite: true });
    again.model.dispose();
    expect(again.stopped).toBe('done');
  });
});
