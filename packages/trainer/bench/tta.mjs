// `pnpm bench:tta [LABELS]`: time to accuracy. Trains on blender-five (1,210 renders, 5 classes, 10 scenes) with
// scenes 8 and 9 held out, at 80x60, for a fixed wall-clock budget, evaluating held-out exact match every few
// seconds, for (a) seed-cnn with the seed's recipe and (b) our best recipe, beside PyTorch running the seed's
// recipe on the same data, split and size (../shared/anchors/torch_seed_recipe.py accuracy). Not a test.
//
//   node packages/trainer/bench/tta.mjs [LABELS] [--budget-s 600] [--recipes seed,best,torch] [--workers N]
//     [--eval-every-s 5] [--target 0.85] [--width 80] [--height 60] [--val-scenes 8,9] [--seed 0]
//
// The recipes (documented in BENCHMARKS.md):
//   seed: seed-cnn, Adam 1e-4 constant, batch 32, no augmentation (the seed blog post's).
//   best: model-lite, batch 32, Adam with a peak of 3e-3, linear warm-up over the first 30 steps then cosine
//         decay to 0 over the budget (by elapsed time), horizontal flips.
// Both train with the data-parallel trainer (one wasm worker per core). The clock runs from the first step and
// includes the evaluations (as the PyTorch anchor's does); the model is evaluated on the main thread.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EpochSampler, loadDataset, splitDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { createParallelTrainer } from '../dist/parallel/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'budget-s': { type: 'string', default: '600' },
    recipes: { type: 'string', default: 'seed,best,torch' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    'eval-every-s': { type: 'string', default: '5' },
    target: { type: 'string', default: '0.85' },
    width: { type: 'string', default: '80' },
    height: { type: 'string', default: '60' },
    'val-scenes': { type: 'string', default: '8,9' },
    seed: { type: 'string', default: '0' },
    // Overrides of the best recipe, for experiments.
    model: { type: 'string' },
    lr: { type: 'string' },
    batch: { type: 'string' },
    schedule: { type: 'string' },
    augment: { type: 'string' },
    'precise-bn': { type: 'string' },
    anchor: { type: 'string', default: path.join(root, '../shared/anchors/torch_seed_recipe.py') },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const labelsPath = path.resolve(positionals[0] ?? path.join(root, '../shared/fixtures/blender-five/labels.json'));
const budget = Number(values['budget-s']);
const evalEvery = Number(values['eval-every-s']);
const target = Number(values.target);
const width = Number(values.width);
const height = Number(values.height);
const valScenes = values['val-scenes'].split(',');
const seed = Number(values.seed);
const workers = Number(values.workers);

const RECIPES = {
  seed: { label: 'seed-cnn, seed recipe', model: 'seed-cnn', lr: 1e-4, batch: 32, schedule: 'constant', augment: 'none' },
  best: {
    label: 'our best recipe',
    model: values.model ?? 'model-lite',
    lr: Number(values.lr ?? 3e-3),
    batch: Number(values.batch ?? 32),
    schedule: values.schedule ?? 'warmup-cosine',
    augment: values.augment ?? 'flip',
    preciseBn: (values['precise-bn'] ?? 'true') === 'true',
  },
};

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seedValue) {
  let state = seedValue >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

/** Mirrors images left-right in place, each with probability 1/2 (the labels are unchanged by a flip). */
function flipHalf(images, count, random) {
  const row = width * 3;
  for (let n = 0; n < count; n++) {
    if (random() < 0.5) continue;
    for (let r = 0; r < height; r++) {
      const start = (n * height + r) * row;
      for (let left = 0, right = width - 1; left < right; left++, right--) {
        for (let c = 0; c < 3; c++) {
          const a = start + left * 3 + c;
          const b = start + right * 3 + c;
          const t = images[a];
          images[a] = images[b];
          images[b] = t;
        }
      }
    }
  }
}

/**
 * Shifts each image by up to `fraction` of its size in x and y (edge pixels repeated), so the position of the
 * objects and of the floor's horizon vary more than the 8 training scenes alone show.
 */
function shift(images, count, random, fraction, scratch) {
  const maxX = Math.round(width * fraction);
  const maxY = Math.round(height * fraction);
  for (let n = 0; n < count; n++) {
    const dx = Math.round((random() * 2 - 1) * maxX);
    const dy = Math.round((random() * 2 - 1) * maxY);
    if (dx === 0 && dy === 0) continue;
    const image = images.subarray(n * pixels, (n + 1) * pixels);
    scratch.set(image);
    for (let r = 0; r < height; r++) {
      const sr = Math.min(height - 1, Math.max(0, r - dy));
      for (let c = 0; c < width; c++) {
        const sc = Math.min(width - 1, Math.max(0, c - dx));
        const to = (r * width + c) * 3;
        const from = (sr * width + sc) * 3;
        image[to] = scratch[from];
        image[to + 1] = scratch[from + 1];
        image[to + 2] = scratch[from + 2];
      }
    }
  }
}

function learningRate(recipe, elapsed, step) {
  switch (recipe.schedule) {
    case 'constant':
      return recipe.lr;
    case 'cosine':
      return Math.max(recipe.lr * 0.5 * (1 + Math.cos((Math.PI * Math.min(elapsed, budget)) / budget)), recipe.lr * 1e-3);
    case 'warmup-cosine': {
      const warm = Math.min(1, (step + 1) / 30);
      const decay = 0.5 * (1 + Math.cos((Math.PI * Math.min(elapsed, budget)) / budget));
      return Math.max(recipe.lr * warm * decay, recipe.lr * 1e-3);
    }
    default:
      throw new Error(`unknown schedule ${recipe.schedule}`);
  }
}

const cachePath = path.join(os.tmpdir(), `litter-bench-${path.basename(path.dirname(labelsPath))}-${width}x${height}.cache`);
const dataset = await loadDataset(labelsPath, { width, height, cachePath });
const split = splitDataset(dataset, { validationScenes: valScenes, seed });
const classes = dataset.vocabulary.length;
const pixels = width * height * 3;
console.log(
  `${labelsPath}: ${dataset.size} images, ${classes} classes (${dataset.vocabulary.join(', ')}), ` +
    `${width}x${height}; train ${split.train.length}, held out (scenes ${valScenes.join(', ')}) ${split.validation.length}`,
);

// Held-out images and labels, once.
const validation = {
  images: new Float32Array(split.validation.length * pixels),
  labels: new Float32Array(split.validation.length * classes),
};
split.validation.forEach((index, i) => {
  for (let p = 0; p < pixels; p++) validation.images[i * pixels + p] = dataset.pixels[index * pixels + p] / 255;
  validation.labels.set(dataset.labels.subarray(index * classes, (index + 1) * classes), i * classes);
});

await initBackend({ backend: 'wasm' });

/** Exact match on the held-out images: every class right at logit > 0 (probability > 0.5). */
function exactMatch(model) {
  const count = split.validation.length;
  let right = 0;
  for (let start = 0; start < count; start += 64) {
    const n = Math.min(64, count - start);
    const logits = tf.tidy(() =>
      model
        .predict(tf.tensor4d(validation.images.subarray(start * pixels, (start + n) * pixels), [n, height, width, 3]))
        .dataSync(),
    );
    for (let i = 0; i < n; i++) {
      let all = true;
      for (let c = 0; c < classes; c++) {
        if ((logits[i * classes + c] > 0 ? 1 : 0) !== validation.labels[(start + i) * classes + c]) all = false;
      }
      if (all) right++;
    }
  }
  return right / count;
}

/** Random training images for re-estimating batch-norm statistics before an evaluation. */
const calibration = (() => {
  const random = rng(seed + 99);
  const chosen = [...split.train].sort(() => random() - 0.5).slice(0, 256);
  const images = new Float32Array(chosen.length * pixels);
  chosen.forEach((index, i) => {
    for (let p = 0; p < pixels; p++) images[i * pixels + p] = dataset.pixels[index * pixels + p] / 255;
  });
  return { images, count: chosen.length };
})();

/**
 * Precise batch norm: replaces the moving statistics by their average over a few training batches run with the
 * current weights (the moving averages lag behind weights that move fast early in training).
 */
function recalibrateBatchNorm(model) {
  const layers = model.layers.filter((layer) => layer.getClassName() === 'BatchNormalization');
  if (layers.length === 0) return;
  const saved = layers.map((layer) => layer.momentum);
  const batch = 64;
  for (let k = 0; k * batch < calibration.count; k++) {
    // momentum k / (k + 1): the k-th batch's statistics count 1 / (k + 1), a running mean over the batches.
    for (const layer of layers) layer.momentum = k / (k + 1);
    const n = Math.min(batch, calibration.count - k * batch);
    tf.tidy(() => {
      model.apply(
        tf.tensor4d(calibration.images.subarray(k * batch * pixels, (k * batch + n) * pixels), [n, height, width, 3]),
        { training: true },
      );
    });
  }
  layers.forEach((layer, i) => {
    layer.momentum = saved[i];
  });
}

async function runRecipe(name) {
  const recipe = RECIPES[name];
  const factory = await resolveModel(recipe.model, { importModule: (s) => import(s) });
  const evalModel = factory.create({ inputShape: [height, width, 3], classes, seed });
  const trainer = await createParallelTrainer({
    modelSpec: recipe.model,
    inputShape: [height, width, 3],
    classes,
    workers,
    learningRate: recipe.lr,
    seed,
  });
  const sampler = new EpochSampler({ indices: split.train, batchSize: recipe.batch, seed, dropLast: true });
  const random = rng(seed + 17);
  const images = new Float32Array(recipe.batch * pixels);
  const labels = new Float32Array(recipe.batch * classes);
  const scratch = new Float32Array(pixels);
  const curve = [];
  let best = 0;
  let reached;
  let step = 0;
  let lastEval = 0;
  let evalSeconds = 0;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  try {
    while (elapsed() < budget) {
      const indices = sampler.next();
      indices.forEach((index, i) => {
        for (let p = 0; p < pixels; p++) images[i * pixels + p] = dataset.pixels[index * pixels + p] / 255;
        labels.set(dataset.labels.subarray(index * classes, (index + 1) * classes), i * classes);
      });
      if (recipe.augment.includes('flip')) flipHalf(images, indices.length, random);
      if (recipe.augment.includes('shift')) shift(images, indices.length, random, 0.1, scratch);
      const loss = await trainer.step(images, labels, indices.length, {
        learningRate: learningRate(recipe, elapsed(), step),
      });
      step++;
      const now = elapsed();
      if (now - lastEval >= evalEvery || now >= budget) {
        lastEval = now;
        const evalStart = performance.now();
        const weights = await trainer.getWeights();
        const tensors = weights.map((w, i) => tf.tensor(w, trainer.weightShapes[i]));
        evalModel.setWeights(tensors);
        tf.dispose(tensors);
        if (recipe.preciseBn) recalibrateBatchNorm(evalModel);
        const accuracy = exactMatch(evalModel);
        evalSeconds += (performance.now() - evalStart) / 1000;
        const at = elapsed();
        best = Math.max(best, accuracy);
        if (reached === undefined && accuracy >= target) reached = at;
        curve.push({ seconds: at, step, loss, exactMatch: accuracy });
        console.log(
          `  ${name} ${at.toFixed(1).padStart(6)} s  step ${String(step).padStart(5)}  epoch ${(
            (step * recipe.batch) / split.train.length
          ).toFixed(1)}  loss ${loss.toFixed(4)}  held-out exact match ${accuracy.toFixed(3)}`,
        );
      }
    }
  } finally {
    await trainer.dispose();
    evalModel.dispose();
  }
  const seconds = elapsed();
  return {
    name,
    label: recipe.label,
    recipe,
    best,
    reached,
    steps: step,
    imagesPerSecond: (step * recipe.batch) / (seconds - evalSeconds),
    evalSeconds,
    curve,
  };
}

async function runTorch() {
  if (!existsSync(values.anchor)) return { skipped: `${values.anchor} not found` };
  const args = [
    values.anchor,
    'accuracy',
    '--labels',
    labelsPath,
    '--width',
    String(width),
    '--height',
    String(height),
    '--val-scenes',
    valScenes.join(','),
    '--target',
    String(target),
    '--budget-s',
    String(budget),
    '--threads',
    String(os.availableParallelism()),
    '--seed',
    String(seed),
  ];
  return new Promise((resolve) => {
    const child = execFile(values.python, args, { maxBuffer: 1 << 24 }, (error, stdout) => {
      if (error && !stdout) {
        resolve({
          skipped:
            `${values.python} torch_seed_recipe.py failed (${error.message.split('\n')[0]}). Needs ` +
            '`apt-get install -y python3-torch python3-pil python3-numpy`',
        });
        return;
      }
      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line));
      resolve(lines.at(-1));
    });
    child.stdout.on('data', (chunk) => {
      for (const line of String(chunk).trim().split('\n')) if (line) console.log(`  torch ${line}`);
    });
  });
}

const started = new Date();
const results = [];
let torch;
for (const name of values.recipes.split(',')) {
  if (name === 'torch') {
    console.log(`torch_seed_recipe.py accuracy (budget ${budget} s):`);
    torch = await runTorch();
  } else {
    const recipe = RECIPES[name];
    console.log(`${name}: ${JSON.stringify(recipe)} (budget ${budget} s, ${workers} wasm workers):`);
    results.push(await runRecipe(name));
  }
}

console.log(
  `\nheld-out exact match on ${path.basename(path.dirname(labelsPath))} (scenes ${valScenes.join(', ')} held out), ` +
    `${width}x${height}, budget ${budget} s; ${os.cpus()[0]?.model ?? 'CPU'}, ${os.availableParallelism()} cores, ` +
    `Node ${process.versions.node}, ${started.toISOString().slice(0, 10)}\n`,
);
const secondsText = (s) => (s === undefined || s === null ? `not within ${budget} s` : `${s.toFixed(0)} s`);
console.log(`| recipe | best held-out exact match | seconds to ${target} | training img/s |`);
console.log('|---|---|---|---|');
if (torch) {
  if (torch.skipped) console.log(`| PyTorch seed recipe (anchor) | skipped: ${torch.skipped} | | |`);
  else
    console.log(
      `| PyTorch seed recipe (anchor; stops at the target) | ${torch.best_val_exact.toFixed(3)} | ${secondsText(torch.seconds_to_target)} | |`,
    );
}
for (const r of results) {
  console.log(`| ${r.label} (${r.recipe.model}) | ${r.best.toFixed(3)} | ${secondsText(r.reached)} | ${r.imagesPerSecond.toFixed(1)} |`);
}
