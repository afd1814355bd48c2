import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Encoder } from 'cbor-x';
import { z } from 'zod';
import { crc32 } from './_png.js';

/**
 * The cache file's layout, version {@link CACHE_FORMAT_VERSION}. It is a CBOR sequence (RFC 8742) of three
 * items, so any CBOR tool can read it:
 *
 * ```
 * d9 d9 f7                   tag 55799, "self-described CBOR" (the file's magic number)
 * d8 18 5a <u32>             tag 24 (embedded CBOR) on a byte string with a 4-byte length ...
 * <header>                   ... holding the CBOR-encoded header map (see CacheHeader)
 * 5b <u64>                   a byte string with an 8-byte length: the pixels, N * H * W * 3 bytes, HWC
 * 44 <u32>                   a 4-byte byte string: CRC-32 of every byte before it
 * ```
 *
 * The header comes first so that a stale cache is recognised without reading the pixels; the pixels are one
 * byte string, read straight into one Uint8Array; the lengths and the final CRC detect a truncated or damaged
 * file, which is then rebuilt.
 */
export const CACHE_FORMAT_VERSION = 1;

const MAGIC = 'litter-dataset-cache';
const PREFIX_BYTES = 10; // d9 d9 f7 d8 18 5a + u32
const PAYLOAD_HEAD_BYTES = 9; // 5b + u64
const TRAILER_BYTES = 5; // 44 + u32
/** Written in pieces of this size. */
const IO_CHUNK = 4 * 1024 * 1024;
/** Read in pieces of this size: small enough to stay in the CPU cache between read, CRC and copy. */
const READ_CHUNK = 256 * 1024;

/** What the cache was built from; a cache is reused only when these match the request. */
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

const headerSchema = z.object({
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

// Plain CBOR maps (no cbor-x record extension), typed arrays as RFC 8746 tags.
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export type CacheOpenResult =
  | { status: 'missing' }
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
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { status: 'missing' };
    return { status: 'invalid', reason: `the cache cannot be opened (${code})` };
  }
  const fail = async (reason: string): Promise<CacheOpenResult> => {
    await handle.close();
    return { status: 'invalid', reason };
  };
  try {
    const fileSize = (await handle.stat()).size;
    const prefix = await readExactly(handle, 0, PREFIX_BYTES);
    if (
      prefix?.[0] !== 0xd9 ||
      prefix[1] !== 0xd9 ||
      prefix[2] !== 0xf7 ||
      prefix[3] !== 0xd8 ||
      prefix[4] !== 0x18 ||
      prefix[5] !== 0x5a
    ) {
      return fail('the cache file is not a litter cache or is damaged (bad magic number)');
    }
    const headerLength = readUint32(prefix, 6);
    const minimum = PREFIX_BYTES + headerLength + PAYLOAD_HEAD_BYTES + TRAILER_BYTES;
    if (fileSize < minimum)
      return fail(`the cache is truncated (${fileSize} bytes, at least ${minimum} expected)`);
    const headerBytes = await readExactly(handle, PREFIX_BYTES, headerLength);
    if (!headerBytes) return fail('the cache is truncated (header)');
    let decoded: unknown;
    try {
      decoded = encoder.decode(headerBytes);
    } catch (error) {
      return fail(`the cache header is damaged (${(error as Error).message})`);
    }
    const parsed = headerSchema.safeParse(decoded);
    if (!parsed.success) {
      const format = (decoded as { formatVersion?: unknown } | null)?.formatVersion;
      if (typeof format === 'number' && format !== CACHE_FORMAT_VERSION) {
        return fail(
          `the cache has format ${format}, this version of @litter/dataset writes format ${CACHE_FORMAT_VERSION}`,
        );
      }
      return fail('the cache header is damaged (unexpected fields)');
    }
    const header = parsed.data as CacheHeader;
    const payloadAt = PREFIX_BYTES + headerLength;
    const expectedSize = payloadAt + PAYLOAD_HEAD_BYTES + header.pixelsByteLength + TRAILER_BYTES;
    if (fileSize !== expectedSize) {
      return fail(
        fileSize < expectedSize
          ? `the cache is truncated (${fileSize} of ${expectedSize} bytes)`
          : `the cache has ${fileSize - expectedSize} unexpected bytes at its end`,
      );
    }
    const payloadHead = await readExactly(handle, payloadAt, PAYLOAD_HEAD_BYTES);
    if (payloadHead?.[0] !== 0x5b || readUint64(payloadHead, 1) !== header.pixelsByteLength) {
      return fail('the cache is damaged (pixel block header)');
    }
    let closed = false;
    const close = async () => {
      if (!closed) {
        closed = true;
        await handle.close();
      }
    };
    const readPixels = async (): Promise<Uint8Array | { reason: string }> => {
      try {
        let crc = crc32(payloadHead, crc32(headerBytes, crc32(prefix)));
        const pixels = new Uint8Array(header.pixelsByteLength);
        const start = payloadAt + PAYLOAD_HEAD_BYTES;
        // Read through a small reused buffer rather than straight into `pixels`: the CRC then runs on data
        // that is still in the CPU cache, and fresh memory is touched once, by the copy (on virtual machines
        // where page faults are expensive this is markedly faster than letting read() fault the pages in).
        const bounce = new Uint8Array(Math.min(READ_CHUNK, pixels.length));
        const fd = handle.fd;
        for (let offset = 0; offset < pixels.length; ) {
          const length = Math.min(bounce.length, pixels.length - offset);
          const bytesRead = readSync(fd, bounce, 0, length, start + offset);
          if (bytesRead === 0) return { reason: 'the cache is truncated (pixels)' };
          const piece = bounce.subarray(0, bytesRead);
          crc = crc32(piece, crc);
          pixels.set(piece, offset);
          offset += bytesRead;
        }
        const trailer = await readExactly(handle, start + pixels.length, TRAILER_BYTES);
        if (trailer?.[0] !== 0x44) return { reason: 'the cache is damaged (checksum block)' };
        if (readUint32(trailer, 1) !== crc) return { reason: 'the cache is damaged (checksum mismatch)' };
        return pixels;
      } finally {
        await close();
      }
    };
    return { status: 'ok', header, readPixels, close };
  } catch (error) {
    return fail(`the cache cannot be read (${(error as Error).message})`);
  }
}

/**
 * Writes a cache atomically: into a temporary file next to `path` (`<name>.tmp-<pid>-<random>`), flushed
 * to disk (fsync), then renamed over `path`, and the folder flushed. A crash or SIGKILL at any point leaves
 * either the previous cache or none at `path` (never a partial one), and a damaged file would fail the CRC
 * anyway. Temporary files left by killed processes are removed by the next write.
 *
 * Test hook: with the environment variable `LITTER_DATASET_TEST_WRITE_PAUSE_MS` set, the pixels are written
 * in 64 KiB pieces with that many milliseconds between them, so that a test can kill a writer mid-way.
 *
 * @returns the number of bytes written
 */
export async function writeCache(path: string, header: CacheHeader, pixels: Uint8Array): Promise<number> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true });
  await removeStaleTemporaries(path);

  const headerBytes = encoder.encode(header);
  const head = new Uint8Array(PREFIX_BYTES + headerBytes.length + PAYLOAD_HEAD_BYTES);
  head.set([0xd9, 0xd9, 0xf7, 0xd8, 0x18, 0x5a], 0);
  writeUint32(head, 6, headerBytes.length);
  head.set(headerBytes, PREFIX_BYTES);
  head[PREFIX_BYTES + headerBytes.length] = 0x5b;
  writeUint64(head, PREFIX_BYTES + headerBytes.length + 1, pixels.length);
  const trailer = new Uint8Array(TRAILER_BYTES);
  trailer[0] = 0x44;

  const pause = Number(process.env.LITTER_DATASET_TEST_WRITE_PAUSE_MS ?? 0);
  const chunk = pause > 0 ? 64 * 1024 : IO_CHUNK;
  const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temporary, 'wx', 0o644);
  try {
    let crc = crc32(head);
    await writeAll(handle, head);
    for (let offset = 0; offset < pixels.length; offset += chunk) {
      const piece = pixels.subarray(offset, Math.min(offset + chunk, pixels.length));
      crc = crc32(piece, crc);
      await writeAll(handle, piece);
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    writeUint32(trailer, 1, crc);
    await writeAll(handle, trailer);
    await handle.sync();
    await handle.close();
    await rename(temporary, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  await syncFolder(folder);
  return head.length + pixels.length + trailer.length;
}

async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length; ) {
    const { bytesWritten } = await handle.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
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

/** Deletes `<name>.tmp-<pid>-*` files whose process is gone (killed writers). */
async function removeStaleTemporaries(path: string): Promise<void> {
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    await unlink(join(dirname(path), name)).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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
