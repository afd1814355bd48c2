/**
 * @litter/dataset/testing: hostile inputs for tests (of this package and of programs that use it), built at test
 * time so that nothing large is committed. Not part of the dataset API.
 */
import { crc32 } from './_crc32.js';

/**
 * A zlib stream that inflates to at least `bytes` zero bytes (one literal 0, then length-258 copies at
 * distance 1, in one fixed-Huffman block): 13 bits per 258 bytes, so 2 GiB of output take 13 MB, built in
 * tens of milliseconds. The Adler-32 at its end is right, so a decoder that inflates everything accepts it.
 */
export function zlibBomb(bytes: number): Buffer {
  const copies = Math.max(0, Math.ceil((bytes - 1) / 258));
  const total = 1 + copies * 258;
  const out = Buffer.alloc(2 + Math.ceil((3 + 8 + copies * 13 + 7) / 8) + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let at = 2;
  let bit = 0;
  let acc = 0;
  /** Writes `count` bits of `value`, least significant first (deflate's header fields and extra bits). */
  const bits = (value: number, count: number) => {
    for (let i = 0; i < count; i++) {
      acc |= ((value >> i) & 1) << bit;
      if (++bit === 8) {
        out[at++] = acc;
        acc = 0;
        bit = 0;
      }
    }
  };
  /** Writes a Huffman code, most significant bit first. */
  const code = (value: number, count: number) => {
    for (let i = count - 1; i >= 0; i--) bits((value >> i) & 1, 1);
  };
  bits(1, 1); // BFINAL
  bits(1, 2); // BTYPE 01: fixed Huffman codes
  code(0b00110000, 8); // literal 0
  for (let i = 0; i < copies; i++) {
    code(0b11000101, 8); // length code 285: 258 bytes
    code(0, 5); // distance code 0: distance 1
  }
  code(0, 7); // end of block
  if (bit > 0) out[at++] = acc;
  const adler = (((total % 65521) << 16) | 1) >>> 0; // zeros: a stays 1, b is the length
  out.writeUInt32BE(adler, at);
  return out.subarray(0, at + 4);
}

function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}

/** Options of {@link pngBomb}. */
export interface PngBombOptions {
  width: number;
  height: number;
  /** Bytes the image data inflates to (the header needs `height * (1 + width * 3)`). */
  inflated: number;
  /** Extra chunks before the data, e.g. a gAMA chunk that sends the image to sharp. */
  chunks?: { type: string; data: Uint8Array }[];
}

/** An 8-bit RGB PNG whose header says `width` x `height` and whose data inflates to `inflated` bytes. */
export function pngBomb(options: PngBombOptions): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(options.width, 0);
  ihdr.writeUInt32BE(options.height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(options.chunks ?? []).map((c) => chunk(c.type, c.data)),
    chunk('IDAT', zlibBomb(options.inflated)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** A gAMA chunk (gamma 1/2.2): harmless to sharp, but it sends a PNG past the built-in decoder. */
export const GAMA = { type: 'gAMA', data: Uint8Array.of(0, 0, 0xb1, 0x8f) };
