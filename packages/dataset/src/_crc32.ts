// CRC-32 for the PNG decoder (its chunks), the cache (its checksum) and the sampler (the digest of its indices).

import * as zlib from 'node:zlib';
import type { Unchecked } from './_unchecked.js';

let crcTable: Uint32Array | undefined;

/** CRC-32 (as zlib, PNG and gzip use it). zlib's native one where Node has it (20.15+), else a table-driven one. */
export function crc32(data: Uint8Array, initial = 0): number {
  return typeof zlib.crc32 === 'function' ? zlib.crc32(data, initial) : portableCrc32(data, initial);
}

/** CRC-32 in JavaScript, for Node versions without `zlib.crc32`. */
export function portableCrc32(data: Uint8Array, initial = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table: Unchecked = crcTable; // indices are in range (see Unchecked)
  const bytes: Unchecked = data;
  let c = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
