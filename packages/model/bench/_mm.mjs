import { initBackend } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
await initBackend({ backend: 'wasm' });
function time(name, f, n = 3) {
  f().dispose();
  const t = performance.now();
  for (let i = 0; i < n; i++) { const r = f(); r.dataSync(); r.dispose(); }
  console.log(name, ((performance.now() - t) / n).toFixed(1), 'ms');
}
const x = tf.randomUniform([32, 16384]);
const dy = tf.randomUniform([32, 384]);
const w = tf.randomUniform([16384, 384]);
time('fwd x.w', () => tf.matMul(x, w));
time('dW = x^T dy (transposeA)', () => tf.matMul(x, dy, true, false));
time('dW = transpose(x) dy', () => tf.tidy(() => tf.matMul(tf.transpose(x), dy)));
time('dW^T = dy^T x (transposeA) then T', () => tf.tidy(() => tf.transpose(tf.matMul(dy, x, true, false))));
time('dW^T = T(dy) x then T', () => tf.tidy(() => tf.transpose(tf.matMul(tf.transpose(dy), x))));
time('dx = dy w^T (transposeB)', () => tf.matMul(dy, w, false, true));
time('dx = dy transpose(w)', () => tf.tidy(() => tf.matMul(dy, tf.transpose(w))));
time('dx^T = w dy^T', () => tf.tidy(() => tf.transpose(tf.matMul(w, dy, false, true))));
time('dx^T = w T(dy)', () => tf.tidy(() => tf.transpose(tf.matMul(w, tf.transpose(dy)))));
time('transpose w', () => tf.transpose(w));
time('transpose x', () => tf.transpose(x));
