import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '@litter/dataset';
import {
  addCenterNetHead,
  type CreateModelOptions,
  centerNetHead,
  initBackend,
  type ModelFactory,
} from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { lastSceneHeldOut, syntheticDataset } from '../test/helpers.js';
import { readHistory, type StepRow, type ValidationRow } from './_history.js';
import { earlyStopping } from './callbacks.js';
import { readCheckpointState } from './run-dir.js';
import { train } from './train.js';
import type { TrainBeginEvent, TrainOptions } from './train-types.js';

/**
 * The training clock of the time-budget tests: with `performance` faked (`vi.useFakeTimers`), time passes only
 * when the model runs, FORWARD_MS per forward pass (of a training step or a validation batch), so that what a
 * budget does (its steps, validations, schedule and end) is the same on an idle machine and on a loaded one.
 */
const FORWARD_MS = 100;
class ClockedForward extends tfl.layers.Layer {
  static className = 'ClockedForwardTest';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    vi.advanceTimersByTime(FORWARD_MS);
    return inputs;
  }
}
tf.serialization.registerClass(ClockedForward);

/** Conv, global average pooling, dense; after a {@link ClockedForward} layer with `clocked`. */
function pooledNetwork(options: CreateModelOptions, clocked: boolean): tfl.LayersModel {
  const seed = options.seed ?? 0;
  const input = tfl.input({ shape: options.inputShape });
  let x = clocked ? (new ClockedForward({}).apply(input) as tfl.SymbolicTensor) : input;
  x = tfl.layers
    .conv2d({
      filters: 6,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
    })
    .apply(x) as tfl.SymbolicTensor;
  const features = x;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dropout({ rate: 0.2 }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers
    .dense({
      units: options.classes,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
    })
    .apply(x) as tfl.SymbolicTensor;
  if (!options.boxes) return tfl.model({ inputs: input, outputs: logits });
  const map = addCenterNetHead(features, { classes: options.classes, channels: 4 }, () => ({
    seed: seed + 2,
  }));
  return tfl.model({ inputs: input, outputs: [logits, map] });
}

/** Fully convolutional (global pooling): the same weights take any input size, as progressive resizing needs. */
const pooledModel: ModelFactory = {
  name: 'pooled-test',
  description: 'conv, global average pooling, dense; for tests',
  defaultInputSize: { width: 16, height: 16 },
  supportsBoxes: false,
  create: (options) => pooledNetwork(options, false),
};

/** {@link pooledModel} whose forward passes take FORWARD_MS of the (faked) clock; with boxes, a CenterNet head. */
const clockedModel: ModelFactory = {
  ...pooledModel,
  name: 'pooled-clocked-test',
  supportsBoxes: true,
  boxHead: centerNetHead,
  create: (options) => pooledNetwork(options, true),
};

/** The same images at half the size (every other pixel), labels unchanged. */
function halved(dataset: Dataset): Dataset {
  const width = dataset.width / 2;
  const height = dataset.height / 2;
  const pixels = new Uint8Array(dataset.size * width * height * 3);
  for (let n = 0; n < dataset.size; n++) {
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) {
        for (let k = 0; k < 3; k++) {
          pixels[((n * height + r) * width + c) * 3 + k] =
            dataset.pixels[((n * dataset.height + 2 * r) * dataset.width + 2 * c) * 3 + k]!;
        }
      }
    }
  }
  return { ...dataset, width, height, pixels };
}

let root: string;
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'litter-schedule-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dataset = syntheticDataset(48);
const small = halved(dataset);
const split = lastSceneHeldOut(dataset);
let runs = 0;
const base = (): TrainOptions => ({
  dataset,
  model: pooledModel,
  runDir: join(root, `run-${runs++}`),
  split,
  batchSize: 8,
  learningRate: 1e-2,
  schedule: 'cosine',
  warmupSteps: 3,
  seed: 5,
  workers: 1,
  report: false,
});

const weightsOf = (model: tfl.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

describe('train with a time budget', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stops inside the budget, validates along it and decays the rate on its clock', async () => {
    const result = await train({ ...base(), model: clockedModel, time: 2.5, logEvery: 1 });
    expect(result.stopped).toBe('done');
    const steps = result.history.filter((row): row is StepRow => row.event === 'step');
    const validations = result.history.filter((row): row is ValidationRow => row.event === 'validation');
    expect(steps.length, JSON.stringify(result.history)).toBeGreaterThan(4);
    expect(validations.length).toBeGreaterThanOrEqual(2);
    const seconds = steps.map((row) => row.seconds!);
    expect(seconds.every((s, i) => i === 0 || s > seconds[i - 1]!)).toBe(true);
    // the last step starts inside the budget (a step can take long on a loaded machine)
    const longest = Math.max(...seconds.map((t, i) => t - (seconds[i - 1] ?? 0)));
    expect(seconds.at(-1)!).toBeLessThan(2.5 + longest);
    // ... and it uses the budget: it stops once the next step and the final validation's room (1.2 validations)
    // would not fit, at most about two of the longest gaps between steps
    expect(seconds.at(-1)!).toBeGreaterThan(2.5 - 3 * longest);
    // after the warm-up the rate follows the cosine of the recorded clock
    for (const row of steps.slice(3)) {
      expect(row.learningRate).toBeCloseTo(
        1e-2 * 0.5 * (1 + Math.cos((Math.PI * (row.seconds! - 0)) / 2.5)),
        2,
      );
    }
    const state = await readCheckpointState(join(result.runDir, 'checkpoints', 'last'));
    // the clock recorded goes on through the last validation and checkpoint
    expect(state.seconds!).toBeGreaterThanOrEqual(seconds.at(-1)!);
    expect(state.seconds!).toBeLessThan(3.5 + longest);
    result.model.dispose();
  });

  it('leaves a timed validation just before the end to the last step, which validates anyway', async () => {
    for (const time of [3, 5, 8, 10]) {
      const result = await train({ ...base(), model: clockedModel, time });
      const validations = result.history.filter((row): row is ValidationRow => row.event === 'validation');
      const seconds = validations.map((row) => row.seconds!);
      expect(validations.length, `${time}: ${seconds}`).toBeGreaterThanOrEqual(2);
      // validations at least a tenth of the budget apart, and the last step's no closer than half that to the
      // one before it
      const gaps = seconds.slice(1).map((s, i) => s - seconds[i]!);
      expect(Math.min(...gaps.slice(0, -1)), `${time}: ${seconds}`).toBeGreaterThanOrEqual(time / 10);
      expect(gaps.at(-1)!, `${time}: ${seconds}`).toBeGreaterThanOrEqual(time / 20);
      result.model.dispose();
    }
  });

  it('with boxes, validates a spacing after the switch to the final size at the earliest', async () => {
    const time = 20;
    const progressive = { dataset: small, until: 0.5 };
    for (const boxes of [false, true]) {
      const result = await train({ ...base(), model: clockedModel, time, progressive, boxes });
      const validations = result.history.filter((row): row is ValidationRow => row.event === 'validation');
      const first = validations.find((row) => row.width === dataset.width)!;
      const trace = JSON.stringify(validations.map((row) => [row.width, row.seconds]));
      // the switch is at half the budget; the spacing is at least a tenth of it
      if (boxes) expect(first.seconds!, trace).toBeGreaterThanOrEqual(0.5 * time + time / 10);
      else expect(first.seconds!, trace).toBeLessThan(0.5 * time + time / 10);
      result.model.dispose();
    }
  });

  it('validates half as often before the final size of progressive resizing', async () => {
    // long enough for the validations (0.2-0.3 s of the clock) to be spaced by the budget's tenth, not by 9 times
    // their own time
    const time = 30;
    const result = await train({
      ...base(),
      model: clockedModel,
      time,
      progressive: { dataset: small, until: 0.5 },
    });
    const validations = result.history.filter((row): row is ValidationRow => row.event === 'validation');
    const at = (width: number) => validations.filter((row) => row.width === width).map((row) => row.seconds!);
    const [before, after] = [at(small.width), at(dataset.width)];
    const trace = JSON.stringify(validations.map((row) => [row.width, row.seconds]));
    expect(before.length, trace).toBeGreaterThanOrEqual(1);
    expect(after.length, trace).toBeGreaterThanOrEqual(2);
    const gaps = (seconds: number[]) => seconds.slice(1).map((s, i) => s - seconds[i]!);
    // a fifth of the budget apart at the small size (from the start), a tenth at the final one
    expect(Math.min(before[0]!, ...gaps(before)), trace).toBeGreaterThanOrEqual((2 * time) / 10);
    expect(Math.min(...gaps(after).slice(0, -1)), trace).toBeGreaterThanOrEqual(time / 10);
    expect(Math.min(...gaps(after)), trace).toBeLessThan((2 * time) / 10);
    result.model.dispose();
  });

  it('a resume with a longer budget goes on from the recorded clock and says how the schedule changes', async () => {
    const options = { ...base(), model: clockedModel, time: 1 };
    (await train(options)).model.dispose();
    const before = (await readHistory(options.runDir)).filter((row) => row.event === 'validation').length;
    let begin: TrainBeginEvent | undefined;
    const result = await train({
      ...options,
      time: 2,
      resume: true,
      callbacks: {
        onTrainBegin: (e) => {
          begin = e;
        },
      },
    });
    expect(begin!.resumed).toBe(true);
    expect(begin!.seconds).toBeGreaterThan(0);
    expect(begin!.scheduleChange).toMatch(
      /^length 1s -> 2s: .*the learning rate is now \S+ \(was \S+\) and decays to 0 at 2s\.$/,
    );
    const rows = result.history.filter((row): row is StepRow => row.event === 'step');
    expect(rows.at(-1)!.seconds!).toBeGreaterThan(1);
    expect(result.history.filter((row) => row.event === 'validation').length).toBeGreaterThan(before);
    result.model.dispose();
  });
});

describe('progressive resizing', () => {
  it('trains at the small size first, then at the full size, and resumes exactly across the switch', async () => {
    const before = tf.memory().numTensors;
    const options = {
      ...base(),
      steps: 16,
      validateEvery: 4,
      progressive: { dataset: small, until: 0.5 },
    };
    const whole = await train(options);
    const sizes = whole.history
      .filter((row): row is ValidationRow => row.event === 'validation')
      .map((row) => `${row.step}:${row.width}x${row.height}`);
    expect(sizes).toEqual(['4:8x8', '8:8x8', '12:16x16', '16:16x16']);
    expect(whole.model.inputs[0]!.shape).toEqual([null, 16, 16, 3]);
    const expected = weightsOf(whole.model);
    whole.model.dispose();

    // stopped at step 6 (small size), resumed: the same weights as the run without a stop
    const controller = new AbortController();
    const stoppedRun = { ...options, runDir: join(root, `run-${runs++}`) };
    const first = await train({
      ...stoppedRun,
      signal: controller.signal,
      callbacks: { onStepEnd: (e) => void (e.step === 6 && controller.abort()) },
    });
    expect(first.stopped).toBe('signal');
    expect(first.model.inputs[0]!.shape).toEqual([null, 8, 8, 3]);
    first.model.dispose();
    const resumed = await train({ ...stoppedRun, resume: true });
    const got = weightsOf(resumed.model);
    got.forEach((values, i) => {
      values.forEach((v, j) => {
        expect(v).toBeCloseTo(expected[i]![j]!, 5);
      });
    });
    resumed.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a small dataset that is not the same images', async () => {
    const other = { ...small, size: 12 };
    await expect(train({ ...base(), steps: 2, progressive: { dataset: other, until: 0.5 } })).rejects.toThrow(
      /same images as dataset/,
    );
    await expect(train({ ...base(), steps: 2, progressive: { dataset: small, until: 1 } })).rejects.toThrow(
      /progressive.until/,
    );
  });
});

describe('early stopping and colour jitter', () => {
  it('ends the run after patience validations without a new best, with the final evaluation', async () => {
    const bests: boolean[] = [];
    const result = await train({
      ...base(),
      steps: 200,
      validateEvery: 2,
      // a rate of 0 after the warm-up: the weights stop moving, so no later validation is a new best
      learningRate: 1e-9,
      callbacks: [{ onValidation: (e) => void bests.push(e.best) }, earlyStopping({ patience: 2 })],
    });
    expect(result.stopped).toBe('done');
    expect(result.step).toBeLessThan(200);
    expect(bests.slice(-2)).toEqual([false, false]);
    expect(result.message).toMatch(/stopped early at step \d+: no better validation in 2 validations/);
    expect(result.evaluation).toBeDefined();
    result.model.dispose();
  });

  it('jitters colours from the run generator: the same losses twice, other losses than without', async () => {
    const losses = async (options: Partial<TrainOptions>) => {
      const result = await train({ ...base(), steps: 4, logEvery: 1, ...options });
      result.model.dispose();
      return result.history.filter((row): row is StepRow => row.event === 'step').map((row) => row.loss);
    };
    const jitter = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 };
    const a = await losses({ colorJitter: jitter });
    const b = await losses({ colorJitter: jitter });
    const none = await losses({});
    expect(a).toEqual(b);
    expect(a[0]).not.toBe(none[0]);
  });

  it('zooms out, shifts and stretches from the run generator: the same losses twice, other losses than without', async () => {
    const losses = async (options: Partial<TrainOptions>) => {
      const result = await train({ ...base(), steps: 4, logEvery: 1, ...options });
      result.model.dispose();
      return result.history.filter((row): row is StepRow => row.event === 'step').map((row) => row.loss);
    };
    const a = await losses({ zoomOut: 0.3, shift: 0.05 });
    const b = await losses({ zoomOut: 0.3, shift: 0.05 });
    const shiftOnly = await losses({ shift: 0.05 });
    const stretchOnly = await losses({ stretch: 0.3 });
    const none = await losses({});
    expect(a).toEqual(b);
    expect(a[0]).not.toBe(none[0]);
    expect(shiftOnly[0]).not.toBe(none[0]);
    expect(shiftOnly[0]).not.toBe(a[0]);
    expect(stretchOnly[0]).not.toBe(none[0]);
    expect(stretchOnly).toEqual(await losses({ stretch: 0.3 }));
    await expect(losses({ zoomOut: 1 })).rejects.toMatchObject({ code: 'invalid-options' });
    await expect(losses({ stretch: -0.1 })).rejects.toMatchObject({ code: 'invalid-options' });
  });
});
