// Decoding only (on the decoding threads and in this thread): reading files is `_image-file.ts`, the CRC
// `_crc32.ts`.
//
// A decoder for the PNGs Blender writes (8-bit RGB or RGBA, not interlaced) that produces exactly what sharp
// produces for them (the tests compare both byte for byte), about three times faster for small renders
// because it skips libvips' per-image set-up. Anything else - 16-bit, grey, palette, interlaced, colour
// profiles, gamma, transparency keys, JPEG - is answered with `fallback` and goes to sharp.

import * as zlib from 'node:zlib';
import { crc32 } from './_crc32.js';
import type { Unchecked } from './_unchecked.js';
import { imageSizeProblem } from './limits.js';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Benchmark hook: with the environment variable `LITTER_DATASET_BENCH_SHARP_ONLY=1`, every image goes to sharp,
 * so that `pnpm bench:dataset` can time a cold build without this decoder (decoding threads see it too).
 */
const SHARP_ONLY = process.env.LITTER_DATASET_BENCH_SHARP_ONLY === '1';

/**
 * Ancillary chunks that change nothing about the pixels of an 8-bit RGB(A) image as sharp decodes it. Any
 * other ancillary chunk (gAMA, cHRM, iCCP, tRNS, sBIT, eXIf, acTL, ...) sends the image to sharp.
 */
const HARMLESS = new Set(
  ['pHYs', 'tEXt', 'zTXt', 'iTXt', 'tIME', 'bKGD', 'sRGB', 'PLTE', 'hIST', 'sPLT'].map(typeCode),
);
/** Chunk types as the big-endian 32-bit numbers of their four letters (no string per chunk). */
const IHDR = typeCode('IHDR');
const IDAT = typeCode('IDAT');
const IEND = typeCode('IEND');

/** @param type four ASCII letters */
function typeCode(type: string): number {
  return (
    ((type.charCodeAt(0) << 24) |
      (type.charCodeAt(1) << 16) |
      (type.charCodeAt(2) << 8) |
      type.charCodeAt(3)) >>>
    0
  );
}

function typeName(code: number): string {
  return String.fromCharCode(code >>> 24, (code >>> 16) & 255, (code >>> 8) & 255, code & 255);
}

/** A file that is a PNG but a broken one. */
export class CorruptImageError extends Error {}

/** Width and height from a PNG's header, or undefined when `bytes` is not a PNG. */
export function readPngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (!isPng(bytes) || bytes.length < 24) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452) return undefined; // 'IHDR'
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function isPng(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return false;
  return true;
}

export interface DecodeTarget {
  /** Pixels per row of the output. */
  width: number;
  /** Rows of the output. */
  height: number;
  /** Whether an image of another size may be resized (by sharp) or is an error. */
  resize: boolean;
  /** RGB that transparent pixels are flattened onto. */
  background: readonly [number, number, number];
}

export type PngResult =
  | { status: 'ok' }
  | { status: 'fallback'; reason: string }
  | { status: 'size'; width: number; height: number };

/**
 * Decodes a PNG into `out` at `offset` as `target.height` rows of `target.width` RGB pixels, when this decoder
 * handles it and it has the target size. Otherwise returns `fallback` (for sharp) or `size` (a mismatch that
 * must not be resized).
 *
 * @param bytes the file
 * @throws {CorruptImageError} when the file is a broken PNG
 */
export function decodePngInto(
  bytes: Uint8Array,
  out: Uint8Array,
  offset: number,
  target: DecodeTarget,
): PngResult {
  if (SHARP_ONLY) return { status: 'fallback', reason: 'LITTER_DATASET_BENCH_SHARP_ONLY is set' };
  if (!isPng(bytes)) return { status: 'fallback', reason: 'not a PNG' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos + 12 <= bytes.length) {
    const length = view.getUint32(pos);
    const end = pos + 12 + length;
    if (end > bytes.length) throw new CorruptImageError('the file is truncated');
    const type = view.getUint32(pos + 4);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + length)) !== view.getUint32(pos + 8 + length)) {
      throw new CorruptImageError(`the ${typeName(type)} chunk fails its CRC check`);
    }
    const data = bytes.subarray(pos + 8, pos + 8 + length);
    if (pos === 8 && type !== IHDR) throw new CorruptImageError('the IHDR chunk is missing');
    if (type === IHDR) {
      if (length !== 13) throw new CorruptImageError('the IHDR chunk has a wrong length');
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      const bitDepth = view.getUint8(pos + 16);
      colorType = view.getUint8(pos + 17);
      if (width === 0 || height === 0) throw new CorruptImageError('the image is empty');
      const tooLarge = imageSizeProblem(width, height);
      if (tooLarge) throw new CorruptImageError(tooLarge);
      if (data[10] !== 0 || data[11] !== 0)
        throw new CorruptImageError('unknown compression or filter method');
      if (bitDepth !== 8 || (colorType !== 2 && colorType !== 6) || data[12] !== 0) {
        return { status: 'fallback', reason: 'not 8-bit RGB(A) or interlaced' };
      }
      if (width !== target.width || height !== target.height) {
        return target.resize
          ? { status: 'fallback', reason: 'needs resizing' }
          : { status: 'size', width, height };
      }
    } else if (type === IDAT) {
      idat.push(data);
    } else if (type === IEND) {
      ended = true;
      break;
    } else if (!HARMLESS.has(type)) {
      return { status: 'fallback', reason: `has a ${typeName(type)} chunk` };
    }
    pos = end;
  }
  if (!ended) throw new CorruptImageError('the file is truncated (no IEND chunk)');
  if (idat.length === 0) throw new CorruptImageError('the image has no data (no IDAT chunk)');

  const channels = colorType === 6 ? 4 : 3;
  const stride = width * channels;
  const expected = height * (stride + 1);
  let raw: Buffer;
  try {
    // At most the header's size: a stream that inflates beyond it (a "zip bomb") stops there, so that time and
    // memory are bounded by the declared size, not by the stream.
    raw = zlib.inflateSync(idat.length === 1 ? idat[0]! : joinChunks(idat), {
      chunkSize: Math.max(64, Math.min(expected + 1, 64 * 1024 * 1024)),
      maxOutputLength: expected,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new CorruptImageError(
        `the compressed data inflates beyond the ${expected} bytes that its ${width}x${height} header needs`,
      );
    }
    throw new CorruptImageError(`the compressed data is broken (${(error as Error).message})`);
  }
  if (raw.length !== expected) {
    throw new CorruptImageError(`the image data has ${raw.length} bytes, ${expected} expected`);
  }
  if (channels === 3) {
    unfilterInto(raw, out, offset, width, height);
  } else {
    unfilter(raw, width, height, 4);
    // The same rounding as libvips' flatten (sharp): floor((c * a + bg * (255 - a)) / 255).
    const [r0, g0, b0] = target.background;
    const rowBytes = width * 3;
    const rgba: Unchecked = raw;
    for (let y = 0; y < height; y++) {
      let i = y * (stride + 1) + 1;
      let o = offset + y * rowBytes;
      for (let x = 0; x < width; x++, i += 4, o += 3) {
        const a = rgba[i + 3];
        const na = 255 - a;
        out[o] = ((rgba[i] * a + r0 * na) / 255) | 0;
        out[o + 1] = ((rgba[i + 1] * a + g0 * na) / 255) | 0;
        out[o + 2] = ((rgba[i + 2] * a + b0 * na) / 255) | 0;
      }
    }
  }
  return { status: 'ok' };
}

/** Where {@link joinChunks} puts the IDAT chunks of an image (one per thread), grown as needed. */
let idatBuffer = new Uint8Array(0);

/**
 * The chunks one after the other, in a buffer reused from image to image (valid until the next call): most
 * renders split their data over 2-4 IDAT chunks, and `Buffer.concat` would allocate 10-30 KB per image.
 */
function joinChunks(chunks: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  if (idatBuffer.length < length) idatBuffer = new Uint8Array(Math.max(length, idatBuffer.length * 2));
  let at = 0;
  for (const chunk of chunks) {
    idatBuffer.set(chunk, at);
    at += chunk.length;
  }
  return idatBuffer.subarray(0, length);
}

/** Scratch row of {@link unfilterInto} (one per thread), grown as needed. */
let rowBuffer = new Uint8Array(0);
/**
 * Reverses PNG's filters of an 8-bit RGB image from `raw` (rows of 1 + width * 3 bytes) straight into `out` at
 * `offset` (rows of width * 3 bytes), reading the previous row from `out`: no second pass to drop the filter
 * bytes.
 */
function unfilterInto(source: Uint8Array, target: Uint8Array, offset: number, width: number, height: number) {
  const raw: Unchecked = source;
  const out: Unchecked = target;
  const bpp = 3;
  const stride = width * bpp;
  // Up rows (most rows of a render) four bytes at a time when the rows of `out` are 4-byte aligned.
  const byWords = stride % 4 === 0 && (out.byteOffset + offset) % 4 === 0;
  let words: Unchecked;
  let row: Unchecked;
  let rowWords: Unchecked;
  if (byWords) {
    // A view per image rather than one kept in this module, which would keep the last output alive.
    words = new Int32Array(target.buffer, 0, target.buffer.byteLength >> 2);
    if (rowBuffer.length < stride) rowBuffer = new Uint8Array(stride);
    row = rowBuffer;
    rowWords = new Int32Array(row.buffer, 0, stride >> 2);
  }
  const strideWords = stride >> 2;
  for (let y = 0; y < height; y++) {
    const s = y * (stride + 1) + 1; // this row's bytes in raw
    const o = offset + y * stride; // this row in out
    const p = o - stride; // the previous row in out (only read when y > 0)
    const filter = raw[s - 1];
    if (filter === 0 || (filter === 2 && y === 0)) {
      out.set(raw.subarray(s, s + stride), o);
    } else if (filter === 2 && byWords) {
      // Up: bytewise sums without carries between bytes, on an aligned copy of the row (raw's rows start at
      // odd offsets).
      row.set(raw.subarray(s, s + stride));
      const o4 = (out.byteOffset + o) >> 2;
      const p4 = o4 - strideWords;
      for (let i = 0; i < strideWords; i++) {
        const a = rowWords[i];
        const b = words[p4 + i];
        words[o4 + i] = ((a & 0x7f7f7f7f) + (b & 0x7f7f7f7f)) ^ ((a ^ b) & 0x80808080);
      }
    } else if (filter === 1 || (filter === 4 && y === 0)) {
      // Sub (and Paeth with no row above, which is Sub)
      for (let i = 0; i < bpp; i++) out[o + i] = raw[s + i];
      for (let i = bpp; i < stride; i++) out[o + i] = (raw[s + i] + out[o + i - bpp]) & 255;
    } else if (filter === 2) {
      for (let i = 0; i < stride; i++) out[o + i] = (raw[s + i] + out[p + i]) & 255;
    } else if (filter === 3) {
      if (y === 0) {
        for (let i = 0; i < bpp; i++) out[o + i] = raw[s + i];
        for (let i = bpp; i < stride; i++) out[o + i] = (raw[s + i] + (out[o + i - bpp] >> 1)) & 255;
      } else {
        for (let i = 0; i < bpp; i++) out[o + i] = (raw[s + i] + (out[p + i] >> 1)) & 255;
        for (let i = bpp; i < stride; i++)
          out[o + i] = (raw[s + i] + ((out[o + i - bpp] + out[p + i]) >> 1)) & 255;
      }
    } else if (filter === 4) {
      // Paeth, a pixel at a time with its left (a) and upper-left (c) neighbours in locals rather than read
      // back from `out`. Left of the first pixel both are 0. The predictor is chosen without branches (sign
      // masks), as the choice changes from byte to byte in a render and mispredicted branches cost more
      // than the arithmetic.
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let c0 = 0;
      let c1 = 0;
      let c2 = 0;
      for (let i = 0; i < stride; i += 3) {
        const b0 = out[p + i];
        const b1 = out[p + i + 1];
        const b2 = out[p + i + 2];
        a0 = (raw[s + i] + paeth(a0, b0, c0)) & 255;
        a1 = (raw[s + i + 1] + paeth(a1, b1, c1)) & 255;
        a2 = (raw[s + i + 2] + paeth(a2, b2, c2)) & 255;
        out[o + i] = a0;
        out[o + i + 1] = a1;
        out[o + i + 2] = a2;
        c0 = b0;
        c1 = b1;
        c2 = b2;
      }
    } else {
      throw new CorruptImageError(`row ${y} has an unknown filter type ${filter}`);
    }
  }
}

/**
 * @internal PNG's Paeth predictor of a byte from its left (a), upper (b) and upper-left (c) neighbours: whichever is
 * closest to a + b - c, ties going to a, then b. Branch-free: (x >> 31) is -1 for a negative x, else 0.
 */
export function paeth(a: number, b: number, c: number): number {
  const da = b - c; // p - a
  const db = a - c; // p - b
  const dc = da + db; // p - c
  const pa = (da ^ (da >> 31)) - (da >> 31);
  const pb = (db ^ (db >> 31)) - (db >> 31);
  const pc = (dc ^ (dc >> 31)) - (dc >> 31);
  const notA = ((pb - pa) | (pc - pa)) >> 31; // -1 when pa > pb or pa > pc
  const bOrC = b ^ ((b ^ c) & ((pc - pb) >> 31)); // c when pb > pc
  return a ^ ((a ^ bOrC) & notA);
}

/**
 * Reverses PNG's per-row filters in place. Row y starts at y * (stride + 1) with its filter type byte.
 * @param bpp bytes per pixel
 */
function unfilter(bytes: Uint8Array, width: number, height: number, bpp: number) {
  const raw: Unchecked = bytes;
  const stride = width * bpp;
  for (let y = 0; y < height; y++) {
    const filterAt = y * (stride + 1);
    const o = filterAt + 1; // this row
    const p = o - stride - 1; // the previous row (only read when y > 0)
    const filter = raw[filterAt];
    switch (filter) {
      case 0:
        break;
      case 1: // Sub
        for (let i = bpp; i < stride; i++) raw[o + i] = (raw[o + i] + raw[o + i - bpp]) & 255;
        break;
      case 2: // Up
        if (y > 0) for (let i = 0; i < stride; i++) raw[o + i] = (raw[o + i] + raw[p + i]) & 255;
        break;
      case 3: // Average
        if (y === 0) {
          for (let i = bpp; i < stride; i++) raw[o + i] = (raw[o + i] + (raw[o + i - bpp] >> 1)) & 255;
        } else {
          for (let i = 0; i < bpp; i++) raw[o + i] = (raw[o + i] + (raw[p + i] >> 1)) & 255;
          for (let i = bpp; i < stride; i++)
            raw[o + i] = (raw[o + i] + ((raw[o + i - bpp] + raw[p + i]) >> 1)) & 255;
        }
        break;
      case 4: // Paeth
        if (y === 0) {
          // Paeth with no row above is Sub.
          for (let i = bpp; i < stride; i++) raw[o + i] = (raw[o + i] + raw[o + i - bpp]) & 255;
        } else {
          for (let i = 0; i < bpp; i++) raw[o + i] = (raw[o + i] + raw[p + i]) & 255;
          for (let i = bpp; i < stride; i++) {
            raw[o + i] = (raw[o + i] + paeth(raw[o + i - bpp], raw[p + i], raw[p + i - bpp])) & 255;
          }
        }
        break;
      default:
        throw new CorruptImageError(`row ${y} has an unknown filter type ${filter}`);
    }
  }
}
