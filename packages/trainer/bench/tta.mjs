// `pnpm bench:tta [LABELS]`: time to accuracy. Trains on blender-five (1,210 renders, 5 classes, 10 scenes) with
// scenes 8 and 9 held out for a fixed wall-clock budget, evaluating held-out exact match every few seconds, for
// (a) seed-cnn with the seed's recipe at 80x60 and (b) our best recipe, beside PyTorch running the seed's recipe
// on the same data, split and size (../shared/anchors/torch_seed_recipe.py accuracy). Not a test.
//
//   node packages/trainer/bench/tta.mjs [LABELS] [--budget-s 600] [--recipes seed,best,torch] [--workers N]
//     [--eval-every-s 10 (30 for seed-cnn)] [--target 0.85] [--width 80] [--height 60] [--val-scenes 8,9] [--seed 0]
//     best recipe settings: [--model model-lite] [--lr 3e-3] [--batch 32] [--schedule warmup-cosine]
//     [--augment flip] [--best-width 80 --best-height 60] [--resize-after-s 90|never] [--resize-to 120x90]
//     [--precise-bn true]
//
// The recipes (BENCHMARKS.md explains the choices):
//   seed: seed-cnn at 80x60, batch 32, Adam 1e-4 constant, no augmentation (the seed blog post's).
//   best: model-lite, batch 32, Adam peaking at 3e-3 (linear warm-up over 30 steps, then cosine decay to 0
//         over the budget, by elapsed time), random horizontal flips, 80x60 for the first 90 s then 120x90
//         (progressive resizing: the fully convolutional model keeps its weights and Adam state), and batch-norm
//         statistics re-estimated on 256 training images before each evaluation (precise batch norm).
// Both train on the data-parallel trainer (one wasm worker per core). Each recipe's clock starts at its first
// step and includes its evaluations (the PyTorch anchor's does too); evaluations run on the main thread.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EpochSampler, loadDataset, splitDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
// The trainer's own flips and batch-norm recalibration, as train() uses them (private modules of this package).
import { flipHalf } from '../dist/_augment.js';
import { recalibrateBatchNorm } from '../dist/_batchnorm.js';
import { jitterColors } from '../dist/_photometric.js';
import { createParallelTrainer } from '../dist/parallel/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'budget-s': { type: 'string', default: '600' },
    recipes: { type: 'string', default: 'seed,best,torch' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    'eval-every-s': { type: 'string' },
    target: { type: 'string', default: '0.85' },
    width: { type: 'string', default: '80' },
    height: { type: 'string', default: '60' },
    'val-scenes': { type: 'string', default: '8,9' },
    seed: { type: 'string', default: '0' },
    // The best recipe's settings, for experiments.
    model: { type: 'string', default: 'model-lite' },
    lr: { type: 'string', default: '3e-3' },
    batch: { type: 'string', default: '32' },
    schedule: { type: 'string', default: 'warmup-cosine' },
    augment: { type: 'string', default: 'flip' },
    'best-width': { type: 'string' },
    'best-height': { type: 'string' },
    'resize-after-s': { type: 'string', default: '90' },
    'resize-to': { type: 'string', default: '120x90' },
    'precise-bn': { type: 'string', default: 'true' },
    ema: { type: 'string', default: '0' },
    jitter: { type: 'string', default: '0.2,0.2,0.2,0.03' },
    anchor: { type: 'string', default: path.join(root, '../shared/anchors/torch_seed_recipe.py') },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const labelsPath = path.resolve(
  positionals[0] ?? path.join(root, '../shared/fixtures/blender-five/labels.json'),
);
const budget = Number(values['budget-s']);
// seed-cnn needs seconds to evaluate the held-out images: it is evaluated less often.
const evalEvery = (recipe) => Number(values['eval-every-s'] ?? (recipe.model === 'seed-cnn' ? 30 : 10));
const target = Number(values.target);
const width = Number(values.width);
const height = Number(values.height);
const valScenes = values['val-scenes'].split(',');
const seed = Number(values.seed);
const workers = Number(values.workers);

const RECIPES = {
  seed: {
    label: 'seed-cnn, seed recipe',
    model: 'seed-cnn',
    width,
    height,
    lr: 1e-4,
    batch: 32,
    schedule: 'constant',
    augment: 'none',
    preciseBn: false,
  },
  best: {
    label: 'our best recipe',
    model: values.model,
    width: Number(values['best-width'] ?? width),
    height: Number(values['best-height'] ?? height),
    lr: Number(values.lr),
    batch: Number(values.batch),
    schedule: values.schedule,
    augment: values.augment,
    preciseBn: values['precise-bn'] === 'true',
    ema: Number(values.ema),
    jitter: values.jitter.split(',').map(Number),
    ...(values['resize-after-s'] === 'never'
      ? {}
      : {
          resizeAfter: Number(values['resize-after-s']),
          resizeWidth: Number(values['resize-to'].split('x')[0]),
          resizeHeight: Number(values['resize-to'].split('x')[1]),
        }),
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

/** The dataset at one size, its split, held-out images and batch-norm calibration images, as floats in [0, 1]. */
async function prepare(w, h) {
  const cachePath = path.join(
    os.tmpdir(),
    `litter-bench-${path.basename(path.dirname(labelsPath))}-${w}x${h}.cache`,
  );
  const dataset = await loadDataset(labelsPath, { width: w, height: h, cachePath });
  const split = splitDataset(dataset, { validationScenes: valScenes, seed });
  const classes = dataset.vocabulary.length;
  const pixels = w * h * 3;
  const gather = (indices) => {
    const images = new Float32Array(indices.length * pixels);
    const labels = new Float32Array(indices.length * classes);
    indices.forEach((index, i) => {
      for (let p = 0; p < pixels; p++) images[i * pixels + p] = dataset.pixels[index * pixels + p] / 255;
      labels.set(dataset.labels.subarray(index * classes, (index + 1) * classes), i * classes);
    });
    return { images, labels, count: indices.length };
  };
  const random = rng(seed + 99);
  const calibrationIndices = [...split.train].sort(() => random() - 0.5).slice(0, 256);
  return {
    width: w,
    height: h,
    pixels,
    classes,
    dataset,
    split,
    gather,
    validation: gather(split.validation),
    calibrationIndices,
  };
}

/** Shifts each image by up to a tenth of its size in x and y, repeating the edge pixels. */
function shift(data, images, count, random, scratch) {
  const { width: w, height: h, pixels } = data;
  const maxX = Math.round(w * 0.1);
  const maxY = Math.round(h * 0.1);
  for (let n = 0; n < count; n++) {
    const dx = Math.round((random() * 2 - 1) * maxX);
    const dy = Math.round((random() * 2 - 1) * maxY);
    if (dx === 0 && dy === 0) continue;
    const image = images.subarray(n * pixels, (n + 1) * pixels);
    scratch.set(image);
    for (let r = 0; r < h; r++) {
      const sr = Math.min(h - 1, Math.max(0, r - dy));
      for (let c = 0; c < w; c++) {
        const from = (sr * w + Math.min(w - 1, Math.max(0, c - dx))) * 3;
        const to = (r * w + c) * 3;
        image[to] = scratch[from];
        image[to + 1] = scratch[from + 1];
        image[to + 2] = scratch[from + 2];
      }
    }
  }
}

function learningRate(recipe, elapsed, step) {
  const decay = 0.5 * (1 + Math.cos((Math.PI * Math.min(elapsed, budget)) / budget));
  switch (recipe.schedule) {
    case 'constant':
      return recipe.lr;
    case 'cosine':
      return Math.max(recipe.lr * decay, recipe.lr * 1e-3);
    case 'warmup-cosine':
      return Math.max(recipe.lr * Math.min(1, (step + 1) / 30) * decay, recipe.lr * 1e-3);
    default:
      throw new Error(`unknown schedule ${recipe.schedule}`);
  }
}

/** Held-out exact match (every class right at logit > 0, probability > 0.5), counting errors per class. */
function exactMatch(model, data, errors) {
  const { validation, pixels, classes } = data;
  let right = 0;
  for (let start = 0; start < validation.count; start += 64) {
    const n = Math.min(64, validation.count - start);
    const logits = tf.tidy(() => {
      const x = validation.images.subarray(start * pixels, (start + n) * pixels);
      return model.predict(tf.tensor4d(x, [n, data.height, data.width, 3])).dataSync();
    });
    for (let i = 0; i < n; i++) {
      let all = true;
      for (let c = 0; c < classes; c++) {
        const truth = validation.labels[(start + i) * classes + c];
        if ((logits[i * classes + c] > 0 ? 1 : 0) !== truth) {
          all = false;
          errors[c][truth === 1 ? 'missed' : 'falselySeen'] += 1;
        }
      }
      if (all) right++;
    }
  }
  return right / validation.count;
}

const prepared = new Map();
async function dataAt(w, h) {
  const key = `${w}x${h}`;
  if (!prepared.has(key)) prepared.set(key, await prepare(w, h));
  return prepared.get(key);
}

/** A model replica on the data-parallel trainer and one on the main thread for evaluations, at one input size. */
async function startStage(recipe, data, from) {
  const factory = await resolveModel(recipe.model, { importModule: (s) => import(s) });
  const evalModel = factory.create({ inputShape: [data.height, data.width, 3], classes: data.classes, seed });
  const trainer = await createParallelTrainer({
    modelSpec: recipe.model,
    inputShape: [data.height, data.width, 3],
    classes: data.classes,
    workers,
    learningRate: recipe.lr,
    seed,
    // A fully convolutional model takes its weights and Adam's moments to another input size unchanged.
    ...(from ? { initialWeights: from.weights } : {}),
  });
  if (from) await trainer.setOptimizerState(from.state);
  return { trainer, evalModel, data };
}

async function runRecipe(name) {
  const recipe = RECIPES[name];
  const { classes } = await dataAt(recipe.width, recipe.height);
  let stage = await startStage(recipe, await dataAt(recipe.width, recipe.height));
  let resized = recipe.resizeAfter === undefined;
  const random = rng(seed + 17);
  const samplerOf = (data) =>
    new EpochSampler({ indices: data.split.train, batchSize: recipe.batch, seed, dropLast: true });
  let sampler = samplerOf(stage.data);
  let best = 0;
  let bestErrors;
  let reached;
  let ema;
  let step = 0;
  let images = 0;
  let lastEval = 0;
  let evalSeconds = 0;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  try {
    while (elapsed() < budget) {
      if (!resized && elapsed() >= recipe.resizeAfter) {
        // Progressive resizing: the small size learns fast, the large one sees the small objects better.
        resized = true;
        const from = {
          weights: await stage.trainer.getWeights(),
          state: await stage.trainer.getOptimizerState(),
        };
        await stage.trainer.dispose();
        stage.evalModel.dispose();
        const data = await dataAt(recipe.resizeWidth, recipe.resizeHeight);
        stage = await startStage(recipe, data, from);
        const epochState = sampler.state();
        sampler = samplerOf(data);
        sampler.restore(epochState);
        console.log(`  ${name} ${elapsed().toFixed(1).padStart(6)} s  now at ${data.width}x${data.height}`);
      }
      const { data, trainer, evalModel } = stage;
      const { pixels, dataset, split } = data;
      const indices = sampler.next();
      const batch = new Float32Array(indices.length * pixels);
      const labels = new Float32Array(indices.length * classes);
      indices.forEach((index, i) => {
        for (let p = 0; p < pixels; p++) batch[i * pixels + p] = dataset.pixels[index * pixels + p] / 255;
        labels.set(dataset.labels.subarray(index * classes, (index + 1) * classes), i * classes);
      });
      if (recipe.augment.includes('flip')) {
        flipHalf(
          batch,
          undefined,
          indices.length,
          { height: data.height, width: data.width, classes },
          { next: random },
        );
      }
      if (recipe.augment.includes('color')) {
        const [brightness, contrast, saturation, hue] = recipe.jitter;
        jitterColors(
          batch,
          indices.length,
          data,
          { brightness, contrast, saturation, hue },
          { next: random },
        );
      }
      if (recipe.augment.includes('shift'))
        shift(data, batch, indices.length, random, new Float32Array(pixels));
      const loss = await trainer.step(batch, labels, indices.length, {
        learningRate: learningRate(recipe, elapsed(), step),
      });
      step++;
      images += indices.length;
      if (recipe.ema > 0) {
        const current = await trainer.getWeights();
        const decay = Math.min(recipe.ema, (1 + step) / (10 + step));
        if (!ema || ema.length !== current.length) ema = current;
        else
          ema.forEach((average, k) => {
            const w = current[k];
            for (let j = 0; j < w.length; j++) average[j] = decay * average[j] + (1 - decay) * w[j];
          });
      }
      const now = elapsed();
      if (now - lastEval < evalEvery(recipe) && now < budget) continue;
      lastEval = now;
      const evalStart = performance.now();
      const weights = ema ?? (await trainer.getWeights());
      const tensors = weights.map((w, i) => tf.tensor(w, trainer.weightShapes[i]));
      evalModel.setWeights(tensors);
      tf.dispose(tensors);
      // Batches of 64 of the 256 calibration images.
      if (recipe.preciseBn) recalibrateBatchNorm(evalModel, dataset, data.calibrationIndices, 64);
      const errors = dataset.vocabulary.map(() => ({ missed: 0, falselySeen: 0 }));
      const accuracy = exactMatch(evalModel, data, errors);
      evalSeconds += (performance.now() - evalStart) / 1000;
      const at = elapsed();
      if (accuracy > best) {
        best = accuracy;
        bestErrors = { errors, vocabulary: dataset.vocabulary, count: split.validation.length };
      }
      if (reached === undefined && accuracy >= target) reached = at;
      console.log(
        `  ${name} ${at.toFixed(1).padStart(6)} s  step ${String(step).padStart(5)}  epoch ${(
          (step * recipe.batch) / split.train.length
        ).toFixed(1)}  loss ${loss.toFixed(4)}  held-out exact match ${accuracy.toFixed(3)}`,
      );
    }
  } finally {
    await stage.trainer.dispose();
    stage.evalModel.dispose();
  }
  const seconds = elapsed();
  if (bestErrors) {
    const { errors, vocabulary, count } = bestErrors;
    console.log(
      `  ${name}: errors at its best evaluation (missed / falsely seen, of ${count}): ` +
        vocabulary.map((c, i) => `${c} ${errors[i].missed}/${errors[i].falselySeen}`).join(', '),
    );
  }
  return {
    label: recipe.label,
    recipe,
    best,
    reached,
    imagesPerSecond: images / (seconds - evalSeconds),
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
      if (error && !stdout.trim()) {
        resolve({
          skipped:
            `${values.python} torch_seed_recipe.py failed (${error.message.split('\n')[0]}); it needs ` +
            '`apt-get install -y python3-torch python3-pil python3-numpy`',
        });
        return;
      }
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
    });
    child.stdout.on('data', (chunk) => {
      for (const line of String(chunk).trim().split('\n')) if (line) console.log(`  torch ${line}`);
    });
  });
}

await initBackend({ backend: 'wasm' });
const started = new Date();
const results = [];
let torch;
for (const name of values.recipes.split(',')) {
  if (name === 'torch') {
    console.log(`torch_seed_recipe.py accuracy, ${width}x${height} (budget ${budget} s):`);
    torch = await runTorch();
    continue;
  }
  const recipe = RECIPES[name];
  if (!recipe) throw new Error(`unknown recipe ${name}: use seed, best, torch`);
  const data = await dataAt(recipe.width, recipe.height);
  console.log(
    `${name}: ${JSON.stringify(recipe)}; ${data.dataset.size} images, classes ${data.dataset.vocabulary.join(', ')}, ` +
      `train ${data.split.train.length}, held out ${data.split.validation.length} (scenes ${valScenes.join(', ')}); ` +
      `budget ${budget} s, ${workers} wasm workers`,
  );
  results.push(await runRecipe(name));
}

console.log(
  `\nheld-out exact match on ${path.basename(path.dirname(labelsPath))} (scenes ${valScenes.join(', ')} held out), ` +
    `budget ${budget} s; ${os.cpus()[0]?.model ?? 'CPU'}, ${os.availableParallelism()} cores, ` +
    `Node ${process.versions.node}, ${started.toISOString().slice(0, 10)}\n`,
);
const secondsText = (s) => (s === undefined || s === null ? `not within ${budget} s` : `${s.toFixed(0)} s`);
console.log(`| recipe | input | best held-out exact match | seconds to ${target} | training img/s |`);
console.log('|---|---|---|---|---|');
if (torch?.skipped) console.log(`| PyTorch seed recipe (anchor) | | skipped: ${torch.skipped} | | |`);
else if (torch) {
  console.log(
    `| PyTorch, seed recipe (anchor; stops at the target) | ${width}x${height} | ${torch.best_val_exact.toFixed(3)} | ` +
      `${secondsText(torch.seconds_to_target)} | |`,
  );
}
for (const r of results) {
  const { recipe } = r;
  const input =
    recipe.resizeAfter === undefined
      ? `${recipe.width}x${recipe.height}`
      : `${recipe.width}x${recipe.height}, ${recipe.resizeWidth}x${recipe.resizeHeight} after ${recipe.resizeAfter} s`;
  console.log(
    `| ${r.label}: ${recipe.model} | ${input} | ${r.best.toFixed(3)} | ${secondsText(r.reached)} | ` +
      `${r.imagesPerSecond.toFixed(1)} |`,
  );
}
