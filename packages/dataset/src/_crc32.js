// @ts-check
// Plain JavaScript for the same reason as _png.js: decoding threads use it (PNG chunks), as do the cache (its
// checksum) and the sampler (the digest of its indices).
import * as zlib from 'node:zlib';

/** @type {Uint32Array | undefined} */
let crcTable;

/**
 * CRC-32 (as zlib, PNG and gzip use it). zlib's native one where Node has it (20.15+), else a table-driven one.
 * @param {Uint8Array} data
 * @param {number} [initial]
 * @returns {number}
 */
export function crc32(data, initial = 0) {
  return typeof zlib.crc32 === 'function' ? zlib.crc32(data, initial) : portableCrc32(data, initial);
}

/**
 * CRC-32 in JavaScript, for Node versions without `zlib.crc32`.
 * @param {Uint8Array} data
 * @param {number} [initial]
 * @returns {number}
 */
export function portableCrc32(data, initial = 0) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  /** @type {any} */
  const table = crcTable; // untyped: indices are in range (see unfilter)
  /** @type {any} */
  const bytes = data;
  let c = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
