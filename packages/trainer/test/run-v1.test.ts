import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, loadDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, loadRun, predictImages, train, writeRunReport } from '../src/index.js';
import { registerLite } from './helpers.js';

/*
 * fixtures/run-v1 is a run directory written by litter before the trainer was restructured (issue 10):
 * `litter train test/fixtures/blender-three-wide --width 16 --height 16 --steps 4 --batch-size 8
 * --validate-every 2 --log-every 1 --workers 1 --backend cpu --boxes --no-cache` (lite, cosine 3e-3, flips),
 * kept without its report and its best checkpoint (the same step as last). Whatever the code becomes, such a
 * run must still load, evaluate, predict, report and resume.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/run-v1', import.meta.url));
const DATASET = fileURLToPath(new URL('../../../test/fixtures/blender-three-wide', import.meta.url));

let root: string;
let dataset: Dataset;
beforeAll(async () => {
  registerLite();
  await initBackend({ backend: 'cpu' });
  root = await mkdtemp(join(tmpdir(), 'litter-run-v1-'));
  dataset = await loadDataset(DATASET, { width: 16, height: 16, cache: false });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let copies = 0;
async function copyOfFixture(): Promise<string> {
  const dir = join(root, `run-${copies++}`);
  await cp(FIXTURE, dir, { recursive: true });
  return dir;
}

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

describe('a run directory written before the restructuring (fixtures/run-v1)', () => {
  it('loads and evaluates as the run itself did', async () => {
    const dir = await copyOfFixture();
    const saved = await readJson(join(dir, 'evaluation.json'));
    const run = await loadRun(dir);
    try {
      expect(run.vocabulary).toEqual(['Can', 'Cube', 'Sphere']);
      expect([run.width, run.height, run.boxes, run.step]).toEqual([16, 16, true, 4]);
      expect(run.config?.split.validation).toHaveLength(25);
      expect(run.thresholds).toEqual(saved.validation.tuned.thresholds);
      const evaluation = evaluate(run.model, dataset, run.config!.split.validation, {
        thresholds: run.thresholds,
      });
      expect(evaluation.loss).toBeCloseTo(saved.validation.loss, 5);
      expect(evaluation.meanAveragePrecision).toBeCloseTo(saved.validation.meanAveragePrecision, 5);
      expect(evaluation.fixed.exactMatch).toBe(saved.validation.fixed.exactMatch);
      expect(evaluation.tuned?.macroF1).toBeCloseTo(saved.validation.tuned.macroF1, 6);
      expect(evaluation.tuned?.box?.count).toBe(saved.validation.tuned.box.count);
    } finally {
      run.model.dispose();
    }
  });

  it('predicts images with its thresholds and boxes', async () => {
    const run = await loadRun(await copyOfFixture());
    try {
      const [prediction] = await predictImages(run, [join(DATASET, '1-0y-0p.png')]);
      expect(prediction!.classes.map((c) => c.name)).toEqual(['Can', 'Cube', 'Sphere']);
      for (const c of prediction!.classes) {
        expect(c.probability).toBeGreaterThanOrEqual(0);
        expect(c.probability).toBeLessThanOrEqual(1);
        expect(c.visible).toBe(c.probability >= c.threshold);
        expect(c.box!.x1).toBeLessThanOrEqual(c.box!.x2);
      }
    } finally {
      run.model.dispose();
    }
  });

  it('writes its report from the run directory', async () => {
    const dir = await copyOfFixture();
    const { htmlPath } = await writeRunReport(dir, { dataset: DATASET });
    expect(await readFile(htmlPath, 'utf8')).toContain('<html');
  });

  it('resumes from its last checkpoint and trains on', async () => {
    const dir = await copyOfFixture();
    const config = await readJson(join(dir, 'config.json'));
    const result = await train({
      dataset,
      model: await resolveModel('lite'),
      runDir: dir,
      resume: true,
      workers: 1,
      batchSize: config.batchSize,
      steps: 6,
      learningRate: config.learningRate,
      schedule: config.schedule,
      warmupSteps: config.warmupSteps,
      flip: config.flip,
      bestMetric: config.bestMetric,
      validateEvery: config.validateEvery,
      logEvery: config.logEvery,
      seed: config.seed,
      boxes: config.boxes,
      report: false,
    });
    try {
      expect(result.stopped).toBe('done');
      expect(result.step).toBe(6);
      const steps = result.history.filter((row) => row.event === 'step').map((row) => row.step);
      expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
      // The first four rows are the fixture's own.
      const before = (await readFile(join(FIXTURE, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(result.history.slice(0, before.length)).toEqual(before);
      expect(Number.isFinite(result.evaluation?.loss)).toBe(true);
      expect((await readJson(join(dir, 'checkpoints', 'last', 'state.json'))).step).toBe(6);
    } finally {
      result.model.dispose();
    }
  });
});
