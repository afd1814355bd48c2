// A validation's cost in one thread (train() with workers: 1, and before session 9 with any worker count) and
// shared out among data-parallel workers (createParallelTrainer's batchNormStatistics + predict), alternating,
// on the same images and weights. Not a test.
//
//   node packages/trainer/bench/validate.mjs [DATASET] [--sizes 80x60,120x90] [--images 242] [--calibration 256]
//     [--workers 2] [--rounds 3] [--boxes]
//
// Each round times, per size: precise batch norm on --calibration training images (batches of 32), then
// predictions with test-time flips on --images images, as a validation of `litter train` does. Figures are each
// path's fastest round in ms, and the one-thread figure over the workers' one.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { recalibrateOn } from '../dist/_batchnorm.js';
import { imagesOf, predictRaw } from '../dist/_predict.js';
import { createParallelTrainer } from '../dist/parallel/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sizes: { type: 'string', default: '80x60,120x90' },
    images: { type: 'string', default: '242' },
    calibration: { type: 'string', default: '256' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    rounds: { type: 'string', default: '3' },
    boxes: { type: 'boolean', default: false },
  },
});
const dataset = positionals[0] ?? path.join(root, '../shared/fixtures/blender-five');
const liteModel = path.join(root, 'packages/model-lite/dist/index.js');
await initBackend({ backend: 'wasm' });
const factory = await resolveModel(liteModel);
const options = { batchSize: 32, testTimeFlip: true };
console.log(`dataset ${dataset}, ${values.workers} workers, lite${values.boxes ? ' with boxes' : ''}`);
for (const size of values.sizes.split(',')) {
  const [width, height] = size.split('x').map(Number);
  const data = await loadDataset(dataset, { width, height });
  const classes = data.vocabulary.length;
  const all = Array.from({ length: data.size }, (_, i) => i);
  const validation = imagesOf(data, all.slice(0, Number(values.images)));
  const calibration = imagesOf(data, all.slice(-Number(values.calibration)));
  const model = factory.create({ inputShape: [height, width, 3], classes, boxes: values.boxes, seed: 1 });
  const trainer = await createParallelTrainer({
    modelSpec: liteModel,
    inputShape: [height, width, 3],
    classes,
    boxes: values.boxes,
    workers: Number(values.workers),
    initialWeights: model.getWeights().map((w) => Float32Array.from(w.dataSync())),
  });
  const best = { one: Infinity, workers: Infinity };
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      let started = performance.now();
      recalibrateOn(model, calibration, 32);
      predictRaw(model, validation, classes, options);
      best.one = Math.min(best.one, performance.now() - started);
      started = performance.now();
      const nonTrainable = await trainer.batchNormStatistics(calibration, 32);
      await trainer.predict(validation, { ...options, nonTrainable });
      best.workers = Math.min(best.workers, performance.now() - started);
    }
  } finally {
    await trainer.dispose();
    model.dispose();
  }
  console.log(
    `${size}: one thread ${best.one.toFixed(0)} ms, ${values.workers} workers ${best.workers.toFixed(0)} ms, ` +
      `${(best.one / best.workers).toFixed(2)}x (tensors ${tf.memory().numTensors})`,
  );
}
