import type * as tf from '@tensorflow/tfjs-core';
import type { DataId, KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

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
 * - backward, with `g = dy` where `y > 0` and 0 elsewhere (ReLU's gradient, as tfjs's `step`): `dBeta = sum g`,
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

/** `y, mean, variance, invStd` from `z, gamma, beta` (see the file's comment). */
export function batchNormReluForward(
  z: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
  out: { y: Float32Array; mean: Float32Array; variance: Float32Array; invStd: Float32Array },
): void {
  const channels = gamma.length;
  const count = z.length / channels;
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  for (let start = 0; start < z.length; start += channels) {
    for (let c = 0; c < channels; c++) {
      const value = z[start + c]!;
      sums[c] = sums[c]! + value;
      squares[c] = squares[c]! + value * value;
    }
  }
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const mean = sums[c]! / count;
    const variance = Math.max(0, squares[c]! / count - mean * mean);
    const invStd = 1 / Math.sqrt(variance + epsilon);
    out.mean[c] = mean;
    out.variance[c] = variance;
    out.invStd[c] = invStd;
    scale[c] = gamma[c]! * invStd;
    shift[c] = beta[c]! - mean * gamma[c]! * invStd;
  }
  const { y } = out;
  for (let start = 0; start < z.length; start += channels) {
    for (let c = 0; c < channels; c++) {
      const value = z[start + c]! * scale[c]! + shift[c]!;
      // max(0, value) without a branch (relu signs are unpredictable) and without Math.max (slow in V8).
      y[start + c] = (value + Math.abs(value)) * 0.5;
    }
  }
}

/** `dz, dGamma, dBeta` from `dy` and the forward's `z, y, gamma, mean, invStd` (see the file's comment). */
export function batchNormReluBackward(
  dy: Float32Array,
  z: Float32Array,
  y: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  invStd: Float32Array,
  out: { dz: Float32Array; dGamma: Float32Array; dBeta: Float32Array },
): void {
  const channels = gamma.length;
  const count = z.length / channels;
  const gSums = new Float64Array(channels);
  const gzSums = new Float64Array(channels);
  const { dz } = out;
  // First g = dy where y > 0, into dz (a multiply by the mask, not a branch: relu signs are unpredictable).
  for (let start = 0; start < z.length; start += channels) {
    for (let c = 0; c < channels; c++) {
      const i = start + c;
      const g = dy[i]! * +(y[i]! > 0);
      dz[i] = g;
      gSums[c] = gSums[c]! + g;
      gzSums[c] = gzSums[c]! + g * z[i]!;
    }
  }
  // dz = a g + b z + k per channel: a = gamma invStd, b = -a invStd dGamma / M, k = -a dBeta / M - b mean.
  const a = new Float32Array(channels);
  const b = new Float32Array(channels);
  const k = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = mean[c]!;
    const s = invStd[c]!;
    const dBeta = gSums[c]!;
    const dGamma = (gzSums[c]! - m * dBeta) * s;
    out.dBeta[c] = dBeta;
    out.dGamma[c] = dGamma;
    const ac = gamma[c]! * s;
    const bc = (-ac * s * dGamma) / count;
    a[c] = ac;
    b[c] = bc;
    k[c] = (-ac * dBeta) / count - bc * m;
  }
  for (let start = 0; start < z.length; start += channels) {
    for (let c = 0; c < channels; c++) {
      const i = start + c;
      dz[i] = a[c]! * dz[i]! + b[c]! * z[i]! + k[c]!;
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
      throw new Error(`@litter/model: ${kernel} takes float32, got ${info.dtype}`);
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
    const { dy, x, y, gamma, mean, invStd } = inputs as Record<
      'dy' | 'x' | 'y' | 'gamma' | 'mean' | 'invStd',
      TensorInfo
    >;
    assertFloat32([dy, x, y, gamma, mean, invStd], BATCH_NORM_RELU_GRAD);
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
      arrays.values(y),
      arrays.values(gamma),
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
