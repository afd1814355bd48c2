/*
 * Batch norm + ReLU passes in WebAssembly SIMD (f32x4), run on tfjs-backend-wasm's own heap: a small module,
 * assembled here byte by byte, imports the backend's `WebAssembly.Memory`, so the passes read and write the
 * tensors where they lie (pointers are heap byte offsets). Four functions, each a loop over pixels with an inner
 * loop over the channels four at a time (channels last; `rowBytes` = channels * 4, a multiple of 16):
 *
 * - stats(z, pixels, rowBytes, shift, acc): acc[c] += z - shift, acc[C + c] += (z - shift)^2 (float32 partial
 *   sums: the caller runs it on blocks of pixels and adds the partials in doubles);
 * - forward(z, y, pixels, rowBytes, params): y = pmax(0, (z - m) s + beta), params = [m | s | beta];
 * - backwardSums(dy, z, pixels, rowBytes, params, acc): g = dy where (z - m) s + beta > 0 (the forward's own
 *   arithmetic, so the same mask), acc[c] += g, acc[C + c] += g (z - m);
 * - backward(dy, z, dz, pixels, rowBytes, params): dz = a g + b (z - m) + k, params = [m | s | beta | a | b | k].
 *
 * Centring on m (and the statistics on a shift) keeps float32 from cancelling large terms when a channel's mean
 * is far from 0. Measured against the JavaScript loops of _batchnorm-kernels.ts in BENCHMARKS.md (issue 12).
 */

import {
  addTo,
  countdown,
  F32X4_ADD,
  F32X4_GT,
  F32X4_MUL,
  F32X4_PMAX,
  F32X4_SUB,
  get,
  I32,
  I32_ADD,
  i32Const,
  set,
  simdInstances,
  stepUntil,
  V128,
  V128_AND,
  V128_LOAD,
  V128_STORE,
  V128_ZERO,
  type WasmFunction,
  wasmModule,
} from './_wasm-asm.js';

/** The module's functions (all arguments i32: counts, or byte offsets into the imported memory). */
export interface BatchNormSimd {
  stats(z: number, pixels: number, rowBytes: number, shift: number, acc: number): void;
  forward(z: number, y: number, pixels: number, rowBytes: number, params: number): void;
  backwardSums(dy: number, z: number, pixels: number, rowBytes: number, params: number, acc: number): void;
  backward(dy: number, z: number, dz: number, pixels: number, rowBytes: number, params: number): void;
}

/** Address `pointer + offset` (the channel offset local). */
const at = (pointer: number, offset: number) => [...get(pointer), ...get(offset), ...I32_ADD];
/** v128 at `pointer + offset`. */
const load = (pointer: number, offset: number) => [...at(pointer, offset), ...V128_LOAD];

/**
 * `for (; pixels; pixels--) { for (o = 0; o < rowBytes; o += 16) body; advance pointers by rowBytes }`
 * (pixels and rowBytes must be at least 1 and 16).
 */
function pixelLoop(
  pixels: number,
  rowBytes: number,
  offset: number,
  body: number[],
  advance: number[],
): number[] {
  return countdown(pixels, [
    ...i32Const(0),
    ...set(offset),
    ...stepUntil(offset, 16, rowBytes, body),
    ...advance.flatMap((pointer) => addTo(pointer, rowBytes)),
  ]);
}

/** `target = base + rowBytes` (the next array of per-channel values). */
const next = (target: number, base: number, rowBytes: number) => [
  ...get(base),
  ...get(rowBytes),
  ...I32_ADD,
  ...set(target),
];

interface Func extends WasmFunction {
  name: keyof BatchNormSimd & string;
}

// stats: 0 z, 1 pixels, 2 rowBytes, 3 shift, 4 acc | 5 o, 6 squares, 7 d
function statsFunction(): Func {
  return {
    name: 'stats',
    params: 5,
    locals: [
      [2, I32],
      [1, V128],
    ],
    body: [
      ...next(6, 4, 2),
      ...pixelLoop(
        1,
        2,
        5,
        [
          ...load(0, 5),
          ...load(3, 5),
          ...F32X4_SUB,
          ...set(7),
          ...at(4, 5),
          ...load(4, 5),
          ...get(7),
          ...F32X4_ADD,
          ...V128_STORE,
          ...at(6, 5),
          ...load(6, 5),
          ...get(7),
          ...get(7),
          ...F32X4_MUL,
          ...F32X4_ADD,
          ...V128_STORE,
        ],
        [0],
      ),
    ],
  };
}
// forward: 0 z, 1 y, 2 pixels, 3 rowBytes, 4 m | 5 o, 6 s, 7 beta
function forwardFunction(): Func {
  return {
    name: 'forward',
    params: 5,
    locals: [[3, I32]],
    body: [
      ...next(6, 4, 3),
      ...next(7, 6, 3),
      ...pixelLoop(
        2,
        3,
        5,
        [
          ...at(1, 5),
          ...V128_ZERO,
          ...load(0, 5),
          ...load(4, 5),
          ...F32X4_SUB,
          ...load(6, 5),
          ...F32X4_MUL,
          ...load(7, 5),
          ...F32X4_ADD,
          ...F32X4_PMAX,
          ...V128_STORE,
        ],
        [0, 1],
      ),
    ],
  };
}
/** g = dy where (z - m) s + beta > 0, with zc = z - m in `zc`; locals: dy, z, m, s, beta, o, zc, g. */
const maskedGradient = (
  dy: number,
  z: number,
  m: number,
  s: number,
  beta: number,
  o: number,
  zc: number,
  g: number,
) => [
  ...load(z, o),
  ...load(m, o),
  ...F32X4_SUB,
  ...set(zc),
  ...load(dy, o),
  ...get(zc),
  ...load(s, o),
  ...F32X4_MUL,
  ...load(beta, o),
  ...F32X4_ADD,
  ...V128_ZERO,
  ...F32X4_GT,
  ...V128_AND,
  ...set(g),
];
// backwardSums: 0 dy, 1 z, 2 pixels, 3 rowBytes, 4 m, 5 acc | 6 o, 7 s, 8 beta, 9 second, 10 zc, 11 g
function backwardSumsFunction(): Func {
  return {
    name: 'backwardSums',
    params: 6,
    locals: [
      [4, I32],
      [2, V128],
    ],
    body: [
      ...next(7, 4, 3),
      ...next(8, 7, 3),
      ...next(9, 5, 3),
      ...pixelLoop(
        2,
        3,
        6,
        [
          ...maskedGradient(0, 1, 4, 7, 8, 6, 10, 11),
          ...at(5, 6),
          ...load(5, 6),
          ...get(11),
          ...F32X4_ADD,
          ...V128_STORE,
          ...at(9, 6),
          ...load(9, 6),
          ...get(11),
          ...get(10),
          ...F32X4_MUL,
          ...F32X4_ADD,
          ...V128_STORE,
        ],
        [0, 1],
      ),
    ],
  };
}
// backward: 0 dy, 1 z, 2 dz, 3 pixels, 4 rowBytes, 5 m | 6 o, 7 s, 8 beta, 9 a, 10 b, 11 k, 12 zc, 13 g
function backwardFunction(): Func {
  return {
    name: 'backward',
    params: 6,
    locals: [
      [6, I32],
      [2, V128],
    ],
    body: [
      ...next(7, 5, 4),
      ...next(8, 7, 4),
      ...next(9, 8, 4),
      ...next(10, 9, 4),
      ...next(11, 10, 4),
      ...pixelLoop(
        3,
        4,
        6,
        [
          ...maskedGradient(0, 1, 5, 7, 8, 6, 12, 13),
          ...at(2, 6),
          ...load(9, 6),
          ...get(13),
          ...F32X4_MUL,
          ...load(10, 6),
          ...get(12),
          ...F32X4_MUL,
          ...F32X4_ADD,
          ...load(11, 6),
          ...F32X4_ADD,
          ...V128_STORE,
        ],
        [0, 1, 2],
      ),
    ],
  };
}

/** The module's four functions: batch statistics, normalise + ReLU, the gradient's sums, the gradient. */
function functions(): Func[] {
  return [statsFunction(), forwardFunction(), backwardSumsFunction(), backwardFunction()];
}

/** The module's bytes: memory imported as env.memory, the four functions exported by name. */
export function batchNormSimdModule(): Uint8Array {
  return wasmModule(functions());
}

/**
 * The SIMD passes on `memory` (a `WebAssembly.Memory`; one instance per memory), or undefined where they
 * cannot run: no memory, a shared memory (a threaded wasm build), or an engine without WebAssembly SIMD.
 */
export const batchNormSimd = simdInstances<BatchNormSimd>(batchNormSimdModule);
