import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, loadDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerLite, syntheticDataset, tinyModel } from '../test/helpers.js';
import { boxIoU } from './detection.js';
import { predictDataset } from './evaluate.js';
import { writeRunReport } from './report.js';
import { train } from './train.js';
import type { TrainResult } from './train-types.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/blender-three-wide', import.meta.url));
const CHARTS = ['iou.png', 'loss.png', 'precision-recall.png', 'samples.png', 'validation-metrics.png'];

let root: string;
beforeAll(async () => {
  registerLite();
  // wasm: the fastest backend that always loads here.
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'litter-report-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Mean IoU of the predicted with the true box over every visible class of the images at `indices`. */
function meanIoU(model: tfl.LayersModel, dataset: Dataset, indices: number[]): number {
  const { boxes } = predictDataset(model, dataset, indices);
  if (!boxes) throw new Error('the model has no box head');
  let sum = 0;
  let count = 0;
  for (let k = 0; k < boxes.mask.length; k++) {
    if (boxes.mask[k]! < 0.5) continue;
    sum += boxIoU(boxes.predicted.subarray(k * 4, k * 4 + 4), boxes.truth.subarray(k * 4, k * 4 + 4));
    count++;
  }
  return sum / count;
}

/** The same for a model that always answers the mean training box of each class. */
function meanBoxIoU(dataset: Dataset, train: number[], indices: number[]): number {
  const classes = dataset.vocabulary.length;
  const sums = new Float64Array(classes * 4);
  const counts = new Float64Array(classes);
  for (const i of train) {
    for (let c = 0; c < classes; c++) {
      if (dataset.boxMask[i * classes + c]! < 0.5) continue;
      counts[c]!++;
      for (let j = 0; j < 4; j++) sums[c * 4 + j]! += dataset.boxes[(i * classes + c) * 4 + j]!;
    }
  }
  let sum = 0;
  let count = 0;
  for (const i of indices) {
    for (let c = 0; c < classes; c++) {
      if (dataset.boxMask[i * classes + c]! < 0.5) continue;
      const mean = [0, 1, 2, 3].map((j) => sums[c * 4 + j]! / counts[c]!);
      sum += boxIoU(mean, dataset.boxes.subarray((i * classes + c) * 4, (i * classes + c) * 4 + 4));
      count++;
    }
  }
  return sum / count;
}

describe('training with boxes on blender-three-wide, and its report', () => {
  let dataset: Dataset;
  let result: TrainResult;
  const runDir = () => join(root, 'boxes');
  // Every fifth view of each scene held out: the fixture's scenes place their objects differently, so only
  // views of scenes seen in training can show that the box head learned (rather than generalised).
  const all = () => [...Array(dataset.size).keys()];
  const split = () => ({
    train: all().filter((i) => i % 5 !== 2),
    validation: all().filter((i) => i % 5 === 2),
  });

  beforeAll(async () => {
    dataset = await loadDataset(FIXTURE, { width: 24, height: 18, cache: false });
    result = await train({
      dataset,
      model: await resolveModel('model-lite'),
      runDir: runDir(),
      split: split(),
      boxes: true,
      boxLossWeight: 5,
      steps: 100,
      batchSize: 16,
      learningRate: 1e-2,
      validateEvery: 50,
      logEvery: 10,
      seed: 0,
    });
  });
  afterAll(() => {
    result?.model.dispose();
  });

  it('learns boxes: the IoU on held-out views beats the untrained model and the mean box', async () => {
    const factory = await resolveModel('model-lite');
    const untrained = factory.create({ inputShape: [18, 24, 3], classes: 3, boxes: true, seed: 0 });
    const before = meanIoU(untrained, dataset, split().validation);
    untrained.dispose();
    const after = meanIoU(result.model, dataset, split().validation);
    const baseline = meanBoxIoU(dataset, split().train, split().validation);
    expect(after).toBeGreaterThan(before + 0.05);
    expect(after).toBeGreaterThan(2 * baseline);
  });

  it('adds the localisation of correct detections to the evaluation', async () => {
    const box = result.evaluation?.fixed.box;
    expect(box?.count).toBeGreaterThan(0);
    expect(box?.meanIoU).toBeGreaterThan(0);
    const perClass = result.evaluation!.fixed.classes.map((m) => m.box?.count ?? -1);
    expect(perClass.reduce((a, b) => a + b, 0)).toBe(box!.count);
    const saved = JSON.parse(await readFile(join(runDir(), 'evaluation.json'), 'utf8'));
    expect(saved.validation.fixed.box).toEqual(box);
    expect(saved.validation.tuned.box).toEqual(result.evaluation!.tuned!.box);
    expect(await readFile(join(runDir(), 'evaluation.txt'), 'utf8')).toMatch(
      /boxes of the \d+ correctly detected/,
    );
  });

  it('writes report.html and the charts at the end, once', async () => {
    expect(result.reportPath).toBe(join(runDir(), 'report.html'));
    expect(result.reportError).toBeUndefined();
    expect((await readdir(join(runDir(), 'charts'))).sort()).toEqual(CHARTS);
    const html = await readFile(result.reportPath!, 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).toMatch(/mean IoU/);
    // the validation images, with boxes, inline
    expect(html.match(/src="data:image\/png;base64,/g)?.length).toBe(15);
  });

  it('regenerates the report from the run directory (writeRunReport)', async () => {
    await rm(join(runDir(), 'report.html'));
    await rm(join(runDir(), 'charts'), { recursive: true });
    const report = await writeRunReport(runDir());
    expect(report.htmlPath).toBe(join(runDir(), 'report.html'));
    expect(report.charts.map((path) => path.slice(runDir().length + 1)).sort()).toEqual(
      CHARTS.map((name) => `charts/${name}`),
    );
    const html = await readFile(report.htmlPath, 'utf8');
    expect(html.match(/src="data:image\/png;base64,/g)?.length).toBe(15);

    // a dataset that is not the run's
    const other = await loadDataset(FIXTURE, { width: 16, height: 12, cache: false });
    await expect(writeRunReport(runDir(), { dataset: other })).rejects.toMatchObject({
      code: 'invalid-options',
      message: expect.stringMatching(/16x12, the model takes 24x18/),
    });
    await expect(writeRunReport(join(root, 'nothing'))).rejects.toMatchObject({ code: 'run-not-found' });
  });
});

describe('the report of a run on an in-memory dataset', () => {
  it('leaves the image grid out when the images are not files, and can be turned off', async () => {
    const dataset = syntheticDataset(16);
    const split = { train: [0, 1, 2, 4, 5, 6, 8, 9, 10], validation: [3, 7, 11, 15] };
    const base = { dataset, model: tinyModel, split, steps: 2, batchSize: 8, logEvery: 1, workers: 1 };
    const withReport = await train({ ...base, runDir: join(root, 'memory') });
    withReport.model.dispose();
    expect(withReport.reportPath).toBe(join(root, 'memory', 'report.html'));
    expect((await readdir(join(root, 'memory', 'charts'))).sort()).toEqual(
      CHARTS.filter((name) => name !== 'samples.png' && name !== 'iou.png'), // no image grid; the IoU chart comes with a box head
    );
    expect(await readFile(withReport.reportPath!, 'utf8')).toMatch(/images not found under \/synthetic/);

    const without = await train({ ...base, runDir: join(root, 'no-report'), report: false });
    without.model.dispose();
    expect(without.reportPath).toBeUndefined();
    expect(existsSync(join(root, 'no-report', 'report.html'))).toBe(false);
    expect(existsSync(join(root, 'no-report', 'evaluation.json'))).toBe(true);
  });
});
