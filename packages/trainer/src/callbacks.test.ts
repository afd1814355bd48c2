import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@litter/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSceneHeldOut, syntheticDataset, tinyModel } from '../test/helpers.js';
import { earlyStopping } from './callbacks.js';
import { train } from './train.js';
import type { TrainBeginEvent, TrainOptions } from './train-types.js';

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'litter-callbacks-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dataset = syntheticDataset(32);
const options = (runDir: string): TrainOptions => ({
  dataset,
  model: tinyModel,
  runDir,
  split: lastSceneHeldOut(dataset),
  batchSize: 8,
  // The weights barely move, and a count of right answers does not see it: after the first validation none
  // is a new best (the loss would still fall by a hair).
  learningRate: 1e-9,
  bestMetric: 'macroF1',
  warmupSteps: 0,
  validateEvery: 2,
  seed: 3,
  workers: 1,
  report: false,
});

describe('earlyStopping', () => {
  it('goes on counting validations without a new best across a resume', async () => {
    const runDir = join(root, 'resumed');
    const begins: TrainBeginEvent[] = [];
    const bests: boolean[] = [];
    const recorder = {
      onTrainBegin: (e: TrainBeginEvent) => void begins.push(e),
      onValidation: (e: { best: boolean }) => void bests.push(e.best),
    };
    const first = await train({
      ...options(runDir),
      steps: 6,
      callbacks: [recorder, earlyStopping({ patience: 3 })],
    });
    first.model.dispose();
    expect(first.step).toBe(6);
    expect(bests).toEqual([true, false, false]);

    const resumed = await train({
      ...options(runDir),
      resume: true,
      steps: 200,
      callbacks: [recorder, earlyStopping({ patience: 3 })],
    });
    resumed.model.dispose();
    expect(begins.map((e) => e.validationsSinceBest)).toEqual([0, 2]);
    // Two validations without a best before the interruption, one after: patience 3 ends the run at step 8
    // (a count restarted at the resume would have gone on to step 12).
    expect(resumed.step).toBe(8);
    expect(resumed.message).toMatch(/stopped early at step 8: no better validation in 3 validations/);
  });

  it('refuses a patience that is not a positive integer', () => {
    expect(() => earlyStopping({ patience: 0 })).toThrow(/patience must be a positive integer/);
    expect(() => earlyStopping({ patience: 1.5 })).toThrow(/patience must be a positive integer/);
  });
});
