// Times seed-cnn training steps (forward + backward + Adam) on a backend: the figure behind the wasm training
// kernels. Not a test. Run after `pnpm --filter @litter/model build`:
//   node packages/model/bench/step.mjs [--backend wasm] [--size 64] [--batch 32] [--steps 5] [--model seed-cnn]
// (--model takes what resolveModel takes; for model-lite from this repo: --model ./packages/model-lite)
import { parseArgs } from 'node:util';
import { initBackend, resolveModel, restoreOriginalKernels } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    model: { type: 'string', default: 'seed-cnn' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '5' },
    classes: { type: 'string', default: '3' },
    // e.g. Conv2DBackpropInput: measure with the backend's own kernel (the 'first kernel only' anchor)
    'original-kernels': { type: 'string', default: '' },
  },
});
const size = Number(values.size);
const batch = Number(values.batch);
const steps = Number(values.steps);
const classes = Number(values.classes);

const info = await initBackend({ backend: values.backend });
const originals = values['original-kernels'].split(',').filter(Boolean);
if (originals.length > 0 && (info.name === 'wasm' || info.name === 'cpu'))
  restoreOriginalKernels(info.name, originals);
const factory = await resolveModel(values.model);
const model = factory.create({ inputShape: [size, size, 3], classes, seed: 1 });
const optimizer = tf.train.adam(1e-3);
const images = tf.randomUniform([batch, size, size, 3], 0, 1, 'float32', 1);
const labels = tf.cast(tf.greater(tf.randomUniform([batch, classes], 0, 1, 'float32', 2), 0.5), 'float32');

function step() {
  const loss = optimizer.minimize(
    () => tf.losses.sigmoidCrossEntropy(labels, model.apply(images, { training: true })),
    true,
  );
  const value = loss.dataSync()[0];
  loss.dispose();
  return value;
}

step(); // warm-up: kernel set-up, optimizer slots
const times = [];
for (let i = 0; i < steps; i++) {
  const start = performance.now();
  step();
  times.push(performance.now() - start);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(
  `${factory.name} training step, ${info.description}, ${size}x${size}, batch ${batch}: ` +
    `median ${median.toFixed(0)} ms = ${((batch * 1000) / median).toFixed(1)} img/s ` +
    `(best ${((batch * 1000) / times[0]).toFixed(1)} img/s, ${steps} steps)` +
    (originals.length > 0 ? `, with the backend's own ${originals.join(', ')}` : ''),
);
console.log(
  'anchor (issue 3, this machine): 8.9 img/s with Conv2DBackpropFilter only, ~16.6 img/s with both kernels',
);
