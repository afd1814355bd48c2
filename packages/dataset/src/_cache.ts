import { randomBytes } from 'node:crypto';
import { constants, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Encoder } from 'cbor-x';
import { z } from 'zod';
import { crc32 } from './_crc32.js';
import { isProcessAlive } from './atomic.js';
import { CACHE_FORMAT_VERSION } from './cache-format.js';

/**
 * The cache file's layout, version {@link CACHE_FORMAT_VERSION}. It is a CBOR sequence (RFC 8742) of three
 * items, so any CBOR tool can read it:
 *
 * ```
 * d9 d9 f7                   tag 55799, "self-described CBOR" (the file's magic number) ...
 * 5b <u64>                   ... on a byte string with an 8-byte length: the pixels, N * H * W * 3 bytes, HWC
 * d8 18 5a <u32>             tag 24 (embedded CBOR) on a byte string with a 4-byte length ...
 * <header>                   ... holding the CBOR-encoded header map (see CacheHeader)
 * 44 <u32>                   a 4-byte byte string: CRC-32 of every byte before it
 * ```
 *
 * The pixels come first, at a fixed offset, so that they can be written while images are still being
 * decoded; the header's position follows from the pixels' length, so a stale cache is still recognised
 * from a few small reads. The pixels are one byte string, read straight into one Uint8Array; the lengths and
 * the final CRC detect a truncated or damaged file, which is then rebuilt.
 */

const MAGIC = 'litter-dataset-cache';
const PREFIX_BYTES = 12; // d9 d9 f7 5b + u64
const HEADER_HEAD_BYTES = 7; // d8 18 5a + u32
const TRAILER_BYTES = 5; // 44 + u32
/** Pixels are written in pieces of at least this size (except the last). */
const WRITE_CHUNK = 4 * 1024 * 1024;
/** Read and write pixels through a buffer of this size: small enough to stay in the CPU cache. */
const IO_CHUNK = 256 * 1024;

export interface CacheKey {
  /** 'auto': every image had the first image's size; otherwise the requested [width, height]. */
  size: 'auto' | [number, number];
  background: [number, number, number];
  /** 'auto': built from the labels; otherwise the pinned list. */
  vocabulary: 'auto' | string[];
  fullHash: boolean;
  skipBadImages: boolean;
}

export interface CacheHeader {
  magic: typeof MAGIC;
  formatVersion: number;
  /** SHA-256 over the format version, labels file, key and every image's stamp. */
  fingerprint: string;
  createdAt: string;
  /** SHA-256 of the labels file's bytes. */
  labelsHash: string;
  key: CacheKey;
  vocabulary: string[];
  width: number;
  height: number;
  channels: 3;
  /** Images in the cache (entries minus skipped ones). */
  count: number;
  /** Every entry's image, in entry order (skipped ones too, since they are stamped as well). */
  entries: string[];
  /** Entry indices of skipped images with the reason, ascending. */
  skipped: { index: number; reason: string }[];
  /** Per entry: size in bytes and modification time (ms) of the image file; SHA-256 (hex) with `fullHash`. */
  sizes: Float64Array;
  mtimes: Float64Array;
  hashes: string[] | null;
  labels: Float32Array;
  boxes: Float32Array;
  boxMask: Float32Array;
  pixelsByteLength: number;
}

/** @internal The header's schema (exported for tests). */
export const headerSchema = z.object({
  magic: z.literal(MAGIC),
  formatVersion: z.number(),
  fingerprint: z.string(),
  createdAt: z.string(),
  labelsHash: z.string(),
  key: z.object({
    size: z.union([z.literal('auto'), z.tuple([z.number(), z.number()])]),
    background: z.tuple([z.number(), z.number(), z.number()]),
    vocabulary: z.union([z.literal('auto'), z.array(z.string())]),
    fullHash: z.boolean(),
    skipBadImages: z.boolean(),
  }),
  vocabulary: z.array(z.string()),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  channels: z.literal(3),
  count: z.number().int().nonnegative(),
  entries: z.array(z.string()),
  skipped: z.array(z.object({ index: z.number().int().nonnegative(), reason: z.string() })),
  sizes: z.instanceof(Float64Array),
  mtimes: z.instanceof(Float64Array),
  hashes: z.array(z.string()).nullable(),
  labels: z.instanceof(Float32Array),
  boxes: z.instanceof(Float32Array),
  boxMask: z.instanceof(Float32Array),
  pixelsByteLength: z.number().int().nonnegative(),
});

/**
 * @internal `headerSchema.safeParse` for a header that plainly matches it (what this version writes), without zod:
 * the same checks, the same result (a new object with the schema's keys only); undefined for anything else,
 * which zod then judges. A process's first zod parse of a header with 2,000 entries takes 4-5 ms, this 0.1.
 */
export function plainHeader(value: unknown): { success: true; data: CacheHeader } | undefined {
  if (!isRecord(value)) return undefined;
  const h = value;
  const k = h.key;
  if (
    !(
      h.magic === MAGIC &&
      isNumber(h.formatVersion) &&
      typeof h.fingerprint === 'string' &&
      typeof h.createdAt === 'string' &&
      typeof h.labelsHash === 'string' &&
      isRecord(k) &&
      (k.size === 'auto' || isNumberTuple(k.size, 2)) &&
      isNumberTuple(k.background, 3) &&
      (k.vocabulary === 'auto' || isStringArray(k.vocabulary)) &&
      typeof k.fullHash === 'boolean' &&
      typeof k.skipBadImages === 'boolean' &&
      isStringArray(h.vocabulary) &&
      isCount(h.width) &&
      h.width > 0 &&
      isCount(h.height) &&
      h.height > 0 &&
      h.channels === 3 &&
      isCount(h.count) &&
      isStringArray(h.entries) &&
      Array.isArray(h.skipped) &&
      allAre(h.skipped, (s) => isRecord(s) && isCount(s.index) && typeof s.reason === 'string') &&
      h.sizes instanceof Float64Array &&
      h.mtimes instanceof Float64Array &&
      (h.hashes === null || isStringArray(h.hashes)) &&
      h.labels instanceof Float32Array &&
      h.boxes instanceof Float32Array &&
      h.boxMask instanceof Float32Array &&
      isCount(h.pixelsByteLength)
    )
  ) {
    return undefined;
  }
  const key = k as unknown as CacheKey;
  const header = h as unknown as CacheHeader;
  return {
    success: true,
    data: {
      magic: header.magic,
      formatVersion: header.formatVersion,
      fingerprint: header.fingerprint,
      createdAt: header.createdAt,
      labelsHash: header.labelsHash,
      key: {
        size: key.size === 'auto' ? 'auto' : [key.size[0], key.size[1]],
        background: [key.background[0], key.background[1], key.background[2]],
        vocabulary: key.vocabulary === 'auto' ? 'auto' : [...key.vocabulary],
        fullHash: key.fullHash,
        skipBadImages: key.skipBadImages,
      },
      vocabulary: [...header.vocabulary],
      width: header.width,
      height: header.height,
      channels: 3,
      count: header.count,
      entries: [...header.entries],
      skipped: header.skipped.map(({ index, reason }) => ({ index, reason })),
      sizes: header.sizes,
      mtimes: header.mtimes,
      hashes: header.hashes === null ? null : [...header.hashes],
      labels: header.labels,
      boxes: header.boxes,
      boxMask: header.boxMask,
      pixelsByteLength: header.pixelsByteLength,
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** What z.number() accepts. */
function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** What z.number().int().nonnegative() accepts. */
function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isNumberTuple(value: unknown, length: number): boolean {
  return Array.isArray(value) && value.length === length && allAre(value, isNumber);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && allAre(value, (item) => typeof item === 'string');
}

/** `every`, but holes (which `every` skips) fail. */
function allAre(values: unknown[], check: (value: unknown) => boolean): boolean {
  for (let i = 0; i < values.length; i++) if (!(i in values) || !check(values[i])) return false;
  return true;
}

// Plain CBOR maps (no cbor-x record extension), typed arrays as RFC 8746 tags.
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export type CacheOpenResult =
  | { status: 'missing' }
  /** Not a litter cache: never overwritten or deleted. */
  | { status: 'foreign'; reason: string }
  | { status: 'invalid'; reason: string }
  | {
      status: 'ok';
      header: CacheHeader;
      readPixels: () => Promise<Uint8Array | { reason: string }>;
      close: () => Promise<void>;
    };

/**
 * Opens a cache and reads its header. The pixels are read (and the whole file's CRC checked) only when
 * `readPixels` is called, so a stale cache costs a few kilobytes of reading.
 */
export async function openCache(path: string): Promise<CacheOpenResult> {
  let handle: FileHandle;
  try {
    // Non-blocking: a FIFO at the cache path must not make this wait for a writer.
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { status: 'missing' };
    if (code === 'EISDIR') return { status: 'foreign', reason: 'it is a folder' };
    return { status: 'invalid', reason: `the cache cannot be opened (${code})` };
  }
  const fail = async (reason: string): Promise<CacheOpenResult> => {
    await handle.close();
    return { status: 'invalid', reason };
  };
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      await handle.close();
      return { status: 'foreign', reason: 'it is not a regular file' };
    }
    const fileSize = stats.size;
    const magic = await readExactly(handle, 0, CACHE_MAGIC.length);
    if (!magic || !startsWith(magic, CACHE_MAGIC)) {
      await handle.close();
      return {
        status: 'foreign',
        reason: 'it is not a litter cache (its first bytes are not a cache header)',
      };
    }
    const prefix = await readExactly(handle, 0, PREFIX_BYTES);
    if (!prefix) return fail('the cache is truncated (prefix)');
    const pixelsByteLength = readUint64(prefix, 4);
    const headerHeadAt = PREFIX_BYTES + pixelsByteLength;
    if (fileSize < headerHeadAt + HEADER_HEAD_BYTES + TRAILER_BYTES) {
      return fail(`the cache is truncated (${fileSize} bytes, the pixels alone take ${headerHeadAt})`);
    }
    const headerHead = await readExactly(handle, headerHeadAt, HEADER_HEAD_BYTES);
    if (!headerHead || !startsWith(headerHead, [0xd8, 0x18, 0x5a])) {
      return fail('the cache is damaged (no header after the pixels)');
    }
    const headerLength = readUint32(headerHead, 3);
    const expectedSize = headerHeadAt + HEADER_HEAD_BYTES + headerLength + TRAILER_BYTES;
    if (fileSize !== expectedSize) {
      return fail(
        fileSize < expectedSize
          ? `the cache is truncated (${fileSize} of ${expectedSize} bytes)`
          : `the cache has ${fileSize - expectedSize} unexpected bytes at its end`,
      );
    }
    const headerBytes = await readExactly(handle, headerHeadAt + HEADER_HEAD_BYTES, headerLength);
    if (!headerBytes) return fail('the cache is truncated (header)');
    let decoded: unknown;
    try {
      decoded = encoder.decode(headerBytes);
    } catch (error) {
      return fail(`the cache header is damaged (${(error as Error).message})`);
    }
    const parsed = plainHeader(decoded) ?? headerSchema.safeParse(decoded);
    if (!parsed.success) {
      const format = (decoded as { formatVersion?: unknown } | null)?.formatVersion;
      if (typeof format === 'number' && format !== CACHE_FORMAT_VERSION) {
        return fail(
          `the cache has format ${format}, this version of @litter/dataset reads format ${CACHE_FORMAT_VERSION}`,
        );
      }
      return fail('the cache header is damaged (unexpected fields)');
    }
    const header = parsed.data as CacheHeader;
    if (header.pixelsByteLength !== pixelsByteLength) return fail('the cache is damaged (pixel length)');

    let closed = false;
    const close = async () => {
      if (!closed) {
        closed = true;
        await handle.close();
      }
    };
    const readPixels = async (): Promise<Uint8Array | { reason: string }> => {
      try {
        const pixels = new Uint8Array(pixelsByteLength);
        // Through a small reused buffer rather than straight into `pixels`: the CRC then runs on data still in
        // the CPU cache, and fresh memory is touched once, by the copy. Synchronous reads: one thread-pool
        // round trip per piece would cost more than the reads.
        const bounce = new Uint8Array(Math.min(IO_CHUNK, Math.max(1, pixelsByteLength)));
        let crc = crc32(prefix);
        for (let offset = 0; offset < pixelsByteLength; ) {
          const length = Math.min(bounce.length, pixelsByteLength - offset);
          const bytesRead = readSync(handle.fd, bounce, 0, length, PREFIX_BYTES + offset);
          if (bytesRead === 0) return { reason: 'the cache is truncated (pixels)' };
          const piece = bounce.subarray(0, bytesRead);
          crc = crc32(piece, crc);
          pixels.set(piece, offset);
          offset += bytesRead;
        }
        crc = crc32(headerBytes, crc32(headerHead, crc));
        // Synchronously too: a thread-pool round trip for 5 bytes would cost more than the read.
        const trailer = new Uint8Array(TRAILER_BYTES);
        const trailerRead = readSync(handle.fd, trailer, 0, TRAILER_BYTES, expectedSize - TRAILER_BYTES);
        if (trailerRead !== TRAILER_BYTES || trailer[0] !== 0x44) {
          return { reason: 'the cache is damaged (checksum block)' };
        }
        if (readUint32(trailer, 1) !== crc) return { reason: 'the cache is damaged (checksum mismatch)' };
        return pixels;
      } finally {
        // Not awaited (a failure to close a file opened for reading changes nothing).
        close().catch(() => {});
      }
    };
    return { status: 'ok', header, readPixels, close };
  } catch (error) {
    return fail(`the cache cannot be read (${(error as Error).message})`);
  }
}

/**
 * Writes a cache atomically, pixels first (possibly while they are still being decoded), then the header:
 * into a temporary file next to `path` (`<name>.tmp-<pid>-<random>`), renamed over `path` once complete. A crash
 * or SIGKILL of the process at any point leaves either the previous cache or none at `path`, never a partial
 * one: the rename is atomic and the written data is in the page cache, which outlives the process. Temporary
 * files left by killed processes are removed when the next write starts.
 *
 * With `durable`, the file is also flushed to disk (fsync) before the rename and the folder after it, so that
 * the same holds after a power loss or an operating system crash. Without it (the default), such a crash can
 * leave a damaged or empty file at `path`; its length and CRC checks then fail and it is rebuilt, so a damaged
 * cache is never trusted either way: `durable` only decides whether the previous cache survives a power loss.
 *
 * Use: {@link CacheWriter.begin} once the pixel buffer exists, {@link CacheWriter.advance} as leading images
 * are done, then {@link CacheWriter.finish} with the header, or {@link CacheWriter.abort}.
 *
 * Test hook: with the environment variable `LITTER_DATASET_TEST_WRITE_PAUSE_MS` set, the pixels are written
 * in 64 KiB pieces with that many milliseconds between them, so that a test can kill a writer mid-way.
 */
export class CacheWriter {
  private pixels: Uint8Array | undefined;
  private handle: FileHandle | undefined;
  private readonly temporary: string;
  /** Pixel bytes handed to the queue so far. */
  private queued = 0;
  private crc = 0;
  /** Writes run one after the other, in file order (the CRC is computed in that order too). */
  private queue: Promise<void> = Promise.resolve();
  private error: unknown;
  private readonly pause = Number(process.env.LITTER_DATASET_TEST_WRITE_PAUSE_MS ?? 0);
  /** See the class comment. */
  private readonly durable: boolean;
  /** Pixels pass through this small buffer on their way to the file (see `writePixels`). */
  private bounce: Uint8Array | undefined;

  constructor(
    readonly path: string,
    options: { durable?: boolean } = {},
  ) {
    this.durable = options.durable ?? false;
    this.temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  /** Whether {@link CacheWriter.begin} was called. */
  get begun(): boolean {
    return this.pixels !== undefined;
  }

  /** Opens the temporary file and writes the prefix; the pixels are `pixels` (all of it in the end). */
  begin(pixels: Uint8Array): void {
    if (this.pixels) return;
    this.pixels = pixels;
    const prefix = new Uint8Array(PREFIX_BYTES);
    prefix.set([0xd9, 0xd9, 0xf7, 0x5b], 0);
    writeUint64(prefix, 4, pixels.length);
    this.enqueue(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await removeStaleTemporaries(this.path);
      this.handle = await open(this.temporary, 'wx', 0o644);
      this.crc = crc32(prefix);
      await this.write(prefix);
    });
  }

  /** Queues the pixels up to byte `upTo` (they must be final). Small steps wait to be gathered into bigger ones. */
  advance(upTo: number, force = false): void {
    const pixels = this.pixels;
    if (!pixels || this.error !== undefined) return;
    const end = Math.min(upTo, pixels.length);
    if (end <= this.queued || (!force && end - this.queued < WRITE_CHUNK && end < pixels.length)) return;
    const piece = pixels.subarray(this.queued, end);
    this.queued = end;
    this.enqueue(() => this.writePixels(piece));
  }

  /** Writes the rest, the header and the CRC, flushes and renames into place. Returns the file's size. */
  async finish(header: CacheHeader): Promise<number> {
    const pixels = this.pixels;
    if (!pixels) throw new Error('CacheWriter.finish before begin');
    this.advance(pixels.length, true);
    const headerBytes = encoder.encode(header);
    const tail = new Uint8Array(HEADER_HEAD_BYTES + headerBytes.length + TRAILER_BYTES);
    tail.set([0xd8, 0x18, 0x5a], 0);
    writeUint32(tail, 3, headerBytes.length);
    tail.set(headerBytes, HEADER_HEAD_BYTES);
    tail[HEADER_HEAD_BYTES + headerBytes.length] = 0x44;
    this.enqueue(async () => {
      const crc = crc32(tail.subarray(0, HEADER_HEAD_BYTES + headerBytes.length), this.crc);
      writeUint32(tail, HEADER_HEAD_BYTES + headerBytes.length + 1, crc);
      await this.write(tail);
      const handle = this.handle!;
      if (this.durable) await handle.sync();
      await handle.close();
      this.handle = undefined;
      await rename(this.temporary, this.path);
    });
    await this.queue;
    if (this.error !== undefined) {
      await this.abort();
      throw this.error;
    }
    if (this.durable) await syncFolder(dirname(this.path));
    return PREFIX_BYTES + pixels.length + tail.length;
  }

  /** Stops and removes the temporary file. */
  async abort(): Promise<void> {
    this.error ??= new Error('aborted');
    await this.queue;
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    await unlink(this.temporary).catch(() => {});
  }

  private enqueue(step: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.error !== undefined) return;
      try {
        await step();
      } catch (error) {
        this.error = error;
      }
    });
  }

  /**
   * Writes pixels through a small reused buffer rather than straight from `pixels`, and checksums them there.
   * Pages that the decoding threads filled are mapped for user space only; the kernel reading them for
   * write() has to fault each one in again, which on virtual machines with costly page faults (the benchmark
   * machine: 6-10 us per 4 KiB page) took 60-90 ms of CPU for 42 MB, against a few milliseconds for the copy.
   */
  private async writePixels(piece: Uint8Array): Promise<void> {
    this.bounce ??= new Uint8Array(IO_CHUNK);
    const bounce = this.bounce;
    for (let offset = 0; offset < piece.length; ) {
      const length = Math.min(bounce.length, piece.length - offset);
      bounce.set(piece.subarray(offset, offset + length));
      const part = bounce.subarray(0, length);
      this.crc = crc32(part, this.crc);
      await this.write(part);
      offset += length;
    }
  }

  private async write(data: Uint8Array): Promise<void> {
    const handle = this.handle!;
    const piece = this.pause > 0 ? 64 * 1024 : data.length;
    for (let offset = 0; offset < data.length; ) {
      const { bytesWritten } = await handle.write(data, offset, Math.min(piece, data.length - offset));
      offset += bytesWritten;
      if (this.pause > 0) await new Promise((resolve) => setTimeout(resolve, this.pause));
    }
  }
}

/** Writes a whole cache at once (see {@link CacheWriter}). Returns the file's size. */
export async function writeCache(
  path: string,
  header: CacheHeader,
  pixels: Uint8Array,
  options: { durable?: boolean } = {},
): Promise<number> {
  const writer = new CacheWriter(path, options);
  writer.begin(pixels);
  return writer.finish(header);
}

/** Makes the rename durable. Some platforms cannot open or fsync a folder; the rename is atomic regardless. */
async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort.
  }
}

function startsWith(bytes: Uint8Array, expected: readonly number[]): boolean {
  return expected.every((value, i) => bytes[i] === value);
}

/** The first bytes of every cache file (and of its temporary file once anything is written). */
const CACHE_MAGIC = [0xd9, 0xd9, 0xf7, 0x5b] as const;

/**
 * What is at a cache path: nothing, a litter cache (recognised by its first bytes, damaged or not), something
 * else (`other`: a file litter did not write, never overwritten or deleted), or no regular file at all.
 */
export async function cacheFileKind(path: string): Promise<'missing' | 'cache' | 'other' | 'not-a-file'> {
  let handle: FileHandle;
  try {
    // Non-blocking: a FIFO must not make this wait for a writer.
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    return code === 'EISDIR' ? 'not-a-file' : 'other';
  }
  try {
    if (!(await handle.stat()).isFile()) return 'not-a-file';
    const head = new Uint8Array(CACHE_MAGIC.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return bytesRead === head.length && startsWith(head, CACHE_MAGIC) ? 'cache' : 'other';
  } finally {
    await handle.close();
  }
}

/**
 * The temporary files of killed writers of the cache at `path`: `<name>.tmp-<pid>-<8 hex digits>` whose
 * process is gone, holding a cache's first bytes or nothing yet (a writer killed before its first write).
 * Anything else with a similar name is not litter's and stays.
 */
export async function staleTemporaries(path: string): Promise<string[]> {
  const pattern = new RegExp(`^${escapeRegExp(basename(path))}\\.tmp-(\\d+)-[0-9a-f]{8}$`);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  const stale: string[] = [];
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || isProcessAlive(pid)) continue;
    const file = join(dirname(path), name);
    if ((await cacheFileKind(file)) === 'cache' || (await isEmptyFile(file))) stale.push(file);
  }
  return stale;
}

async function isEmptyFile(path: string): Promise<boolean> {
  const stats = await lstat(path).catch(() => undefined);
  return stats?.isFile() === true && stats.size === 0;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Deletes the temporary files of killed writers (see {@link staleTemporaries}). */
async function removeStaleTemporaries(path: string): Promise<void> {
  for (const file of await staleTemporaries(path)) await unlink(file).catch(() => {});
}

async function readExactly(
  handle: FileHandle,
  position: number,
  length: number,
): Promise<Uint8Array | undefined> {
  const buffer = new Uint8Array(length);
  let offset = 0;
  while (offset < length) {
    const { bytesRead } = await handle.read(buffer, offset, length - offset, position + offset);
    if (bytesRead === 0) return undefined;
    offset += bytesRead;
  }
  return buffer;
}

function readUint32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at);
}

function readUint64(bytes: Uint8Array, at: number): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(at));
}

function writeUint32(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(at, value);
}

function writeUint64(bytes: Uint8Array, at: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setBigUint64(at, BigInt(value));
}
