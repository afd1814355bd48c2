// `pnpm bench:train`: training throughput (images/s, batch 32), ours beside PyTorch on the same sizes, in the same
// run. Not a test.
// - seed-cnn at 32x32 and 64x64 on every backend that loads, in-process, and in the data-parallel mode (worker
//   threads, wasm), beside ../shared/anchors/torch_seed_recipe.py throughput (the seed's network and recipe);
// - lite (the default model) at 32x32, 80x60 and 120x90 on 1 and 2 data-parallel wasm workers, beside
//   ../shared/anchors/torch_lite_recipe.py throughput (the same network in PyTorch).
//
//   node packages/trainer/bench/train.mjs [--models seed-cnn,lite] [--sizes 32,64] [--lite-sizes 32x32,80x60,120x90]
//     [--backends wasm,cpu] [--workers N] [--lite-workers 1,2] [--steps 5] [--lite-warm 50] [--repeat 1]
//     [--threads N] [--classes 5]
//
// Runs the built packages (the root script builds them first). The machine may be shared: each figure is the
// median step time of its run; --repeat runs the whole table again and keeps, per cell, the median of the runs.
// The lite rows come twice from the same trainer: steps 5-9 of a fresh one (as seed-cnn's), and --steps more
// after --lite-warm further steps, once V8 has compiled the hot JavaScript (its optimising compiler runs on
// helper threads for the first tens of steps, which with one worker per core take time from a worker); beside
// each, where the step's time went (wall, the slowest worker's compute, the update, and on Linux every
// thread's CPU time per step: the workers, V8's helper threads, the main thread).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { initBackend, probeBackends, seedCnn } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { createParallelTrainer } from '../dist/parallel/index.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '32,64' },
    backends: { type: 'string', default: '' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    steps: { type: 'string', default: '5' },
    'lite-warm': { type: 'string', default: '50' },
    repeat: { type: 'string', default: '1' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    classes: { type: 'string', default: '5' },
    batch: { type: 'string', default: '32' },
    models: { type: 'string', default: 'seed-cnn,lite' },
    'lite-sizes': { type: 'string', default: '32x32,80x60,120x90' },
    'lite-workers': { type: 'string', default: '1,2' },
    anchor: { type: 'string', default: path.join(root, '../shared/anchors/torch_seed_recipe.py') },
    'lite-anchor': { type: 'string', default: path.join(root, '../shared/anchors/torch_lite_recipe.py') },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const models = values.models.split(',');
const sizes = models.includes('seed-cnn') ? values.sizes.split(',').map(Number) : [];
const liteSizes = models.includes('lite')
  ? values['lite-sizes'].split(',').map((s) => {
      const [width, height = width] = s.split('x').map(Number);
      return { width, height, key: `${width}x${height}` };
    })
  : [];
// model-lite from this repository's build, by path (the CLI registers the name 'lite'; this script does not).
const liteModel = path.join(root, 'packages/model-lite/dist/index.js');
const liteWorkers = values['lite-workers'].split(',').map(Number);
const workers = Number(values.workers);
const steps = Number(values.steps);
const liteWarm = Number(values['lite-warm']);
const classes = Number(values.classes);
const batch = Number(values.batch);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Deterministic pseudo-random floats in [0, 1). */
function random(count, seed) {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 4294967296;
  }
  return out;
}

/** Training steps of seed-cnn as train() runs them (variableGrads + Adam), in this process. */
async function inProcess(backend, size) {
  await initBackend({ backend });
  const model = seedCnn.create({ inputShape: [size, size, 3], classes, seed: 1 });
  const optimizer = tf.train.adam(1e-4);
  const variables = model.trainableWeights.map((w) => w.read());
  const images = tf.tensor4d(random(batch * size * size * 3, 1), [batch, size, size, 3]);
  const labels = tf.tensor2d(
    random(batch * classes, 2).map((v) => (v < 0.5 ? 1 : 0)),
    [batch, classes],
  );
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.sigmoidCrossEntropy(labels, model.apply(images, { training: true })),
        variables,
      );
      optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      return value.dataSync()[0];
    });
  // The cpu backend takes about a minute per 64x64 step: one warm-up and one timed step there.
  const timed = backend === 'cpu' ? 1 : steps;
  const warmup = backend === 'cpu' ? 1 : 3;
  for (let i = 0; i < warmup; i++) step();
  const times = [];
  for (let i = 0; i < timed; i++) {
    const start = performance.now();
    step();
    times.push(performance.now() - start);
  }
  tf.dispose([images, labels]);
  optimizer.dispose();
  model.dispose();
  return (batch * 1000) / median(times);
}

/** CPU milliseconds each thread of this process has run (Linux: /proc/self/task/TID/schedstat), by thread id. */
function threadCpu() {
  if (!existsSync('/proc/self/task')) return undefined;
  const times = new Map();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      times.set(tid, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6);
    } catch {} // the thread ended meanwhile
  }
  return times;
}

/**
 * Per step, over `count` steps between two threadCpu() readings: the `workers` threads that ran most (the
 * worker threads), every other thread but the main one (V8's helper threads: optimising compiler, GC), main.
 */
function cpuPerStep(before, after, workers, count) {
  if (!before || !after) return undefined;
  const main = String(process.pid);
  const used = [...after].map(([tid, ms]) => ({ tid, ms: (ms - (before.get(tid) ?? 0)) / count }));
  const others = used.filter((t) => t.tid !== main).sort((a, b) => b.ms - a.ms);
  return {
    workers: others.slice(0, workers).map((t) => t.ms),
    helpers: others.slice(workers).reduce((sum, t) => sum + t.ms, 0),
    main: used.find((t) => t.tid === main)?.ms ?? 0,
  };
}

/** Times `count` steps: img/s from the median step, and where the median step's time went. */
async function timeSteps(trainer, images, labels, count) {
  const walls = [];
  const timings = [];
  const before = threadCpu();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await trainer.step(images, labels, batch);
    walls.push(performance.now() - start);
    timings.push(trainer.lastStepTiming());
  }
  const cpu = cpuPerStep(before, threadCpu(), trainer.workers, count);
  const wall = median(walls);
  const detail =
    `wall ${wall.toFixed(1)} ms, slowest worker computing ${median(timings.map((t) => Math.max(...t.computeMs))).toFixed(1)}` +
    `, the others waiting up to ${median(timings.map((t) => Math.max(...t.waitMs))).toFixed(1)}` +
    `, update ${median(timings.map((t) => Math.max(...t.applyMs))).toFixed(1)}` +
    (cpu
      ? `; CPU per step: workers ${cpu.workers.map((ms) => ms.toFixed(1)).join(' + ')}, ` +
        `V8 helper threads ${cpu.helpers.toFixed(1)}, main ${cpu.main.toFixed(1)} ms`
      : '');
  return { imagesPerSecond: (batch * 1000) / wall, detail };
}

/**
 * The same steps on the data-parallel trainer (wasm workers): img/s over steps 5-9 of the fresh trainer and,
 * with `warm`, over as many steps again after `warm` more.
 */
async function parallel(
  size,
  { modelSpec = 'seed-cnn', height = size, count = workers, learningRate = 1e-4, warm = 0 } = {},
) {
  const trainer = await createParallelTrainer({
    modelSpec,
    inputShape: [height, size, 3],
    classes,
    workers: count,
    backend: 'wasm',
    learningRate,
    seed: 1,
  });
  try {
    const images = random(batch * height * size * 3, 1);
    const labels = random(batch * classes, 2).map((v) => (v < 0.5 ? 1 : 0));
    // Warm-up: wasm heap growth, kernel set-up and the JIT of the JavaScript kernels in every worker.
    for (let i = 0; i < 4; i++) await trainer.step(images, labels, batch);
    const fresh = await timeSteps(trainer, images, labels, steps);
    if (warm === 0) return { fresh };
    for (let i = 0; i < warm; i++) await trainer.step(images, labels, batch);
    return { fresh, warm: await timeSteps(trainer, images, labels, steps) };
  } finally {
    await trainer.dispose();
  }
}

let torchVersion = '';
async function checkPython() {
  for (const anchor of [values.anchor, values['lite-anchor']]) {
    if (!existsSync(anchor)) return `${anchor} not found (the anchors live in ../shared/anchors)`;
  }
  try {
    const { stdout } = await run(values.python, ['-c', 'import torch, PIL, numpy; print(torch.__version__)']);
    torchVersion = stdout.trim();
    return undefined;
  } catch {
    return (
      `${values.python} cannot import torch, PIL and numpy. Install them with:\n` +
      '  apt-get install -y python3-torch python3-pil python3-numpy'
    );
  }
}

async function torch(size) {
  const { stdout } = await run(
    values.python,
    [
      values.anchor,
      'throughput',
      '--width',
      String(size),
      '--height',
      String(size),
      '--num-labels',
      String(classes),
      '--threads',
      values.threads,
      '--batch-size',
      String(batch),
    ],
    { maxBuffer: 1 << 20 },
  );
  const line = stdout.trim().split('\n').at(-1);
  return JSON.parse(line).img_per_s;
}

/** torch_lite_recipe.py throughput: model-lite's network in PyTorch (it uses every core: os.cpu_count() threads). */
async function torchLite({ width, height }) {
  const { stdout } = await run(
    values.python,
    [
      values['lite-anchor'],
      'throughput',
      '--width',
      String(width),
      '--height',
      String(height),
      '--classes',
      String(classes),
    ],
    { maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)).img_per_s;
}

const probes = await probeBackends();
const requested = values.backends ? values.backends.split(',') : undefined;
const backends = probes
  .filter((p) => p.available && (!requested || requested.includes(p.name)))
  .map((p) => p.name)
  .filter((name, i, all) => all.indexOf(name) === i);
for (const probe of probes) {
  if (!probe.available) console.log(`skipped ${probe.package}: ${probe.reason?.split('\n')[0]}`);
}
const pythonProblem = await checkPython();
if (pythonProblem) console.log(`PyTorch anchor skipped: ${pythonProblem}`);

const seedRows = [
  ...backends.map((b) => ({ key: b, label: `${b}, 1 thread (in-process)` })),
  { key: 'parallel', label: `data-parallel: ${workers} wasm workers` },
];
const liteRows = liteWorkers.flatMap((n) => {
  const label = `lite, data-parallel: ${n} wasm worker${n === 1 ? '' : 's'}`;
  return [
    { key: `lite-${n}`, label: `${label}, steps 5-${4 + steps}` },
    ...(liteWarm > 0
      ? [{ key: `lite-${n}-warm`, label: `${label}, after ${4 + steps + liteWarm} steps` }]
      : []),
  ];
});
const results = new Map(); // `${key}@${WxH}` -> img/s per repeat
const record = (key, size, value, detail) => {
  const id = `${key}@${size}`;
  results.set(id, [...(results.get(id) ?? []), value]);
  console.log(`  ${key} ${size}: ${value.toFixed(1)} img/s${detail ? ` (${detail})` : ''}`);
};
const loads = [os.loadavg()[0]];
const started = new Date();
for (let r = 0; r < Number(values.repeat); r++) {
  for (const size of sizes) {
    const key = `${size}x${size}`;
    console.log(
      `run ${r + 1}, seed-cnn ${key}, batch ${batch}, ${classes} classes (load ${os.loadavg()[0].toFixed(1)}):`,
    );
    if (!pythonProblem) record('torch', key, await torch(size));
    for (const backend of backends) record(backend, key, await inProcess(backend, size));
    record('parallel', key, (await parallel(size)).fresh.imagesPerSecond);
  }
  for (const { width, height, key } of liteSizes) {
    console.log(
      `run ${r + 1}, lite ${key}, batch ${batch}, ${classes} classes (load ${os.loadavg()[0].toFixed(1)}):`,
    );
    if (!pythonProblem) record('torch-lite', key, await torchLite({ width, height }));
    for (const n of liteWorkers) {
      const run = { modelSpec: liteModel, height, count: n, learningRate: 3e-3, warm: liteWarm };
      const { fresh, warm } = await parallel(width, run);
      record(`lite-${n}`, key, fresh.imagesPerSecond, fresh.detail);
      if (warm) record(`lite-${n}-warm`, key, warm.imagesPerSecond, warm.detail);
    }
  }
  loads.push(os.loadavg()[0]);
}

const cell = (key, size) => {
  const list = results.get(`${key}@${size}`);
  return list ? median(list) : undefined;
};
const format = (value) => (value === undefined ? 'n/a' : value.toFixed(1));
const repeats = Number(values.repeat);

/** One table: the anchor's row, then ours with the ratio to the anchor of the same size. */
function table(title, keys, anchor, anchorLabel, rows) {
  if (keys.length === 0) return;
  console.log(
    `\n${title} training throughput, batch ${batch}, img/s (median of ${steps} steps` +
      `${repeats > 1 ? `, median of ${repeats} runs` : ''}); ${os.cpus()[0]?.model ?? 'CPU'}, ` +
      `${os.availableParallelism()} cores, Node ${process.versions.node}, ${started.toISOString().slice(0, 10)}, ` +
      `load average ${loads.map((l) => l.toFixed(1)).join(' -> ')}\n`,
  );
  const header = ['mode', ...keys.flatMap((k) => [k, 'vs PyTorch'])];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    `| ${anchorLabel} | ${keys.map((k) => `${format(cell(anchor, k))} | 1.00x`).join(' | ')} |`,
    ...rows.map(
      (row) =>
        `| ${row.label} | ${keys
          .map((k) => {
            const ours = cell(row.key, k);
            const theirs = cell(anchor, k);
            return `${format(ours)} | ${ours !== undefined && theirs ? `${(ours / theirs).toFixed(2)}x` : 'n/a'}`;
          })
          .join(' | ')} |`,
    ),
  ];
  console.log(lines.join('\n'));
  if (!pythonProblem && repeats > 1) {
    // Anchor and ours run one after the other: per-run ratios show how much the machine's load moved them.
    for (const row of rows) {
      const ratios = keys.map((k) => {
        const ours = results.get(`${row.key}@${k}`) ?? [];
        const theirs = results.get(`${anchor}@${k}`) ?? [];
        return `${k}: ${ours.map((v, i) => `${(v / theirs[i]).toFixed(2)}x`).join(', ')}`;
      });
      console.log(`per-run ratios, ${row.label}: ${ratios.join('; ')}`);
    }
  }
}

table(
  'seed-cnn',
  sizes.map((s) => `${s}x${s}`),
  'torch',
  `PyTorch ${torchVersion} CPU, ${values.threads} threads, torch_seed_recipe.py (anchor)`,
  seedRows,
);
table(
  'lite',
  liteSizes.map((s) => s.key),
  'torch-lite',
  `PyTorch ${torchVersion} CPU, ${os.availableParallelism()} threads, torch_lite_recipe.py (anchor)`,
  liteRows,
);
