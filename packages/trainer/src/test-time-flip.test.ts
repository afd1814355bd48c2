import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastSceneHeldOut, registerLite, syntheticDataset, tinyModel } from '../test/helpers.js';
import { predictDataset } from './evaluate.js';
import { loadRun } from './predict.js';
import { train } from './train.js';

let root: string;
beforeAll(async () => {
  registerLite();
  await initBackend({ backend: 'wasm' });
  root = await mkdtemp(join(tmpdir(), 'litter-tta-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** `dataset` with every image mirrored left-right, built pixel by pixel (not with the code under test). */
function mirrored(dataset: Dataset): Dataset {
  const { width, height } = dataset;
  const pixels = new Uint8Array(dataset.pixels.length);
  for (let i = 0; i < dataset.size; i++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const from = ((i * height + y) * width + x) * 3;
        const to = ((i * height + y) * width + (width - 1 - x)) * 3;
        pixels.set(dataset.pixels.subarray(from, from + 3), to);
      }
    }
  }
  return { ...dataset, pixels };
}

const logit = (p: number) => Math.log(p / (1 - p));

/** Checks predictDataset's flip average against plain predictions of the images and of their mirrors. */
function expectFlipAverage(model: tfl.LayersModel, dataset: Dataset): void {
  const indices = [...Array(dataset.size).keys()];
  const plain = predictDataset(model, dataset, indices);
  const ofMirrors = predictDataset(model, mirrored(dataset), indices);
  const before = tf.memory().numTensors;
  const averaged = predictDataset(model, dataset, indices, { testTimeFlip: true, batchSize: 7 });
  expect(tf.memory().numTensors).toBe(before);
  averaged.probabilities.forEach((p, k) => {
    const expected = (logit(plain.probabilities[k]!) + logit(ofMirrors.probabilities[k]!)) / 2;
    expect(logit(p)).toBeCloseTo(expected, 4);
  });
  // The mirrored images' flip average is the same average (their mirror is the image).
  const mirroredAverage = predictDataset(model, mirrored(dataset), indices, { testTimeFlip: true });
  mirroredAverage.probabilities.forEach((p, k) => {
    expect(p).toBeCloseTo(averaged.probabilities[k]!, 5);
  });
  const [a, b, m] = [plain.boxes!.predicted, ofMirrors.boxes!.predicted, averaged.boxes!.predicted];
  let moved = 0;
  for (let o = 0; o < a.length; o += 4) {
    // The mirror's box mirrored back: x -> 1 - x, left and right corners swapped.
    const back = [1 - b[o + 2]!, b[o + 1]!, 1 - b[o]!, b[o + 3]!];
    for (let j = 0; j < 4; j++) {
      expect(m[o + j]!).toBeCloseTo((a[o + j]! + back[j]!) / 2, 5);
      if (Math.abs(m[o + j]! - a[o + j]!) > 1e-3) moved++;
    }
  }
  // The test would pass for a model blind to mirroring: make sure this one is not.
  expect(moved).toBeGreaterThan(0);
}

describe('test-time flips', () => {
  it('average the logits and the mirrored-back boxes of a pooled box head', () => {
    const dataset = syntheticDataset(20, 16, 16);
    const model = tinyModel.create({ inputShape: [16, 16, 3], classes: 2, boxes: true, seed: 3 });
    try {
      expectFlipAverage(model, dataset);
    } finally {
      model.dispose();
    }
  });

  it("average lite's CenterNet outputs the same way", async () => {
    const dataset = syntheticDataset(12, 32, 24);
    const lite = await resolveModel('lite');
    const model = lite.create({ inputShape: [24, 32, 3], classes: 2, boxes: true, seed: 1 });
    try {
      expectFlipAverage(model, dataset);
    } finally {
      model.dispose();
    }
  });

  it('are a setting of the run: recorded in config.json and followed by loadRun', async () => {
    const dataset = syntheticDataset(32, 16, 16);
    const runDir = join(root, 'run');
    const result = await train({
      dataset,
      model: tinyModel,
      runDir,
      split: lastSceneHeldOut(dataset),
      steps: 4,
      batchSize: 8,
      validateEvery: 2,
      testTimeFlip: true,
      workers: 1,
      report: false,
    });
    result.model.dispose();
    const config = JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8'));
    expect(config.testTimeFlip).toBe(true);
    const run = await loadRun(runDir);
    try {
      expect(run.testTimeFlip).toBe(true);
    } finally {
      run.model.dispose();
    }
  });
});
