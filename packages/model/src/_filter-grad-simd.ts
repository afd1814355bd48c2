/*
 * A convolution's filter gradient in WebAssembly SIMD (f32x4) on tfjs-backend-wasm's heap, without patches
 * (im2col) or packed operands: for one filter tap, dW_tap[ci, co] += sum over the output pixels p whose input
 * pixel x(p, tap) lies inside the image of x[x(p, tap), ci] dy[p, co]. Those pixels form a rectangle in every
 * image (rows i0..i1, columns j0..j1 of dy), and the input pixel moves by the stride as p moves, so one call
 * walks images x rows x columns with constant byte steps. The sum runs in tiles of 4 input x 8 output
 * channels held in eight f32x4 registers, each x value loaded as a splat (channels last: Ci and Co multiples
 * of 4 and 8).
 *
 * tap(x, dy, acc, images, rows, columns, xImage, xRow, xColumn, dyImage, dyRow, dyColumn, ciBytes, coBytes):
 * every argument an i32, pointers and steps in bytes; acc is the tap's [Ci, Co] block of dW (float32, added
 * to). The caller keeps x's and dy's images of one call within cache size.
 */

import {
  addTo,
  assign,
  countdown,
  get,
  I32,
  I32_ADD,
  I32_SHL,
  i32Const,
  multiplyAddTile,
  set,
  simdInstances,
  stepUntil,
  sum,
  V128,
  v128Load,
  v128Load32Splat,
  v128Store,
  type WasmFunction,
  wasmModule,
} from './_wasm-asm.js';

/** The module's function (see the file's comment). */
export interface FilterGradSimd {
  tap(
    x: number,
    dy: number,
    acc: number,
    images: number,
    rows: number,
    columns: number,
    xImage: number,
    xRow: number,
    xColumn: number,
    dyImage: number,
    dyRow: number,
    dyColumn: number,
    ciBytes: number,
    coBytes: number,
  ): void;
}

// Arguments 0-13 as in FilterGradSimd.tap, then the locals.
const [
  X,
  DY,
  ACC,
  IMAGES,
  ROWS,
  COLUMNS,
  X_IMAGE,
  X_ROW,
  X_COLUMN,
  DY_IMAGE,
  DY_ROW,
  DY_COLUMN,
  CI_BYTES,
  CO_BYTES,
] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13] as const;
const [CI_OFF, CO_OFF, ACC_CI, XN, DYN, XI, DYI, XP, DYP, N, I, J] = [
  14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
];
/** The tile's four accumulator rows' addresses. */
const ROW = [26, 27, 28, 29] as const;
const I32_LOCALS = 16;
/** Accumulators: ACC_V[2 r + h] holds input channel r, output channels 4h .. 4h + 3 of the tile. */
const ACC_V = [30, 31, 32, 33, 34, 35, 36, 37] as const;
const [B0, B1, A] = [38, 39, 40];
const V128_LOCALS = 11;
const REGISTERS = { acc: ACC_V, b0: B0, b1: B1, a: A };

/** One output pixel: 8 x 4 multiply-adds into the tile. */
function pixel(): number[] {
  const out = multiplyAddTile(DYP, (r) => [...get(XP), ...v128Load32Splat(4 * r)], REGISTERS);
  return [...out, ...addTo(XP, X_COLUMN), ...addTo(DYP, DY_COLUMN)];
}

/** images x rows x columns of pixels for the tile at (CI_OFF, CO_OFF). */
function pixels(): number[] {
  return [
    ...assign(XN, sum(X, CI_OFF)),
    ...assign(DYN, sum(DY, CO_OFF)),
    ...assign(N, get(IMAGES)),
    ...countdown(N, [
      ...assign(XI, get(XN)),
      ...assign(DYI, get(DYN)),
      ...assign(I, get(ROWS)),
      ...countdown(I, [
        ...assign(XP, get(XI)),
        ...assign(DYP, get(DYI)),
        ...assign(J, get(COLUMNS)),
        ...countdown(J, pixel()),
        ...addTo(XI, X_ROW),
        ...addTo(DYI, DY_ROW),
      ]),
      ...addTo(XN, X_IMAGE),
      ...addTo(DYN, DY_IMAGE),
    ]),
  ];
}

/** Load (or store) the tile's accumulators from (to) its four rows of acc. */
function tileMemory(store: boolean): number[] {
  const out: number[] = [...assign(ROW[0], sum(ACC_CI, CO_OFF))];
  for (let r = 1; r < 4; r++) out.push(...assign(ROW[r]!, sum(ROW[r - 1]!, CO_BYTES)));
  for (let r = 0; r < 4; r++) {
    for (let h = 0; h < 2; h++) {
      const acc = ACC_V[2 * r + h]!;
      out.push(
        ...(store
          ? [...get(ROW[r]!), ...get(acc), ...v128Store(16 * h)]
          : [...get(ROW[r]!), ...v128Load(16 * h), ...set(acc)]),
      );
    }
  }
  return out;
}

function tapFunction(): WasmFunction {
  return {
    name: 'tap',
    params: 14,
    locals: [
      [I32_LOCALS, I32],
      [V128_LOCALS, V128],
    ],
    body: [
      ...assign(CI_OFF, i32Const(0)),
      ...assign(ACC_CI, get(ACC)),
      ...stepUntil(CI_OFF, 16, CI_BYTES, [
        ...assign(CO_OFF, i32Const(0)),
        ...stepUntil(CO_OFF, 32, CO_BYTES, [...tileMemory(false), ...pixels(), ...tileMemory(true)]),
        // The next four input channels' rows of acc.
        ...assign(ACC_CI, [...get(ACC_CI), ...get(CO_BYTES), ...i32Const(2), ...I32_SHL, ...I32_ADD]),
      ]),
    ],
  };
}

/** The module's bytes. */
export function filterGradSimdModule(): Uint8Array {
  return wasmModule([tapFunction()]);
}

/** The kernel on `memory` (tfjs-backend-wasm's), or undefined where it cannot run. */
export const filterGradSimd = simdInstances<FilterGradSimd>(filterGradSimdModule);
