import type * as tf from '@tensorflow/tfjs-core';
import type { DataId, KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { type BatchNormSimd, batchNormSimd } from './_batchnorm-simd.js';
import { wasmMemory } from './_wasm-asm.js';
import { ModelError } from './errors.js';

/*
 * Batch normalisation + ReLU in training, as two kernels of the wasm and cpu backends (JavaScript over the
 * backends' own arrays; on wasm, with channels a multiple of 4, the passes run in WebAssembly SIMD on the heap,
 * _batchnorm-simd.ts). tfjs composes the same from some ten kernels per layer forward (Mean, Sub, Square,
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

/** Pixels per float32 partial sum of the SIMD statistics (then added in doubles). */
const SIMD_BLOCK = 64;

/** The SIMD passes, a float32 view of the whole wasm heap, and a tensor's byte offset in it. */
interface SimdCall {
  simd: BatchNormSimd;
  heap: Float32Array;
  pointer(info: TensorInfo): number;
}

/**
 * Block by block, `acc[0..2C)` partial sums from `run(pixel, count)` (which adds into the zeroed acc at byte
 * `accAt`), added up in doubles.
 */
function blockSums(
  heap: Float32Array,
  accAt: number,
  channels: number,
  pixels: number,
  run: (pixel: number, count: number) => void,
): Float64Array {
  const totals = new Float64Array(2 * channels);
  const acc = accAt / 4;
  for (let p0 = 0; p0 < pixels; p0 += SIMD_BLOCK) {
    heap.fill(0, acc, acc + 2 * channels);
    run(p0, Math.min(SIMD_BLOCK, pixels - p0));
    for (let c = 0; c < 2 * channels; c++) totals[c] = totals[c]! + heap[acc + c]!;
  }
  return totals;
}

/** The forward of {@link batchNormReluForward} in SIMD; at byte `scratchAt`, room for 3C floats. */
function simdForward(
  call: SimdCall,
  z: TensorInfo,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
  scratchAt: number,
  out: { y: TensorInfo; mean: Float32Array; variance: Float32Array; invStd: Float32Array },
): void {
  const { simd, heap } = call;
  const channels = gamma.length;
  const rowBytes = channels * 4;
  const zAt = call.pointer(z);
  const pixels = (z.shape.reduce((a, b) => a * b, 1) as number) / channels;
  // Statistics about the first pixel's values (shift), so float32 sums do not cancel.
  const shiftAt = scratchAt;
  const accAt = scratchAt + rowBytes;
  heap.copyWithin(shiftAt / 4, zAt / 4, zAt / 4 + channels);
  const totals = blockSums(heap, accAt, channels, pixels, (p0, count) =>
    simd.stats(zAt + p0 * rowBytes, count, rowBytes, shiftAt, accAt),
  );
  for (let c = 0; c < channels; c++) {
    const offset = totals[c]! / pixels;
    out.mean[c] = heap[shiftAt / 4 + c]! + offset;
    out.variance[c] = Math.max(0, totals[channels + c]! / pixels - offset * offset);
    out.invStd[c] = 1 / Math.sqrt(out.variance[c]! + epsilon);
  }
  const params = scratchAt / 4; // [m | s | beta]
  for (let c = 0; c < channels; c++) {
    heap[params + c] = out.mean[c]!;
    heap[params + channels + c] = gamma[c]! * out.invStd[c]!;
    heap[params + 2 * channels + c] = beta[c]!;
  }
  simd.forward(zAt, call.pointer(out.y), pixels, rowBytes, scratchAt);
}

/** The backward of {@link batchNormReluBackward} in SIMD; at byte `scratchAt`, room for 8C floats. */
function simdBackward(
  call: SimdCall,
  dy: TensorInfo,
  z: TensorInfo,
  dz: TensorInfo,
  values: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; invStd: Float32Array },
  scratchAt: number,
  out: { dGamma: Float32Array; dBeta: Float32Array },
): void {
  const { simd, heap } = call;
  const { gamma, beta, mean, invStd } = values;
  const channels = gamma.length;
  const rowBytes = channels * 4;
  const pixels = (z.shape.reduce((a, b) => a * b, 1) as number) / channels;
  const params = scratchAt / 4; // [m | s | beta | a | b | k], the forward's m, s, beta
  for (let c = 0; c < channels; c++) {
    heap[params + c] = mean[c]!;
    heap[params + channels + c] = gamma[c]! * invStd[c]!;
    heap[params + 2 * channels + c] = beta[c]!;
  }
  const accAt = scratchAt + 6 * rowBytes;
  const dyAt = call.pointer(dy);
  const zAt = call.pointer(z);
  const totals = blockSums(heap, accAt, channels, pixels, (p0, count) =>
    simd.backwardSums(dyAt + p0 * rowBytes, zAt + p0 * rowBytes, count, rowBytes, scratchAt, accAt),
  );
  // dz = a g + b (z - m) + k: a = gamma invStd, b = -a invStd dGamma / M, k = -a dBeta / M.
  for (let c = 0; c < channels; c++) {
    const invS = invStd[c]!;
    const dBeta = totals[c]!;
    const dGamma = totals[channels + c]! * invS;
    out.dBeta[c] = dBeta;
    out.dGamma[c] = dGamma;
    const a = gamma[c]! * invS;
    heap[params + 3 * channels + c] = a;
    heap[params + 4 * channels + c] = (-a * invS * dGamma) / pixels;
    heap[params + 5 * channels + c] = (-a * dBeta) / pixels;
  }
  simd.backward(dyAt, zAt, call.pointer(dz), pixels, rowBytes, scratchAt);
}

/** The SIMD passes for this kernel call, where the backend is wasm and the channels a multiple of 4. */
function simdFor(
  backendName: 'wasm' | 'cpu',
  backend: KernelBackend,
  channels: number,
): BatchNormSimd | undefined {
  if (backendName !== 'wasm' || channels % 4 !== 0 || channels === 0) return undefined;
  return batchNormSimd(wasmMemory(backend));
}

/** Whether the wasm backend's batch-norm kernels take the SIMD path for this many channels. */
export function usesBatchNormSimd(backend: KernelBackend, channels: number): boolean {
  return simdFor('wasm', backend, channels) !== undefined;
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

/** Heap view and byte offsets for the SIMD passes (take it after allocating: allocation can move the heap). */
function simdCall(simd: BatchNormSimd, arrays: ArrayAccess, any: TensorInfo): SimdCall {
  return {
    simd,
    heap: new Float32Array(arrays.values(any).buffer),
    pointer: (info) => arrays.values(info).byteOffset,
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
    const simd = simdFor(backendName, backend as KernelBackend, channels);
    // Allocate every output before taking views (allocation can move wasm's heap).
    const outputs = [x.shape.slice(), [channels], [channels], [channels]].map((shape) =>
      arrays.output(shape),
    );
    if (simd !== undefined) {
      const scratch = arrays.output([3 * channels]);
      try {
        const [, mean, variance, invStd] = outputs.map((info) => arrays.values(info)) as Float32Array[];
        const call = simdCall(simd, arrays, scratch);
        simdForward(call, x, arrays.values(gamma), arrays.values(beta), epsilon, call.pointer(scratch), {
          y: outputs[0]!,
          mean: mean!,
          variance: variance!,
          invStd: invStd!,
        });
      } finally {
        (backend as KernelBackend).disposeData(scratch.dataId);
      }
      return outputs;
    }
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
    const simd = simdFor(backendName, backend as KernelBackend, channels);
    const outputs = [x.shape.slice(), [channels], [channels]].map((shape) => arrays.output(shape));
    if (simd !== undefined) {
      const scratch = arrays.output([8 * channels]);
      try {
        const [, dGamma, dBeta] = outputs.map((info) => arrays.values(info)) as Float32Array[];
        const call = simdCall(simd, arrays, scratch);
        const values = {
          gamma: arrays.values(gamma),
          beta: arrays.values(beta),
          mean: arrays.values(mean),
          invStd: arrays.values(invStd),
        };
        simdBackward(call, dy, x, outputs[0]!, values, call.pointer(scratch), {
          dGamma: dGamma!,
          dBeta: dBeta!,
        });
      } finally {
        (backend as KernelBackend).disposeData(scratch.dataId);
      }
      return outputs;
    }
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
