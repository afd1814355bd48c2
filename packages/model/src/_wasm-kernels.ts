import type {
  BatchMatMulAttrs,
  Conv2DAttrs,
  Conv2DBackpropFilterAttrs,
  DataId,
  KernelFunc,
  LRNAttrs,
  LRNGradAttrs,
  MaxPoolGradAttrs,
  SumAttrs,
  TensorInfo,
  TileAttrs,
} from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { type Conv2dSimd, conv2dSimd } from './_conv2d-simd.js';
import { type FilterGradSimd, filterGradSimd } from './_filter-grad-simd.js';
import { wasmMemory } from './_wasm-asm.js';

/*
 * Training kernels for tfjs-backend-wasm written in JavaScript on the wasm heap, where wasm's own are slow
 * (measured on seed-cnn at 64x64, batch 32; bench/profile.mjs):
 *
 * - MaxPoolGrad: wasm loops over every input cell and searches the windows that cover it; here each window's
 *   first maximum (the cpu backend's rule), found as the first cell equal to the pooled value, gets its
 *   gradient scattered.
 * - LRN / LRNGrad: wasm recomputes the window sum for every channel; here it is a sliding sum per pixel, and the
 *   gradient uses the window's symmetry: dx_k = dy_k s_k^-b - 2ab x_k sum_{i in W(k)} dy_i y_i / s_i.
 * - BatchMatMul with a transposed operand: wasm then leaves XNNPACK for a scalar loop (the dense layers'
 *   gradients, 30% of a step). Transposing the smaller operands here keeps every product on XNNPACK.
 * - Sum over leading axes (bias gradients): wasm transposes the reduced axes innermost first.
 * - Conv2DBackpropFilter: with input channels in 4s and output channels in 8s, in WebAssembly SIMD straight
 *   from x and dy (_filter-grad-simd.ts; about twice as fast as the composed convolution or im2col + XNNPACK,
 *   whose products have tiny outputs and long reductions); with other input channels (the first layer's 3)
 *   the same on a copy of x zero-padded to channels in 4s. Otherwise, for a layer with few inputs per output
 *   (the first layer: 5x5x3 = 75), the composed convolution (_training-kernels.ts) has only that many output
 *   pixels, too few for XNNPACK to run well; there patches are gathered (im2col) a few images at a time and
 *   multiplied with dy through XNNPACK.
 * - Conv2D with input channels in 4s, output channels in 8s and rows of 4+ output pixels: in WebAssembly SIMD
 *   (_conv2d-simd.ts) over a zero-padded copy of the input, reading the weights as they lie, where XNNPACK packs
 *   them and sets up an operator at every call (model-lite's forward and input-gradient convolutions).
 * - Tile that repeats a whole tensor along leading axes (batch norm's gradient tiles [1, 1, 1, C] to the
 *   activations' shape): wasm computes every output index; here the block is copied, doubling each time.
 * - Identity (tfjs's clone, which saves every input and output a gradient needs, at each step): wasm copies the
 *   data; here the clone shares it and the backend's reference count goes up, as wasm's own Reshape does and
 *   the cpu backend's Identity does (no kernel writes into its inputs).
 *
 * A kernel that meets a case it does not cover calls the backend's own.
 */

/** The parts of tfjs-backend-wasm's backend these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
  disposeData(dataId: DataId): boolean;
  incRef(dataId: DataId): void;
}

/** Float32 view of a tensor on the heap. Take views after allocating outputs: allocation can move the heap. */
function view(backend: WasmBackend, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** tfjs's Conv2DInfo of an NHWC convolution without dilation. */
function nhwcInfo(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: Conv2DAttrs['pad'],
  dimRoundingMode: Conv2DAttrs['dimRoundingMode'],
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** `[rows, columns]` -> `[columns, rows]`, in tiles so both sides stay in cache. */
function transposeInto(source: Float32Array, target: Float32Array, rows: number, columns: number): void {
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(r0 + tile, rows);
    for (let c0 = 0; c0 < columns; c0 += tile) {
      const c1 = Math.min(c0 + tile, columns);
      for (let r = r0; r < r1; r++) {
        const rowStart = r * columns;
        for (let c = c0; c < c1; c++) target[c * rows + r] = source[rowStart + c]!;
      }
    }
  }
}

function transpose2d(backend: WasmBackend, x: TensorInfo, rows: number, columns: number): TensorInfo {
  const out = backend.makeOutput([columns, rows], 'float32');
  transposeInto(view(backend, x), view(backend, out), rows, columns);
  return out;
}

/** A tensor info that shares `x`'s data with another shape (the data's reference count is not raised). */
const reshaped = (x: TensorInfo, shape: number[]): TensorInfo => ({
  dataId: x.dataId,
  shape,
  dtype: x.dtype,
});

export function makeBatchMatMul(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
    if (
      (!transposeA && !transposeB) ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      a.shape.length < 2 ||
      b.shape.length < 2 ||
      size(a.shape.slice(0, -2)) !== 1 ||
      size(b.shape.slice(0, -2)) !== 1
    ) {
      return original(args);
    }
    const [aRows, aColumns] = a.shape.slice(-2) as [number, number];
    const [bRows, bColumns] = b.shape.slice(-2) as [number, number];
    const m = transposeA ? aColumns : aRows;
    const k = transposeA ? aRows : aColumns;
    const n = transposeB ? bRows : bColumns;
    if ((transposeB ? bColumns : bRows) !== k) return original(args); // let the original report the mismatch
    const outShape = [...a.shape.slice(0, -2), m, n];
    const a2 = reshaped(a, [aRows, aColumns]);
    const b2 = reshaped(b, [bRows, bColumns]);
    const plain = { transposeA: false, transposeB: false };
    const scratch: TensorInfo[] = [];
    try {
      // Either op(A) . op(B), transposing the operands given transposed, or (op(B)^T . op(A)^T)^T,
      // transposing the others and the product: whichever moves fewer elements.
      const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0);
      const swapped = (transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n;
      let out: TensorInfo;
      if (direct <= swapped) {
        const left = transposeA ? transpose2d(backend, a2, aRows, aColumns) : a2;
        const right = transposeB ? transpose2d(backend, b2, bRows, bColumns) : b2;
        if (left !== a2) scratch.push(left);
        if (right !== b2) scratch.push(right);
        out = original({ ...args, inputs: { a: left, b: right }, attrs: plain }) as TensorInfo;
      } else {
        const left = transposeB ? b2 : transpose2d(backend, b2, bRows, bColumns); // op(B)^T: [n, k]
        const right = transposeA ? a2 : transpose2d(backend, a2, aRows, aColumns); // op(A)^T: [k, m]
        if (left !== b2) scratch.push(left);
        if (right !== a2) scratch.push(right);
        const product = original({ ...args, inputs: { a: left, b: right }, attrs: plain }) as TensorInfo;
        scratch.push(product);
        out = transpose2d(backend, product, n, m);
      }
      return { dataId: out.dataId, shape: outShape, dtype: out.dtype };
    } finally {
      for (const info of scratch) backend.disposeData(info.dataId);
    }
  };
}

export function makeMaxPoolGrad(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { dy, input, output } = args.inputs as { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
    if (input.dtype !== 'float32' || dy.dtype !== 'float32' || output?.dtype !== 'float32') {
      return original(args);
    }
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
    const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const out = backend.makeOutput(input.shape.slice(), 'float32');
    const x = view(backend, input);
    const pooled = view(backend, output);
    const dyValues = view(backend, dy);
    const dx = view(backend, out);
    dx.fill(0);
    const cells = new Int32Array(filterHeight * filterWidth);
    for (let b = 0; b < batchSize; b++) {
      const image = b * inHeight * inWidth * channels;
      for (let r = 0; r < outHeight; r++) {
        const rowStart = r * strideHeight - top;
        const rowFrom = Math.max(0, rowStart);
        const rowTo = Math.min(inHeight, rowStart + filterHeight);
        for (let c = 0; c < outWidth; c++) {
          const columnStart = c * strideWidth - left;
          const columnFrom = Math.max(0, columnStart);
          const columnTo = Math.min(inWidth, columnStart + filterWidth);
          // The window's cells inside the image, in the cpu backend's scan order.
          let count = 0;
          for (let row = rowFrom; row < rowTo; row++) {
            for (let column = columnFrom; column < columnTo; column++) {
              cells[count++] = image + (row * inWidth + column) * channels;
            }
          }
          const gradient = ((b * outHeight + r) * outWidth + c) * channels;
          for (let d = 0; d < channels; d++) {
            // The gradient goes to the window's first maximum, as on the cpu backend (relu zeros tie often).
            // Looking for the pooled value is one predictable branch per cell, where comparing every cell
            // with the running maximum mispredicts half the time.
            const maximum = pooled[gradient + d]!;
            let k = 0;
            while (k < count && x[cells[k]! + d] !== maximum) k++;
            let at = k < count ? cells[k]! + d : -1;
            if (at < 0) {
              // Not the pooled value of this input (NaN): search the first maximum.
              let best = Number.NEGATIVE_INFINITY;
              for (k = 0; k < count; k++) {
                const value = x[cells[k]! + d]!;
                if (value > best) {
                  best = value;
                  at = cells[k]! + d;
                }
              }
            }
            if (at >= 0) dx[at] = dx[at]! + dyValues[gradient + d]!;
          }
        }
      }
    }
    return out;
  };
}

/** `s^-beta`, with the seed's beta (0.75) and 0.5 through square roots, several times faster than `pow`. */
function negativePower(beta: number): (s: number) => number {
  if (beta === 0.75) return (s) => 1 / Math.sqrt(s * Math.sqrt(s));
  if (beta === 0.5) return (s) => 1 / Math.sqrt(s);
  if (beta === 1) return (s) => 1 / s;
  return (s) => s ** -beta;
}

/**
 * `s[d] = bias + alpha * sum(values[pixel + d - r .. pixel + d + r] ** 2)` (clipped to the channels) for one
 * pixel, as a sliding sum in doubles.
 */
function norms(
  values: Float32Array,
  pixel: number,
  channels: number,
  radius: number,
  bias: number,
  alpha: number,
  s: Float64Array,
): void {
  let sum = 0;
  for (let d = 0; d < radius && d < channels; d++) {
    const value = values[pixel + d]!;
    sum += value * value;
  }
  for (let d = 0; d < channels; d++) {
    if (d + radius < channels) {
      const value = values[pixel + d + radius]!;
      sum += value * value;
    }
    if (d - radius - 1 >= 0) {
      const value = values[pixel + d - radius - 1]!;
      sum -= value * value;
    }
    s[d] = bias + alpha * sum;
  }
}

export function makeLrn(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x } = args.inputs as { x: TensorInfo };
    const { depthRadius, bias, alpha, beta } = args.attrs as unknown as LRNAttrs;
    if (x.dtype !== 'float32') return original(args);
    const channels = x.shape[x.shape.length - 1]!;
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    const input = view(backend, x);
    const output = view(backend, out);
    const power = negativePower(beta);
    const s = new Float64Array(channels);
    for (let pixel = 0; pixel < input.length; pixel += channels) {
      norms(input, pixel, channels, depthRadius, bias, alpha, s);
      for (let d = 0; d < channels; d++) output[pixel + d] = input[pixel + d]! * power(s[d]!);
    }
    return out;
  };
}

export function makeLrnGrad(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x, y, dy } = args.inputs as { x: TensorInfo; y: TensorInfo; dy: TensorInfo };
    const { depthRadius: radius, bias, alpha, beta } = args.attrs as unknown as LRNGradAttrs;
    if (x.dtype !== 'float32' || y.dtype !== 'float32' || dy.dtype !== 'float32') return original(args);
    const channels = x.shape[x.shape.length - 1]!;
    const out = backend.makeOutput(dy.shape.slice(), 'float32');
    const xs = view(backend, x);
    const ys = view(backend, y);
    const dys = view(backend, dy);
    const dx = view(backend, out);
    const power = negativePower(beta);
    const scale = -2 * alpha * beta;
    const s = new Float64Array(channels);
    const terms = new Float64Array(channels);
    for (let pixel = 0; pixel < xs.length; pixel += channels) {
      norms(xs, pixel, channels, radius, bias, alpha, s);
      for (let d = 0; d < channels; d++) terms[d] = (dys[pixel + d]! * ys[pixel + d]!) / s[d]!;
      // dx_d = dy_d s_d^-beta - 2 alpha beta x_d sum over the window around d of dy_i y_i / s_i.
      let sum = 0;
      for (let d = 0; d < radius && d < channels; d++) sum += terms[d]!;
      for (let d = 0; d < channels; d++) {
        if (d + radius < channels) sum += terms[d + radius]!;
        if (d - radius - 1 >= 0) sum -= terms[d - radius - 1]!;
        dx[pixel + d] = dys[pixel + d]! * power(s[d]!) + scale * xs[pixel + d]! * sum;
      }
    }
    return out;
  };
}

export function makeSum(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as SumAttrs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    // Only the bias-gradient case: the reduced axes are the leading ones, and some remain.
    if (
      x.dtype !== 'float32' ||
      axes.length === 0 ||
      axes.length >= rank ||
      axes.some((value, i) => value !== i)
    ) {
      return original(args);
    }
    const kept = x.shape.slice(axes.length);
    const columns = size(kept);
    const outShape = keepDims ? [...axes.map(() => 1), ...kept] : kept;
    const out = backend.makeOutput(outShape, 'float32');
    const input = view(backend, x);
    const output = view(backend, out);
    const totals = new Float64Array(columns);
    for (let start = 0; start < input.length; start += columns) {
      for (let c = 0; c < columns; c++) totals[c] = totals[c]! + input[start + c]!;
    }
    output.set(totals);
    return out;
  };
}

export function makeIdentity(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return original(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

export function makeTile(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x } = args.inputs as { x: TensorInfo };
    const { reps } = args.attrs as unknown as TileAttrs;
    // Only whole-tensor repeats: every repeated axis comes before every axis of size > 1.
    const firstKept = x.shape.findIndex((dim) => dim !== 1);
    const block = firstKept < 0 ? x.shape.length : firstKept;
    if (
      x.dtype !== 'float32' ||
      reps.length !== x.shape.length ||
      reps.some((rep, axis) => axis >= block && rep !== 1)
    ) {
      return original(args);
    }
    const outShape = x.shape.map((dim, axis) => dim * reps[axis]!);
    const out = backend.makeOutput(outShape, 'float32');
    const input = view(backend, x);
    const output = view(backend, out);
    if (output.length === 0) return out;
    output.set(input);
    for (let filled = input.length; filled < output.length; filled *= 2) {
      output.copyWithin(filled, 0, Math.min(filled, output.length - filled));
    }
    return out;
  };
}

/**
 * For layers the SIMD kernel does not take (channels not in 4s and 8s):
 * up to this many patch values per output channel (kh * kw * Ci), {@link makeConv2dBackpropFilter} gathers
 * patches; for strided layers up to {@link IM2COL_MAX_STRIDED_PATCH}, where the composed convolution needs a
 * dilated "filter" that XNNPACK runs slowly (model-lite's 3x3 stride-2 blocks at 80x60, batch 32: 39-61 ms
 * composed, 31-42 ms gathered, the two timed alternately on the loaded machine). Stride-1 layers of 3x3x16 and
 * more were as fast or faster composed.
 */
export const IM2COL_MAX_PATCH = 128;
export const IM2COL_MAX_STRIDED_PATCH = 1152;

/**
 * Fills `p` ([patch, columns], row (kh, kw, ci), column (n, i, j) for images first .. first + images - 1).
 * Pixel by pixel: each tap's Ci values are read contiguously and written down their rows, so the open cache
 * lines are one per patch row (a few KiB) however many channels there are.
 */
function gatherPatches(
  xs: Float32Array,
  p: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  first: number,
  images: number,
  columns: number,
): void {
  const { inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  let column = 0;
  for (let n = first; n < first + images; n++) {
    for (let i = 0; i < outHeight; i++) {
      for (let j = 0; j < outWidth; j++, column++) {
        let row = column;
        for (let kh = 0; kh < filterHeight; kh++) {
          const r = i * strideHeight - top + kh;
          for (let kw = 0; kw < filterWidth; kw++) {
            const c = j * strideWidth - left + kw;
            if (r < 0 || r >= inHeight || c < 0 || c >= inWidth) {
              for (let ci = 0; ci < inChannels; ci++, row += columns) p[row] = 0;
            } else {
              const source = ((n * inHeight + r) * inWidth + c) * inChannels;
              for (let ci = 0; ci < inChannels; ci++, row += columns) p[row] = xs[source + ci]!;
            }
          }
        }
      }
    }
  }
}

/** Patch columns per matrix product: enough to keep XNNPACK busy, few enough for dy's chunk to stay in cache. */
const IM2COL_COLUMNS = 4096;

/** The SIMD filter gradient where it applies (channels in 4s and 8s on a wasm build with SIMD), else undefined. */
export function filterSimdFor(
  backend: unknown,
  inChannels: number,
  outChannels: number,
): FilterGradSimd | undefined {
  if (inChannels % 4 !== 0 || outChannels % 8 !== 0) return undefined;
  return filterGradSimd(wasmMemory(backend));
}

/** Bytes of x and dy per call of the SIMD filter gradient: the images of one call stay in L2 over the 9 taps. */
const FILTER_SIMD_CHUNK_BYTES = 512 * 1024;

/**
 * dW by {@link FilterGradSimd}: per chunk of images and per filter tap, one call over the output pixels whose
 * input pixel lies inside the image (a rectangle of dy in each image), adding into dW's tap block (float32).
 */
function filterGradientSimd(
  backend: WasmBackend,
  kernel: FilterGradSimd,
  x: TensorInfo,
  dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  const dw = view(backend, out);
  dw.fill(0);
  const xAt = view(backend, x).byteOffset;
  const dyAt = view(backend, dy).byteOffset;
  const xImage = inHeight * inWidth * inChannels * 4;
  const dyImage = outHeight * outWidth * outChannels * 4;
  const chunk = Math.max(1, Math.floor(FILTER_SIMD_CHUNK_BYTES / (xImage + dyImage)));
  // Output rows (columns) whose input row (column) i * s - pad + k lies in 0 .. size - 1.
  const valid = (k: number, pad: number, stride: number, size: number, outSize: number) => {
    const first = Math.max(0, Math.ceil((pad - k) / stride));
    const end = Math.min(outSize, Math.floor((size - 1 + pad - k) / stride) + 1);
    return [first, end - first] as const;
  };
  for (let n = 0; n < batchSize; n += chunk) {
    const images = Math.min(chunk, batchSize - n);
    for (let kh = 0; kh < filterHeight; kh++) {
      const [i0, rows] = valid(kh, top, strideHeight, inHeight, outHeight);
      if (rows <= 0) continue;
      for (let kw = 0; kw < filterWidth; kw++) {
        const [j0, columns] = valid(kw, left, strideWidth, inWidth, outWidth);
        if (columns <= 0) continue;
        const r = i0 * strideHeight - top + kh;
        const c = j0 * strideWidth - left + kw;
        kernel.tap(
          xAt + ((n * inHeight + r) * inWidth + c) * inChannels * 4,
          dyAt + ((n * outHeight + i0) * outWidth + j0) * outChannels * 4,
          dw.byteOffset + (kh * filterWidth + kw) * inChannels * outChannels * 4,
          images,
          rows,
          columns,
          xImage,
          strideHeight * inWidth * inChannels * 4,
          strideWidth * inChannels * 4,
          dyImage,
          outWidth * outChannels * 4,
          outChannels * 4,
          inChannels * 4,
          outChannels * 4,
        );
      }
    }
  }
  return out;
}

const roundUp = (n: number, multiple: number) => Math.ceil(n / multiple) * multiple;

/**
 * {@link filterGradientSimd} for input channels that are not a multiple of 4 (an RGB image's 3: the first
 * layer): x copied with zero channels up to the next multiple, and the gradient rows of those channels left out.
 * The copy costs far less than the patches of the im2col path (BENCHMARKS.md, session 9, issue 11).
 */
function paddedFilterGradientSimd(
  backend: WasmBackend,
  kernel: FilterGradSimd,
  x: TensorInfo,
  dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outChannels, filterHeight, filterWidth } = info;
  const channels = roundUp(inChannels, 4);
  const wide = backend.makeOutput([batchSize, inHeight, inWidth, channels], 'float32');
  let gradient: TensorInfo | undefined;
  try {
    const source = view(backend, x);
    const target = view(backend, wide);
    target.fill(0);
    for (let pixel = 0, end = batchSize * inHeight * inWidth; pixel < end; pixel++) {
      for (let c = 0; c < inChannels; c++) target[pixel * channels + c] = source[pixel * inChannels + c]!;
    }
    gradient = filterGradientSimd(backend, kernel, wide, dy, { ...info, inChannels: channels });
    const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
    const all = view(backend, gradient);
    const dw = view(backend, out);
    for (let tap = 0; tap < filterHeight * filterWidth; tap++) {
      const rows = all.subarray(tap * channels * outChannels, (tap * channels + inChannels) * outChannels);
      dw.set(rows, tap * inChannels * outChannels);
    }
    return out;
  } finally {
    backend.disposeData(wide.dataId);
    if (gradient) backend.disposeData(gradient.dataId);
  }
}

/**
 * dW in SIMD ({@link filterGradientSimd}) where the channels allow and `simdPath` (default true) is on; else
 * dW = sum over images of patches(x)^T . dy, for layers whose patches are small (`maxPatch`, default
 * {@link IM2COL_MAX_PATCH} or {@link IM2COL_MAX_STRIDED_PATCH}). Falls back to `composed` (the composed
 * convolution) for other layers.
 */
export function makeConv2dBackpropFilter(
  composed: KernelFunc,
  maxPatch?: number,
  simdPath = true,
): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
      args.attrs as unknown as Conv2DBackpropFilterAttrs;
    const [filterHeight, filterWidth, inChannels, outChannels] = filterShape as number[] as [
      number,
      number,
      number,
      number,
    ];
    if (dataFormat !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32') return composed(args);
    const info = nhwcInfo(x.shape, filterShape, strides, pad, dimRoundingMode);
    const simd = simdPath ? filterSimdFor(backend, inChannels, outChannels) : undefined;
    if (simd !== undefined) return filterGradientSimd(backend, simd, x, dy, info);
    const padded = simdPath ? filterSimdFor(backend, roundUp(inChannels, 4), outChannels) : undefined;
    if (padded !== undefined) return paddedFilterGradientSimd(backend, padded, x, dy, info);
    const patch = filterHeight * filterWidth * inChannels;
    const strided = (Array.isArray(strides) ? strides : [strides, strides]).some((s) => s > 1);
    const limit = maxPatch ?? (strided ? IM2COL_MAX_STRIDED_PATCH : IM2COL_MAX_PATCH);
    const matMul = tf.getKernel(tf.BatchMatMul, 'wasm');
    if (patch > limit || matMul === undefined) return composed(args);
    const { batchSize, outHeight, outWidth } = info;
    const cells = outHeight * outWidth;
    const imagesPerChunk = Math.max(1, Math.floor(IM2COL_COLUMNS / cells));
    const totals = new Float64Array(patch * outChannels);
    for (let first = 0; first < batchSize; first += imagesPerChunk) {
      const images = Math.min(imagesPerChunk, batchSize - first);
      const columns = images * cells;
      const patches = backend.makeOutput([patch, columns], 'float32');
      const gradient = backend.makeOutput([columns, outChannels], 'float32');
      let product: TensorInfo | undefined;
      try {
        const xs = view(backend, x);
        const p = view(backend, patches);
        // patches[(kh, kw, ci), (n, i, j)] = x[n, i * s - top + kh, j * s - left + kw, ci], 0 outside the image.
        gatherPatches(xs, p, info, first, images, columns);
        view(backend, gradient).set(
          view(backend, dy).subarray(first * cells * outChannels, (first + images) * cells * outChannels),
        );
        product = matMul.kernelFunc({
          inputs: { a: patches, b: gradient },
          backend: args.backend,
          attrs: { transposeA: false, transposeB: false },
        }) as TensorInfo;
        const values = view(backend, product);
        for (let i = 0; i < totals.length; i++) totals[i] = totals[i]! + values[i]!;
      } finally {
        backend.disposeData(patches.dataId);
        backend.disposeData(gradient.dataId);
        if (product) backend.disposeData(product.dataId);
      }
    }
    const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
    view(backend, out).set(totals);
    return out;
  };
}

/**
 * Conv2D (NHWC, float32, no dilation) in WebAssembly SIMD ({@link Conv2dSimd}) where input channels come in 4s,
 * output channels in 8s and output rows have 4 pixels or more: the input copied once into a zero-padded
 * buffer (skipped without padding), then one call. Else wasm's own (XNNPACK), which packs the weights and sets
 * up an operator at every call (the weights are new tensors after every update).
 */
export function makeConv2d(original: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as Conv2DAttrs;
    const [, , inChannels, outChannels] = filter.shape as [number, number, number, number];
    const dilated = (Array.isArray(dilations) ? dilations : [dilations, dilations]).some((d) => d !== 1);
    const simd =
      dataFormat === 'NHWC' && !dilated && x.dtype === 'float32' && filter.dtype === 'float32'
        ? conv2dSimdFor(backend, inChannels, outChannels)
        : undefined;
    if (simd === undefined) return original(args);
    const info = nhwcInfo(x.shape, filter.shape, strides, pad, dimRoundingMode);
    if (info.outWidth < 4 || info.outHeight < 1 || info.batchSize < 1) return original(args);
    return conv2dSimdRun(backend, simd, x, filter, info);
  };
}

/** The SIMD convolution where it applies (channels in 4s and 8s on a wasm build with SIMD), else undefined. */
export function conv2dSimdFor(
  backend: unknown,
  inChannels: number,
  outChannels: number,
): Conv2dSimd | undefined {
  if (inChannels % 4 !== 0 || outChannels % 8 !== 0) return undefined;
  return conv2dSimd(wasmMemory(backend));
}

function conv2dSimdRun(
  backend: WasmBackend,
  kernel: Conv2dSimd,
  x: TensorInfo,
  filter: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  // The input rows and columns the output reads, from -top and -left on.
  const height = (outHeight - 1) * strideHeight + filterHeight;
  const width = (outWidth - 1) * strideWidth + filterWidth;
  const padded = top > 0 || left > 0 || height > inHeight || width > inWidth;
  const out = backend.makeOutput(info.outShape.slice(), 'float32');
  const buffer = padded ? backend.makeOutput([batchSize, height, width, inChannels], 'float32') : undefined;
  try {
    const rowWidth = buffer ? width : inWidth;
    const imageRows = buffer ? height : inHeight;
    if (buffer) padInto(view(backend, x), view(backend, buffer), info, height, width);
    const pixel = inChannels * 4;
    kernel.conv(
      view(backend, buffer ?? x).byteOffset,
      view(backend, filter).byteOffset,
      view(backend, out).byteOffset,
      batchSize,
      outHeight,
      imageRows * rowWidth * pixel,
      strideHeight * rowWidth * pixel,
      strideWidth * pixel,
      rowWidth * pixel,
      filterHeight,
      filterWidth,
      outWidth - 4,
      inChannels * 4,
      outChannels * 4,
    );
  } finally {
    if (buffer) backend.disposeData(buffer.dataId);
  }
  return out;
}

/** xp[n, r, c] = x[n, r - top, c - left] inside x, else 0 (xp is [N, height, width, C]). */
function padInto(
  xs: Float32Array,
  xp: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  height: number,
  width: number,
): void {
  const { batchSize, inHeight, inWidth, inChannels } = info;
  const { top, left } = info.padInfo;
  xp.fill(0);
  const columns = Math.min(inWidth, width - left) * inChannels;
  for (let n = 0; n < batchSize; n++) {
    for (let r = Math.max(0, top) - top; r < Math.min(inHeight, height - top); r++) {
      const from = (n * inHeight + r) * inWidth * inChannels;
      xp.set(xs.subarray(from, from + columns), ((n * height + r + top) * width + left) * inChannels);
    }
  }
}

/** One axis of a strided convolution's input gradient, split by output phase (see {@link makeConv2dBackpropInputPhases}). */
interface Phase {
  /** First input row of the phase (`r`); its rows are r, r + s, r + 2s ... */
  first: number;
  /** Rows in the phase. */
  rows: number;
  /** Filter taps that reach the phase, last tap first: kh = lastTap, lastTap - s, ... */
  taps: number;
  lastTap: number;
  /** Padding of dy before and after for the stride-1 correlation (negative: not expressible). */
  before: number;
  after: number;
}

/**
 * Input row y = r + s a receives dy[i] W[kh] where y = i s - pad + kh, so kh = (r + pad) mod s + m s and
 * i = a + (r + pad - kh) / s: a stride-1 correlation of dy with the taps of that residue, reversed.
 */
function phases(size: number, dySize: number, filter: number, stride: number, pad: number): Phase[] {
  const out: Phase[] = [];
  for (let r = 0; r < stride && r < size; r++) {
    const rows = Math.ceil((size - r) / stride);
    const firstTap = (r + pad) % stride;
    const taps = firstTap < filter ? Math.floor((filter - 1 - firstTap) / stride) + 1 : 0;
    const lastTap = firstTap + (taps - 1) * stride;
    // The last tap has the smallest offset into dy: (r + pad - lastTap) / s.
    const offset = (r + pad - lastTap) / stride;
    const before = -offset;
    const after = rows - 1 + offset + taps - 1 - (dySize - 1);
    out.push({ first: r, rows, taps, lastTap, before, after });
  }
  return out;
}

/**
 * Conv2DBackpropInput for strides > 1 without multiplying by zeros: for each of the s_h x s_w output phases, a
 * stride-1 convolution of dy with the filter taps that reach it (XNNPACK through wasm's Conv2D), scattered into
 * dx. The same work as the forward convolution, where correlating a zero-spread dy with the whole filter costs
 * s_h s_w times as much. At stride 1 the one phase is dx itself: the filter reversed and transposed here in
 * one loop, where the composed kernel ran wasm's Reverse and Transpose. Falls back to `fallback` for paddings
 * this cannot express.
 */
export function makeConv2dBackpropInputPhases(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as unknown as WasmBackend;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
      args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const conv2d = tf.getKernel(tf.Conv2D, 'wasm');
    if (dataFormat !== 'NHWC' || dy.dtype !== 'float32' || filter.dtype !== 'float32' || !conv2d) {
      return fallback(args);
    }
    const info = nhwcInfo(inputShape, filter.shape, strides, pad, dimRoundingMode);
    const { strideHeight, strideWidth, filterHeight, filterWidth, inHeight, inWidth } = info;
    const { outHeight, outWidth, inChannels, outChannels } = info;
    const rowPhases = phases(inHeight, outHeight, filterHeight, strideHeight, info.padInfo.top);
    const columnPhases = phases(inWidth, outWidth, filterWidth, strideWidth, info.padInfo.left);
    const expressible = (p: Phase) => p.taps === 0 || (p.before >= 0 && p.after >= 0);
    if (!rowPhases.every(expressible) || !columnPhases.every(expressible)) return fallback(args);

    /** The stride-1 correlation of dy with the taps of one phase (the caller disposes the result). */
    const phaseConvolution = (rows: Phase, columns: Phase): TensorInfo => {
      // The phase's filter, taps in correlation order, in/out channels swapped: [taps_h, taps_w, Co, Ci].
      const sub = backend.makeOutput([rows.taps, columns.taps, outChannels, inChannels], 'float32');
      try {
        const w = view(backend, filter);
        const s = view(backend, sub);
        let at = 0;
        for (let th = 0; th < rows.taps; th++) {
          const kh = rows.lastTap - th * strideHeight;
          for (let tw = 0; tw < columns.taps; tw++) {
            const kw = columns.lastTap - tw * strideWidth;
            const tap = (kh * filterWidth + kw) * inChannels * outChannels;
            for (let co = 0; co < outChannels; co++) {
              for (let ci = 0; ci < inChannels; ci++) s[at++] = w[tap + ci * outChannels + co]!;
            }
          }
        }
        return conv2d.kernelFunc({
          inputs: { x: dy, filter: sub },
          backend: args.backend,
          attrs: {
            strides: [1, 1],
            pad: [
              [0, 0],
              [rows.before, rows.after],
              [columns.before, columns.after],
              [0, 0],
            ],
            dataFormat: 'NHWC',
            dilations: [1, 1],
            dimRoundingMode: undefined,
          } as unknown as tf.NamedAttrMap,
        }) as TensorInfo;
      } finally {
        backend.disposeData(sub.dataId);
      }
    };
    // Stride 1: one phase, which is dx itself.
    if (strideHeight === 1 && strideWidth === 1) return phaseConvolution(rowPhases[0]!, columnPhases[0]!);

    const out = backend.makeOutput(inputShape.slice(), 'float32');
    for (const rows of rowPhases) {
      for (const columns of columnPhases) {
        if (rows.taps === 0 || columns.taps === 0) {
          scatterPhase(view(backend, out), undefined, info, rows, columns);
          continue;
        }
        const result = phaseConvolution(rows, columns);
        try {
          scatterPhase(view(backend, out), view(backend, result), info, rows, columns);
        } finally {
          backend.disposeData(result.dataId);
        }
      }
    }
    return out;
  };
}

/** dx[n, r_h + s_h a, r_w + s_w b, :] = phase[n, a, b, :] (or 0 without a phase result). */
function scatterPhase(
  dx: Float32Array,
  phase: Float32Array | undefined,
  info: tf.backend_util.Conv2DInfo,
  rows: Phase,
  columns: Phase,
): void {
  const { batchSize, inHeight, inWidth, inChannels, strideHeight, strideWidth } = info;
  let from = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let a = 0; a < rows.rows; a++) {
      const row = (n * inHeight + rows.first + a * strideHeight) * inWidth;
      for (let b = 0; b < columns.rows; b++) {
        const to = (row + columns.first + b * strideWidth) * inChannels;
        if (phase === undefined) {
          dx.fill(0, to, to + inChannels);
        } else {
          for (let c = 0; c < inChannels; c++) dx[to + c] = phase[from + c]!;
          from += inChannels;
        }
      }
    }
  }
}
