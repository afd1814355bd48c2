/*
 * A stride-s convolution in WebAssembly SIMD (f32x4) on tfjs-backend-wasm's heap, over an input already padded
 * (every tap of every output pixel inside it), so there are no borders: y[n, i, j, co] = sum over kh, kw, ci of
 * xp[n, i s + kh, j s + kw, ci] w[kh, kw, ci, co]. Tiles of 4 output pixels of a row x 8 output channels in
 * eight f32x4 registers; per input channel two loads of w's row and four splats of x. A row's last tile is
 * moved back to end at the row's end (it recomputes up to three pixels and writes the same values), so rows
 * of 4 or more pixels need no remainder loop. No weight packing: w is read as it lies ([kh, kw, ci, co]).
 *
 * conv(xp, w, y, images, rows, columns, xImage, xRow, xColumn, xTapRow, taps..., ciBytes, coBytes): see
 * {@link Conv2dSimd}; pointers and steps in bytes.
 */

import {
  addTo,
  assign,
  BLOCK,
  BR_0,
  BR_IF_1,
  countdown,
  END,
  get,
  I32,
  I32_ADD,
  I32_EQ,
  I32_LT_S,
  I32_MUL,
  i32Const,
  LOOP,
  multiplyAddTile,
  SELECT,
  set,
  simdInstances,
  stepUntil,
  sum,
  V128,
  V128_ZERO,
  v128Load32Splat,
  v128Store,
  type WasmFunction,
  wasmModule,
} from './_wasm-asm.js';

/** The module's function. */
export interface Conv2dSimd {
  /**
   * @param xp padded input at image 0, row 0, column 0
   * @param w filter [filterHeight, filterWidth, Ci, Co]
   * @param y output [images, rows, columns, Co]
   * @param xImage bytes from one padded image to the next
   * @param xRow bytes from one output row's first input row to the next's (stride x padded row)
   * @param xColumn bytes from one output column's first input pixel to the next's (stride x Ci x 4)
   * @param xTapRow bytes of one padded row
   * @param filterHeight taps down
   * @param filterWidth taps across
   * @param lastTile columns - 4 (the last tile's first column; at least 0)
   */
  conv(
    xp: number,
    w: number,
    y: number,
    images: number,
    rows: number,
    xImage: number,
    xRow: number,
    xColumn: number,
    xTapRow: number,
    filterHeight: number,
    filterWidth: number,
    lastTile: number,
    ciBytes: number,
    coBytes: number,
  ): void;
}

const [XP, W, Y, IMAGES, ROWS, X_IMAGE, X_ROW, X_COLUMN, X_TAP_ROW, KH, KW, LAST_TILE, CI_BYTES, CO_BYTES] = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
] as const;
// i32 locals.
const [XN, XI, J, YT, CO_OFF, WT, TAP_ROW, Q0, H, K, CI, N, I, NEXT] = [
  14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
];
/** The tile's four pixels' current input pointers. */
const QR = [28, 29, 30, 31] as const;
const I32_LOCALS = 18;
/** Accumulators: ACC_V[2 r + h] holds pixel r of the tile, output channels 4h .. 4h + 3 of the block. */
const ACC_V = [32, 33, 34, 35, 36, 37, 38, 39] as const;
const [B0, B1, A] = [40, 41, 42];
const V128_LOCALS = 11;
const REGISTERS = { acc: ACC_V, b0: B0, b1: B1, a: A };

/** One input channel of one tap: 4 x 8 multiply-adds. */
function channel(): number[] {
  const out = multiplyAddTile(WT, (r) => [...get(QR[r]!), ...v128Load32Splat(0)], REGISTERS);
  for (const q of QR) out.push(...get(q), ...i32Const(4), ...I32_ADD, ...set(q));
  return [...out, ...addTo(WT, CO_BYTES)];
}

/** Every tap of the tile's output-channel block at CO_OFF: acc = sum over kh, kw, ci. */
function taps(): number[] {
  return [
    ...ACC_V.flatMap((acc) => [...V128_ZERO, ...set(acc)]),
    ...assign(WT, sum(W, CO_OFF)),
    ...assign(TAP_ROW, get(Q0)),
    ...assign(H, get(KH)),
    ...countdown(H, [
      ...assign(QR[0], get(TAP_ROW)),
      ...assign(K, get(KW)),
      ...countdown(K, [
        // The tile's other pixels are one column step apart; each walks its tap's Ci values.
        ...[1, 2, 3].flatMap((r) => assign(QR[r]!, sum(QR[r - 1]!, X_COLUMN))),
        ...assign(CI, get(CI_BYTES)),
        ...countdown(CI, channel(), 4),
        // QR[0] has walked Ci values: the next tap (one column on) starts there.
      ]),
      ...addTo(TAP_ROW, X_TAP_ROW),
    ]),
  ];
}

/** Store the tile's accumulators at YT + CO_OFF (four pixels, coBytes apart). */
function storeTile(): number[] {
  const out: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (let h = 0; h < 2; h++) {
      out.push(...get(YT), ...get(CO_OFF), ...I32_ADD);
      for (let k = 0; k < r; k++) out.push(...get(CO_BYTES), ...I32_ADD);
      out.push(...get(ACC_V[2 * r + h]!), ...v128Store(16 * h));
    }
  }
  return out;
}

/** The tiles of one output row: columns J = 0, 4, 8, ... and last the row's final 4 (LAST_TILE). */
function row(): number[] {
  return [
    ...assign(J, i32Const(0)),
    ...BLOCK,
    ...LOOP,
    // Q0: the tile's first pixel's input; YT: its output.
    ...assign(Q0, [...get(XI), ...get(J), ...get(X_COLUMN), ...I32_MUL, ...I32_ADD]),
    ...assign(YT, [...get(Y), ...get(J), ...get(CO_BYTES), ...I32_MUL, ...I32_ADD]),
    ...assign(CO_OFF, i32Const(0)),
    ...stepUntil(CO_OFF, 32, CO_BYTES, [...taps(), ...storeTile()]),
    // Done after the last tile; else the next is J + 4, or LAST_TILE if that is less.
    ...get(J),
    ...get(LAST_TILE),
    ...I32_EQ,
    ...BR_IF_1,
    ...assign(NEXT, [...get(J), ...i32Const(4), ...I32_ADD]),
    ...assign(J, [...get(NEXT), ...get(LAST_TILE), ...get(NEXT), ...get(LAST_TILE), ...I32_LT_S, ...SELECT]),
    ...BR_0,
    ...END,
    ...END,
  ];
}

function convFunction(): WasmFunction {
  return {
    name: 'conv',
    params: 14,
    locals: [
      [I32_LOCALS, I32],
      [V128_LOCALS, V128],
    ],
    body: [
      ...assign(XN, get(XP)),
      ...assign(N, get(IMAGES)),
      ...countdown(N, [
        ...assign(XI, get(XN)),
        ...assign(I, get(ROWS)),
        ...countdown(I, [
          ...row(),
          ...addTo(XI, X_ROW),
          // Y moves on by a row of output pixels: (LAST_TILE + 4) x coBytes.
          ...assign(Y, [
            ...get(Y),
            ...get(LAST_TILE),
            ...i32Const(4),
            ...I32_ADD,
            ...get(CO_BYTES),
            ...I32_MUL,
            ...I32_ADD,
          ]),
        ]),
        ...addTo(XN, X_IMAGE),
      ]),
    ],
  };
}

/** The module's bytes. */
export function conv2dSimdModule(): Uint8Array {
  return wasmModule([convFunction()]);
}

/** The kernel on `memory` (tfjs-backend-wasm's), or undefined where it cannot run. */
export const conv2dSimd = simdInstances<Conv2dSimd>(conv2dSimdModule);
