// Per-kernel self time of training steps (forward + backward as a data-parallel worker computes them:
// tf.variableGrads and the gradients read out; `--adam` adds tfjs's Adam) on a backend. Not a test.
// Run after `pnpm --filter @litter/model build`:
//   node packages/model/bench/profile.mjs [--backend wasm] [--size 64] [--height H] [--batch 32] [--steps 3]
//     [--warmup 2] [--model seed-cnn] [--top 30] [--adam]
// Every kernel of the backend is wrapped with a timer; kernels that call other kernels (the composed
// convolution gradients) are charged only their own time. Keys are kernel name + input shapes.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'seed-cnn' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '3' },
    classes: { type: 'string', default: '3' },
    top: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '2' },
    height: { type: 'string' },
    adam: { type: 'boolean', default: false },
  },
});
const size = Number(values.size);
const batch = Number(values.batch);
const steps = Number(values.steps);
const classes = Number(values.classes);

const info = await initBackend({ backend: values.backend });
const stats = new Map();
const stack = [];
let recording = false;
for (const config of tf.getKernelsForBackend(info.name)) {
  const inner = config.kernelFunc;
  tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel({
    ...config,
    kernelFunc: (args) => {
      if (!recording) return inner(args);
      const frame = { child: 0 };
      stack.push(frame);
      const start = performance.now();
      try {
        return inner(args);
      } finally {
        const total = performance.now() - start;
        stack.pop();
        const parent = stack[stack.length - 1];
        if (parent) parent.child += total;
        const shapes = Object.values(args.inputs)
          .filter(Boolean)
          .map((t) => `[${t.shape}]`)
          .join(' ');
        const key = `${config.kernelName} ${shapes}`;
        const entry = stats.get(key) ?? { ms: 0, calls: 0 };
        entry.ms += total - frame.child;
        entry.calls += 1;
        stats.set(key, entry);
      }
    },
  });
}

const factory = await resolveModel(values.model);
const height = Number(values.height ?? size);
const model = factory.create({ inputShape: [height, size, 3], classes, seed: 1 });
const optimizer = tf.train.adam(1e-3);
const variables = model.trainableWeights.map((w) => w.read());
const images = tf.randomUniform([batch, height, size, 3], 0, 1, 'float32', 1);
const labels = tf.cast(tf.greater(tf.randomUniform([batch, classes], 0, 1, 'float32', 2), 0.5), 'float32');
const loss = () => tf.losses.sigmoidCrossEntropy(labels, model.apply(images, { training: true }));
function step() {
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, variables);
    // The worker reads every gradient out (into the shared buffer).
    for (const v of variables) grads[v.name].dataSync();
    if (values.adam) optimizer.applyGradients(grads);
    value.dataSync();
  });
}
// Warm-up: kernel set-up, optimizer slots, and JIT of the JavaScript kernels.
for (let i = 0; i < Number(values.warmup); i++) step();
// The machine may be shared: per kernel, the fastest of the measured steps (a step's wall time likewise).
const perStep = [];
const walls = [];
for (let i = 0; i < steps; i++) {
  stats.clear();
  recording = true;
  const start = performance.now();
  step();
  walls.push(performance.now() - start);
  recording = false;
  perStep.push(new Map(stats));
}
const wall = Math.min(...walls);
const rows = [...perStep[0].keys()].map((key) => ({
  key,
  ms: Math.min(...perStep.map((m) => m.get(key)?.ms ?? Number.POSITIVE_INFINITY)),
  calls: perStep[0].get(key).calls,
}));
rows.sort((a, b) => b.ms - a.ms);
const kernelTotal = rows.reduce((s, r) => s + r.ms, 0);
const byName = new Map();
for (const r of rows) {
  const name = r.key.split(' ')[0];
  byName.set(name, (byName.get(name) ?? 0) + r.ms);
}
console.log(
  `${factory.name}, ${info.description}, ${size}x${height}, batch ${batch}${values.adam ? ', with Adam' : ''}: ` +
    `fastest step ${wall.toFixed(0)} ms (${((batch * 1000) / wall).toFixed(1)} img/s; median ` +
    `${walls.sort((a, b) => a - b)[walls.length >> 1].toFixed(0)} ms), sum of fastest kernels ${kernelTotal.toFixed(0)} ms ` +
    `(${((100 * kernelTotal) / wall).toFixed(0)}% of the step); load average ${os.loadavg()[0].toFixed(1)}`,
);
console.log('\nby kernel:');
for (const [name, ms] of [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(
    `${ms.toFixed(1).padStart(9)} ms ${((100 * ms) / kernelTotal).toFixed(1).padStart(5)}%  ${name}`,
  );
console.log('\nby kernel and shapes:');
for (const r of rows.slice(0, Number(values.top)))
  console.log(`${r.ms.toFixed(1).padStart(9)} ms x${String(r.calls).padEnd(3)} ${r.key}`);
