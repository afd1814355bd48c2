// @ts-check
// Plain JavaScript for the same reason as _png.js: decoding threads use it. Reads one image file (inside the
// dataset folder, stamped from the open descriptor) and hands its bytes to the PNG decoder.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, readSync } from 'node:fs';
import { openInside } from './_files.js';
import { CorruptImageError, decodePngInto } from './_png.js';
import { imageFileProblem } from './limits.js';

/**
 * @typedef {object} FileStamp
 * @property {number} size bytes
 * @property {number} mtimeMs modification time
 * @property {string} [hash] SHA-256 of the content (hex), when asked for
 */

/**
 * @typedef {(FileStamp & import('./_png.js').PngResult)
 *   | { status: 'missing', reason: string }
 *   | { status: 'outside', reason: string }
 *   | (FileStamp & { status: 'corrupt', reason: string })} FileResult
 */

/**
 * Reads one image file (stamping it from the open descriptor, so the stamp is of the bytes read) and decodes
 * it into `out` when {@link decodePngInto} handles it. A file that links out of the dataset folder is not
 * read (`outside`, with its real path as the reason).
 *
 * @param {string} path
 * @param {Uint8Array} out
 * @param {number} offset
 * @param {import('./_png.js').DecodeTarget} target
 * @param {boolean} fullHash
 * @param {{ realRoot: string, folders: Map<string, string> }} root see {@link openInside}
 * @returns {FileResult}
 */
export function decodeFileInto(path, out, offset, target, fullHash, root) {
  let fd;
  try {
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer (fstat rejects it below).
    const opened = openInside(
      root.realRoot,
      path,
      root.folders,
      constants.O_RDONLY | (constants.O_NONBLOCK ?? 0),
    );
    if (!opened.inside) return { status: 'outside', reason: opened.path };
    fd = opened.fd;
  } catch (error) {
    return { status: 'missing', reason: openFailure(error) };
  }
  /** @type {FileStamp} */
  let stamp = { size: 0, mtimeMs: 0 };
  try {
    const stats = fstatSync(fd);
    stamp = { size: stats.size, mtimeMs: stats.mtimeMs };
    if (!stats.isFile()) return { ...stamp, status: 'corrupt', reason: 'it is not a regular file' };
    const tooLarge = imageFileProblem(stats.size);
    if (tooLarge) return { ...stamp, status: 'corrupt', reason: tooLarge };
    const bytes = readWhole(fd, stats.size);
    if (fullHash) stamp.hash = createHash('sha256').update(bytes).digest('hex');
    return { ...stamp, ...decodePngInto(bytes, out, offset, target) };
  } catch (error) {
    if (error instanceof CorruptImageError) return { ...stamp, status: 'corrupt', reason: error.message };
    const code = /** @type {NodeJS.ErrnoException} */ (error).code;
    return { ...stamp, status: 'corrupt', reason: code ? `cannot read it (${code})` : String(error) };
  } finally {
    closeSync(fd);
  }
}

/** A read buffer reused from file to file (one per thread), grown as needed. */
let readBuffer = new Uint8Array(64 * 1024);

/**
 * The file's `size` bytes (as fstat gave them, which is what the stamp records), in the reused buffer: valid
 * until the next call. A file that shrank meanwhile gives fewer bytes.
 * @param {number} fd
 * @param {number} size
 * @returns {Uint8Array}
 */
function readWhole(fd, size) {
  if (readBuffer.length < size) readBuffer = new Uint8Array(Math.max(size, readBuffer.length * 2));
  let length = 0;
  while (length < size) {
    const n = readSync(fd, readBuffer, length, size - length, length);
    if (n === 0) break;
    length += n;
  }
  return readBuffer.subarray(0, length);
}

/**
 * Why a file could not be opened, in words.
 * @param {unknown} error
 */
export function openFailure(error) {
  const code = /** @type {NodeJS.ErrnoException} */ (error).code;
  return code === 'ENOENT' ? 'the file does not exist' : `cannot open it (${code ?? String(error)})`;
}
