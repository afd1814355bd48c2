import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDataset, splitDataset } from '@litter/dataset';
import { initBackend, resolveModel } from '@litter/model';
import { it } from 'vitest';
import { predictDataset } from './evaluate.js';
import { boxIoU } from './metrics.js';
import { train } from './train.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/blender-three-wide', import.meta.url));
it('scratch', async () => {
  await initBackend({ backend: 'wasm' });
  const factory = await resolveModel(process.env.M ?? 'model-lite', { importModule: (s) => import(s) });
  const t0 = performance.now();
  const dataset = await loadDataset(FIXTURE, { width: 32, height: 24, cache: false });
  const s = splitDataset(dataset, { validationScenes: ['2'] });
  const meanIoU = (model: any) => {
    const p = predictDataset(model, dataset, s.validation);
    let sum = 0, n = 0;
    for (let k = 0; k < p.labels.length; k++) if (p.boxes!.mask[k]! > 0.5) { sum += boxIoU(p.boxes!.predicted.subarray(k*4,k*4+4), p.boxes!.truth.subarray(k*4,k*4+4)); n++; }
    return sum / n;
  };
  const untrained = factory.create({ inputShape: [24, 32, 3], classes: 3, boxes: true, seed: 0 });
  console.log('untrained', meanIoU(untrained));
  untrained.dispose();
  const t1 = performance.now();
  const steps = Number(process.env.S ?? 60);
  const result = await train({ dataset, model: factory, runDir: await mkdtemp(join(tmpdir(), 'sc-')), split: { train: s.train, validation: s.validation }, steps, batchSize: 16, learningRate: Number(process.env.LR ?? 3e-3), boxes: true, validateEvery: 1000, logEvery: 1000, seed: 0 , report: process.env.R === '1'});
  const t2 = performance.now();
  console.log('trained', meanIoU(result.model), 'train ms', t2 - t1, 'load', t1 - t0, result.reportPath, result.reportError);
  // constant baseline: mean train box per class
  const C = 3; const mean = new Float64Array(C * 4); const cnt = new Float64Array(C);
  for (const i of s.train) for (let c = 0; c < C; c++) if (dataset.boxMask[i*C+c]! > 0.5) { cnt[c]++; for (let j = 0; j < 4; j++) mean[c*4+j] += dataset.boxes[(i*C+c)*4+j]!; }
  let sum = 0, n = 0;
  for (const i of s.validation) for (let c = 0; c < C; c++) if (dataset.boxMask[i*C+c]! > 0.5) { sum += boxIoU([0,1,2,3].map(j => mean[c*4+j]! / cnt[c]!), dataset.boxes.subarray((i*C+c)*4, (i*C+c)*4+4)); n++; }
  console.log('mean box baseline', sum / n);
  console.log(result.evaluation?.fixed.box);
}, 300000);
