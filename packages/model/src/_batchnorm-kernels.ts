import type * as tf from '@tensorflow/tfjs-core';
import type { DataId, KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { ModelError } from './errors.js';

/*
 * Batch normalisation + ReLU in training, as two kernels of the wasm and cpu backends (JavaScript over the
 * backends' own arrays). tfjs composes the same from some ten kernels per layer forward (Mean, Sub, Square,
 * Mean, FusedBatchNorm, Relu ...) and some twenty backward (Sum, Multiply, Tile, Reshape ...), each a pass over
 * the activations and a node of the gradient tape; these make two passes each way.
 *
 * Channels last: `z` is `[..., C]`, statistics per channel over every other axis (M values each).
 *
 * - forward: mean, biased variance (as tfjs-layers' BatchNormalization uses in training), `invStd =
 *   1 / sqrt(variance + epsilon)`, `y = max(0, (z - mean) * invStd * gamma + beta)`. Sums in doubles.
 * - backward, with `g = dy` where `y > 0` (recomputed from z) and 0 elsewhere (ReLU's gradient, as tfjs's `step`): `dBeta = sum g`,
 *   `dGamma = sum g * xhat` with `xhat = (z - mean) * invStd`, and
 *   `dz = gamma * invStd * (g - dBeta / M - xhat * dGamma / M)`.
 */

/** Kernel names (registered for `wasm` and `cpu` by registerTrainingKernels). */
export const BATCH_NORM_RELU = 'LitterBatchNormRelu';
export const BATCH_NORM_RELU_GRAD = 'LitterBatchNormReluGrad';

/** Attributes of both kernels. */
export interface BatchNormReluAttrs {
  epsilon: number;
}

/**
 * Pixels per block of the channel-by-channel loops: a block of every array read stays in L1, and each channel's
 * sums and factors stay in registers (about twice as fast as a channel-inner loop over per-channel arrays).
 */
const BLOCK = 64;

/** `y = max(0, z * scale + shift)` per channel, from the rounded statistics both directions use. */
function scaleAndShift(
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
): { scale: Float64Array; shift: Float64Array } {
  const channels = gamma.length;
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c]! * invStd[c]!;
    shift[c] = beta[c]! - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

/** `y, mean, variance, invStd` from `z, gamma, beta` (see the file's comment). */
export function batchNormReluForward(
  z: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
  out: { y: Float32Array; mean: Float32Array; variance: Float32Array; invStd: Float32Array },
): void {
  const channels = gamma.length;
  const pixels = z.length / channels;
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  for (let p0 = 0; p0 < pixels; p0 += BLOCK) {
    const end = Math.min(pixels, p0 + BLOCK) * channels;
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      let square = 0;
      for (let i = p0 * channels + c; i < end; i += channels) {
        const value = z[i]!;
        sum += value;
        square += value * value;
      }
      sums[c] = sums[c]! + sum;
      squares[c] = squares[c]! + square;
    }
  }
  for (let c = 0; c < channels; c++) {
    const mean = sums[c]! / pixels;
    const variance = Math.max(0, squares[c]! / pixels - mean * mean);
    out.mean[c] = mean;
    out.variance[c] = variance;
    out.invStd[c] = 1 / Math.sqrt(variance + epsilon);
  }
  const { scale, shift } = scaleAndShift(gamma, beta, out.mean, out.invStd);
  const { y } = out;
  for (let p0 = 0; p0 < pixels; p0 += BLOCK) {
    const end = Math.min(pixels, p0 + BLOCK) * channels;
    for (let c = 0; c < channels; c++) {
      const s = scale[c]!;
      const h = shift[c]!;
      for (let i = p0 * channels + c; i < end; i += channels) {
        const value = z[i]! * s + h;
        // max(0, value) without a branch (relu signs are unpredictable) and without Math.max (slow in V8).
        y[i] = (value + Math.abs(value)) * 0.5;
      }
    }
  }
}

/**
 * `dz, dGamma, dBeta` from `dy` and the forward's `z, gamma, beta, mean, invStd` (see the file's comment). ReLU's
 * mask is recomputed from `z` exactly as the forward computed `y` (one array fewer to read), and applied by a
 * multiply rather than a branch.
 */
export function batchNormReluBackward(
  dy: Float32Array,
  z: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  out: { dz: Float32Array; dGamma: Float32Array; dBeta: Float32Array },
): void {
  const channels = gamma.length;
  const pixels = z.length / channels;
  const { scale, shift } = scaleAndShift(gamma, beta, mean, invStd);
  const gSums = new Float64Array(channels);
  const gzSums = new Float64Array(channels);
  for (let p0 = 0; p0 < pixels; p0 += BLOCK) {
    const end = Math.min(pixels, p0 + BLOCK) * channels;
    for (let c = 0; c < channels; c++) {
      const s = scale[c]!;
      const h = shift[c]!;
      let gSum = 0;
      let gzSum = 0;
      for (let i = p0 * channels + c; i < end; i += channels) {
        const zi = z[i]!;
        const g = dy[i]! * +(zi * s + h > 0);
        gSum += g;
        gzSum += g * zi;
      }
      gSums[c] = gSums[c]! + gSum;
      gzSums[c] = gzSums[c]! + gzSum;
    }
  }
  // dz = a g + b z + k per channel: a = gamma invStd, b = -a invStd dGamma / M, k = -a dBeta / M - b mean.
  const a = new Float64Array(channels);
  const b = new Float64Array(channels);
  const k = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = mean[c]!;
    const invS = invStd[c]!;
    const dBeta = gSums[c]!;
    const dGamma = (gzSums[c]! - m * dBeta) * invS;
    out.dBeta[c] = dBeta;
    out.dGamma[c] = dGamma;
    const ac = gamma[c]! * invS;
    const bc = (-ac * invS * dGamma) / pixels;
    a[c] = ac;
    b[c] = bc;
    k[c] = (-ac * dBeta) / pixels - bc * m;
  }
  const { dz } = out;
  for (let p0 = 0; p0 < pixels; p0 += BLOCK) {
    const end = Math.min(pixels, p0 + BLOCK) * channels;
    for (let c = 0; c < channels; c++) {
      const s = scale[c]!;
      const h = shift[c]!;
      const ac = a[c]!;
      const bc = b[c]!;
      const kc = k[c]!;
      for (let i = p0 * channels + c; i < end; i += channels) {
        const zi = z[i]!;
        const g = dy[i]! * +(zi * s + h > 0);
        dz[i] = ac * g + bc * zi + kc;
      }
    }
  }
}

/** How a backend's arrays are reached: wasm's heap views, cpu's own arrays. */
interface ArrayAccess {
  values(info: TensorInfo): Float32Array;
  /** A new float32 output of `shape`; `values` of it may be written until the kernel returns. */
  output(shape: number[]): TensorInfo;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
}
interface CpuBackendLike {
  data: { get(dataId: DataId): { values?: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): TensorInfo;
}

function access(backendName: 'wasm' | 'cpu', backend: KernelBackend): ArrayAccess {
  if (backendName === 'wasm') {
    const wasm = backend as unknown as WasmBackendLike;
    return {
      values: (info) => wasm.typedArrayFromHeap(info) as Float32Array,
      output: (shape) => wasm.makeOutput(shape, 'float32'),
    };
  }
  const cpu = backend as unknown as CpuBackendLike;
  return {
    values: (info) => cpu.data.get(info.dataId).values as Float32Array,
    output: (shape) =>
      cpu.makeTensorInfo(
        shape,
        'float32',
        new Float32Array(shape.reduce((p, q) => p * q, 1)) as unknown as tf.backend_util.BackendValues,
      ),
  };
}

function assertFloat32(infos: TensorInfo[], kernel: string): void {
  for (const info of infos) {
    if (info.dtype !== 'float32')
      throw new ModelError('unsupported', `@litter/model: ${kernel} takes float32, got ${info.dtype}`);
  }
}

function forwardKernel(backendName: 'wasm' | 'cpu'): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    assertFloat32([x, gamma, beta], BATCH_NORM_RELU);
    const { epsilon } = attrs as unknown as BatchNormReluAttrs;
    const arrays = access(backendName, backend as KernelBackend);
    const channels = gamma.shape[0]!;
    // Allocate every output before taking views (allocation can move wasm's heap).
    const outputs = [x.shape.slice(), [channels], [channels], [channels]].map((shape) =>
      arrays.output(shape),
    );
    const [y, mean, variance, invStd] = outputs.map((info) => arrays.values(info)) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    batchNormReluForward(arrays.values(x), arrays.values(gamma), arrays.values(beta), epsilon, {
      y,
      mean,
      variance,
      invStd,
    });
    return outputs;
  };
}

function backwardKernel(backendName: 'wasm' | 'cpu'): KernelFunc {
  return ({ inputs, backend }) => {
    const { dy, x, gamma, beta, mean, invStd } = inputs as Record<
      'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'invStd',
      TensorInfo
    >;
    assertFloat32([dy, x, gamma, beta, mean, invStd], BATCH_NORM_RELU_GRAD);
    const arrays = access(backendName, backend as KernelBackend);
    const channels = gamma.shape[0]!;
    const outputs = [x.shape.slice(), [channels], [channels]].map((shape) => arrays.output(shape));
    const [dz, dGamma, dBeta] = outputs.map((info) => arrays.values(info)) as [
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    batchNormReluBackward(
      arrays.values(dy),
      arrays.values(x),
      arrays.values(gamma),
      arrays.values(beta),
      arrays.values(mean),
      arrays.values(invStd),
      { dz, dGamma, dBeta },
    );
    return outputs;
  };
}

/** The two kernels' configs for a backend. */
export function batchNormReluKernels(backendName: 'wasm' | 'cpu'): tf.KernelConfig[] {
  return [
    { kernelName: BATCH_NORM_RELU, backendName, kernelFunc: forwardKernel(backendName) },
    { kernelName: BATCH_NORM_RELU_GRAD, backendName, kernelFunc: backwardKernel(backendName) },
  ];
}
