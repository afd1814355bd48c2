import { initBackend, restoreOriginalKernels, registerTrainingKernels } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
await initBackend({ backend: 'wasm' });
function time(name, f, n = 8) {
  const ts = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); const r = f(); r.dispose(); ts.push(performance.now() - t); }
  console.log(name, 'min', Math.min(...ts).toFixed(1), 'ms', 'med', ts.sort((a,b)=>a-b)[n>>1].toFixed(1));
}
const x = tf.relu(tf.randomNormal([32, 32, 32, 64]));
const x1 = tf.relu(tf.randomNormal([32, 64, 64, 64]));
const y = tf.localResponseNormalization(x, 4, 1, 0.001/9, 0.75);
const dy = tf.randomNormal([32, 32, 32, 64]);
const pool = tf.maxPool(x1, 3, 2, 'same');
const lrnGrad = () => tf.engine().runKernel('LRNGrad', {x, y, dy}, {depthRadius: 4, bias: 1, alpha: 0.001/9, beta: 0.75});
const mpGrad = () => tf.engine().runKernel('MaxPoolGrad', {dy, input: x1, output: pool}, {filterSize: 3, strides: 2, pad: 'same'});
time('LRN js', () => tf.localResponseNormalization(x, 4, 1, 0.001/9, 0.75));
time('LRNGrad js', lrnGrad);
time('MaxPoolGrad js', mpGrad);
time('mul', () => tf.mul(x1, x1));
time('step', () => tf.step(x1));
time('relu', () => tf.relu(x1));
restoreOriginalKernels('wasm', ['LRN','LRNGrad','MaxPoolGrad']);
time('LRN wasm', () => tf.localResponseNormalization(x, 4, 1, 0.001/9, 0.75));
time('LRNGrad wasm', lrnGrad);
time('MaxPoolGrad wasm', mpGrad, 3);
