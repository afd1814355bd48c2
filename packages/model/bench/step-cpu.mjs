// CPU time of one thread's training step, as a data-parallel worker computes it (forward, backward, every
// gradient read out; the worker's fused Adam is not in it), for comparing kernels on a shared machine: CPU time moves far less with other processes'
// load than wall time. Not a test. Run after `pnpm --filter @litter/model-lite... build`:
//   node packages/model/bench/step-cpu.mjs [--model ./packages/model-lite/dist/index.js] [--size 80 --height 60]
//     [--batch 32] [--steps 12] [--warmup 3] [--classes 5] [--backend wasm] [--boxes]
// --boxes: the model with its box head (factory.boxHead), trained on its loss with one random box per visible class.
// Prints one JSON line: CPU ms per step (min and median over the steps), wall ms (min), load average.
// To compare two builds, run each build's copy of this script alternately from its own tree.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: './packages/model-lite/dist/index.js' },
    size: { type: 'string' },
    height: { type: 'string' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '12' },
    warmup: { type: 'string', default: '3' },
    classes: { type: 'string', default: '5' },
    boxes: { type: 'boolean', default: false },
  },
});
// Default 80x60; --size alone is a square.
const width = Number(values.size ?? 80);
const height = Number(values.height ?? values.size ?? 60);
const batch = Number(values.batch);
const classes = Number(values.classes);

await initBackend({ backend: values.backend });
const spec = values.model.startsWith('.') ? path.resolve(values.model) : values.model;
const factory = await resolveModel(spec);
const boxes = values.boxes;
if (boxes && !factory.boxHead) throw new Error(`${factory.name} has no box head`);
const model = factory.create({ inputShape: [height, width, 3], classes, seed: 1, boxes });
const variables = model.trainableWeights.map((w) => w.read());
const images = tf.randomUniform([batch, height, width, 3], 0, 1, 'float32', 1);
const labels = tf.cast(tf.greater(tf.randomUniform([batch, classes], 0, 1, 'float32', 2), 0.5), 'float32');
const corner = tf.randomUniform([batch, classes, 2], 0, 0.6, 'float32', 3);
const extent = tf.randomUniform([batch, classes, 2], 0.02, 0.4, 'float32', 4);
const targets = {
  labels,
  boxes: tf.reshape(tf.concat([corner, tf.add(corner, extent)], 2), [batch, classes * 4]),
  mask: labels,
};
const loss = () =>
  boxes
    ? factory.boxHead.loss(model.apply(images, { training: true }), targets)
    : tf.losses.sigmoidCrossEntropy(labels, model.apply(images, { training: true }));
function step() {
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, variables);
    for (const v of variables) grads[v.name].dataSync();
    value.dataSync();
  });
}
for (let i = 0; i < Number(values.warmup); i++) step();
const tensors = tf.memory().numTensors;
const cpu = [];
const wall = [];
for (let i = 0; i < Number(values.steps); i++) {
  const start = process.cpuUsage();
  const t0 = performance.now();
  step();
  wall.push(performance.now() - t0);
  const used = process.cpuUsage(start);
  cpu.push((used.user + used.system) / 1000);
}
if (tf.memory().numTensors !== tensors)
  throw new Error(`tensors leaked: ${tensors} -> ${tf.memory().numTensors}`);
const sorted = [...cpu].sort((a, b) => a - b);
console.log(
  JSON.stringify({
    model: factory.name,
    size: `${width}x${height}`,
    batch,
    boxes,
    cpuMinMs: Number(sorted[0].toFixed(1)),
    cpuMedianMs: Number(sorted[sorted.length >> 1].toFixed(1)),
    wallMinMs: Number(Math.min(...wall).toFixed(1)),
    load: Number(os.loadavg()[0].toFixed(1)),
  }),
);
