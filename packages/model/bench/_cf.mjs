import { initBackend } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
await initBackend({ backend: 'wasm' });
function time(name, f, n = 5) {
  const ts = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); const r = f(); r.dispose(); ts.push(performance.now() - t); }
  console.log(name.padEnd(40), 'min', Math.min(...ts).toFixed(1), 'ms', 'med', ts.sort((a,b)=>a-b)[n>>1].toFixed(1));
}
for (const [N, H, Ci, Co, k] of [[32, 64, 3, 64, 5], [32, 32, 64, 64, 5]]) {
  const x = tf.randomNormal([N, H, H, Ci]);
  const dy = tf.randomNormal([N, H, H, Co]);
  const pad = (k - 1) / 2;
  const grad = (xs, dys) => tf.tidy(() => {
    const xT = tf.transpose(xs, [3, 1, 2, 0]);
    const dyT = tf.transpose(dys, [1, 2, 0, 3]);
    return tf.conv2d(xT, dyT, 1, [[0,0],[pad,pad],[pad,pad],[0,0]]);
  });
  console.log(`N${N} H${H} Ci${Ci} Co${Co}`);
  time('ref conv2dBackpropFilter (composed)', () => tf.tidy(() => tf.grad((w) => tf.sum(tf.mul(tf.conv2d(x, w, 1, 'same'), dy)))(tf.zeros([k,k,Ci,Co]))));
  time('composed conv direct', () => grad(x, dy));
  for (const nb of [1, 2, 4, 8, 16]) {
    time(`chunked nb=${nb}`, () => tf.tidy(() => {
      let acc;
      for (let s = 0; s < N; s += nb) {
        const g = grad(tf.slice(x, [s,0,0,0],[nb,-1,-1,-1]), tf.slice(dy, [s,0,0,0],[nb,-1,-1,-1]));
        acc = acc ? tf.add(acc, g) : g;
      }
      return acc;
    }));
  }
  // im2col (JS) + matmul per chunk
  const xv = x.dataSync(); const dyv = dy.dataSync();
  for (const nb of [1, 4, 32]) {
    if (Ci * k * k * nb * H * H > 20e6) continue;
    time(`im2col nb=${nb}`, () => tf.tidy(() => {
      let acc;
      const rows = k * k * Ci; const cols = nb * H * H;
      const p = new Float32Array(rows * cols);
      for (let s = 0; s < N; s += nb) {
        p.fill(0);
        for (let kh = 0; kh < k; kh++) for (let kw = 0; kw < k; kw++) for (let ci = 0; ci < Ci; ci++) {
          const row = ((kh * k) + kw) * Ci + ci; const base = row * cols;
          for (let n = 0; n < nb; n++) for (let i = 0; i < H; i++) {
            const xi = i + kh - pad; if (xi < 0 || xi >= H) continue;
            const rowBase = base + (n * H + i) * H;
            const xBase = ((s + n) * H + xi) * H;
            for (let j = 0; j < H; j++) { const xj = j + kw - pad; if (xj >= 0 && xj < H) p[rowBase + j] = xv[(xBase + xj) * Ci + ci]; }
          }
        }
        const pt = tf.tensor2d(p, [rows, cols]);
        const d = tf.tensor2d(dyv.subarray(s * H * H * Co, (s + nb) * H * H * Co), [cols, Co]);
        const g = tf.matMul(pt, d);
        acc = acc ? tf.add(acc, g) : g;
      }
      return acc;
    }));
  }
}
