// Reads one image file (inside the dataset folder, stamped from the open descriptor) and hands its bytes to the
// PNG decoder. Decoding threads (`_decode-worker.ts`) and this thread alike.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, readSync } from 'node:fs';
import { openInside } from './_files.js';
import { CorruptImageError, type DecodeTarget, decodePngInto, type PngResult } from './_png.js';
import { imageFileProblem } from './limits.js';

export interface FileStamp {
  /** Bytes. */
  size: number;
  /** Modification time. */
  mtimeMs: number;
  /** SHA-256 of the content (hex), when asked for. */
  hash?: string;
}

export type FileResult =
  | (FileStamp & PngResult)
  | { status: 'missing'; reason: string }
  | { status: 'outside'; reason: string }
  | (FileStamp & { status: 'corrupt'; reason: string });

/**
 * Reads one image file (stamping it from the open descriptor, so the stamp is of the bytes read) and decodes
 * it into `out` when {@link decodePngInto} handles it. A file that links out of the dataset folder is not
 * read (`outside`, with its real path as the reason).
 *
 * @param root see {@link openInside}
 */
export function decodeFileInto(
  path: string,
  out: Uint8Array,
  offset: number,
  target: DecodeTarget,
  fullHash: boolean,
  root: { realRoot: string; folders: Map<string, string> },
): FileResult {
  let fd: number;
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
  let stamp: FileStamp = { size: 0, mtimeMs: 0 };
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
    const code = (error as NodeJS.ErrnoException).code;
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
 */
function readWhole(fd: number, size: number): Uint8Array {
  if (readBuffer.length < size) readBuffer = new Uint8Array(Math.max(size, readBuffer.length * 2));
  let length = 0;
  while (length < size) {
    const n = readSync(fd, readBuffer, length, size - length, length);
    if (n === 0) break;
    length += n;
  }
  return readBuffer.subarray(0, length);
}

/** Why a file could not be opened, in words. */
export function openFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'the file does not exist' : `cannot open it (${code ?? String(error)})`;
}
