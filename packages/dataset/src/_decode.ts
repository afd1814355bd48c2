import { constants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { existsSync, constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import pLimit from 'p-limit';
import { resolveInside } from './_files.js';
import { decodeFileInto, type FileResult, type FileStamp, openFailure } from './_image-file.js';
import { CorruptImageError, type DecodeTarget } from './_png.js';
import { builtModule } from './built-module.js';
import type { DecodeProgress } from './decode-progress.js';
import { DatasetError } from './errors.js';
import { decodeWithSharp, describe, imageSizeOf } from './images.js';
import { imageFileProblem, imageSizeProblem } from './limits.js';

/** One image to decode: `index` is its slot in the output. */
export interface DecodeJob {
  index: number;
  image: string;
  path: string;
}

export type FailureKind = 'missing' | 'corrupt' | 'size';

export interface DecodeFailure {
  index: number;
  image: string;
  kind: FailureKind;
  reason: string;
}

export interface DecodeOptions {
  /** The real path of the dataset folder: files that links lead out of it are not read. */
  realRoot: string;
  width: number | undefined;
  height: number | undefined;
  background: [number, number, number];
  concurrency: number;
  fullHash: boolean;
  onProgress?: ((progress: DecodeProgress) => void) | undefined;
  /**
   * Called when the run of finished images from the first one grows to `done` (failed ones count as
   * finished), so that the caller can write them out while the rest is decoded.
   */
  onContiguous?: ((pixels: Uint8Array, done: number, imageBytes: number) => void) | undefined;
  /** Decoding threads started with {@link DecodePool.start} (closed when done); none: decode in this thread. */
  pool?: DecodePool | undefined;
  /** Stops decoding (the promise then rejects). */
  signal?: AbortSignal | undefined;
}

export interface DecodeOutcome {
  /** `jobs.length` slots of `height * width * 3` bytes (failed slots are zero). */
  pixels: Uint8Array;
  width: number;
  height: number;
  /** The stamp of each job's file (undefined where the file could not be opened). */
  stamps: (FileStamp | undefined)[];
  failures: DecodeFailure[];
  /** Images that symbolic links lead out of the dataset folder (not read), with their real path. */
  outside: { index: number; image: string; path: string }[];
}

/** The largest typed array this Node can allocate. */
const MAX_LENGTH = constants.MAX_LENGTH;
/** Below this many images, threads cost more to start than they save. */
const WORKER_THRESHOLD = 200;
/** Images per message to a thread: enough to amortise messaging, few enough to balance the threads. */
const CHUNK = 16;
/** The decoding thread's script, built (from the sources, as under vitest, the package's `dist/`). */
const WORKER_URL = builtModule('./_decode-worker.js', import.meta.url);

/** The default number of images decoded at once. */
export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism());
}

/**
 * How many decoding threads suit `count` images. This thread decodes too (between its other work), so
 * `concurrency` images at once take `concurrency - 1` threads: on two cores, one thread to start instead of
 * two, which saves the 50-100 ms of CPU that starting a thread costs.
 */
export function threadsFor(count: number, concurrency: number, workerThreads: boolean | 'auto'): number {
  // A bundler that inlined this module without the worker script: decode in this thread.
  if (workerThreads === false || count === 0 || !existsSync(fileURLToPath(WORKER_URL))) return 0;
  const wanted = Math.min(concurrency - 1, Math.ceil(count / CHUNK) - 1);
  if (workerThreads === true) return Math.max(1, wanted);
  return count >= WORKER_THRESHOLD && concurrency >= 2 ? wanted : 0;
}

/**
 * Decodes every job into one buffer. Built-in PNG decoding runs on the pool's threads (or in this thread
 * without a pool), sharp takes the rest with at most `concurrency` images in flight. Failures are collected,
 * not thrown, so that the caller can report them all or skip them.
 */
export async function decodeImages(
  jobs: readonly DecodeJob[],
  options: DecodeOptions,
): Promise<DecodeOutcome> {
  const { pool } = options;
  // Closing the threads makes their run reject; the in-thread loop checks the signal between chunks.
  const onAbort = () => void pool?.close();
  options.signal?.addEventListener('abort', onAbort);
  try {
    return await decode(jobs, options);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // Not awaited: a thread takes 10-20 ms to tear its heap down, which it can do while the cache is finished.
    void pool?.close();
  }
}

async function decode(jobs: readonly DecodeJob[], options: DecodeOptions): Promise<DecodeOutcome> {
  const stamps: (FileStamp | undefined)[] = new Array(jobs.length).fill(undefined);
  const failures: DecodeFailure[] = [];
  const outside: DecodeOutcome['outside'] = [];
  const root = { realRoot: options.realRoot, folders: new Map<string, string>() };

  let size =
    options.width !== undefined && options.height !== undefined
      ? { width: options.width, height: options.height }
      : undefined;
  const resize = size !== undefined;
  size ??= await probeFirstSize(jobs, root);
  if (!size) {
    // Not a single image could be read: report each one.
    await Promise.all(
      jobs.map(async (job) => {
        const { kind, reason } = await probeFailure(job.path, root);
        if (kind === 'outside') outside.push({ index: job.index, image: job.image, path: reason });
        else failures.push({ index: job.index, image: job.image, kind, reason });
      }),
    );
    failures.sort((a, b) => a.index - b.index);
    outside.sort((a, b) => a.index - b.index);
    return { pixels: new Uint8Array(0), width: 0, height: 0, stamps, failures, outside };
  }

  const target: DecodeTarget = {
    width: size.width,
    height: size.height,
    resize,
    background: options.background,
  };
  const imageBytes = size.width * size.height * 3;
  const pool = options.pool;
  const total = jobs.length * imageBytes;
  if (total > MAX_LENGTH) {
    throw new DatasetError(
      'options-invalid',
      `${jobs.length} images of ${size.width}x${size.height} need ${(total / 2 ** 30).toFixed(1)} GiB, more than one buffer can hold (${(MAX_LENGTH / 2 ** 30).toFixed(1)} GiB): pass a smaller width and height`,
    );
  }
  const pixels = new Uint8Array(pool ? new SharedArrayBuffer(total) : new ArrayBuffer(total));

  let done = 0;
  const isDone = new Uint8Array(jobs.length);
  let contiguous = 0;
  const finished = (job: DecodeJob) => {
    done++;
    isDone[job.index] = 1;
    options.onProgress?.({ done, total: jobs.length, image: job.image });
    if (job.index === contiguous) {
      while (contiguous < jobs.length && isDone[contiguous]) contiguous++;
      options.onContiguous?.(pixels, contiguous, imageBytes);
    }
  };
  const fail = (job: DecodeJob, kind: FailureKind, reason: string) => {
    failures.push({ index: job.index, image: job.image, kind, reason });
    finished(job);
  };

  const limit = pLimit(options.concurrency);
  const sharpTasks: Promise<void>[] = [];
  /** An error thrown by a callback (onProgress, onContiguous) from a sharp task, rethrown at the end. */
  let callbackError: unknown;
  const onResult = (job: DecodeJob, result: FileResult) => {
    if (result.status !== 'missing' && result.status !== 'outside') stamps[job.index] = stampOf(result);
    switch (result.status) {
      case 'outside':
        outside.push({ index: job.index, image: job.image, path: result.reason });
        finished(job);
        break;
      case 'ok':
        finished(job);
        break;
      case 'fallback':
        sharpTasks.push(
          limit(() => decodeOneWithSharp(job, target, options.fullHash, pixels, imageBytes, root)).then(
            (outcome) => {
              if (outcome.stamp) stamps[job.index] = outcome.stamp;
              if (outcome.failure) fail(job, outcome.failure.kind, outcome.failure.reason);
              else finished(job);
            },
          ),
        );
        break;
      case 'size':
        fail(job, 'size', sizeReason(result, target));
        break;
      default:
        fail(job, result.status, result.reason);
    }
  };

  // Chunks of jobs in order, to the threads and to this thread alike.
  let next = 0;
  const take = (): DecodeJob[] | undefined => {
    if (next >= jobs.length) return undefined;
    const chunk = jobs.slice(next, next + CHUNK);
    next += chunk.length;
    return chunk;
  };
  const decodeHere = async () => {
    for (let chunk = take(); chunk; chunk = take()) {
      options.signal?.throwIfAborted();
      for (const job of chunk) {
        onResult(
          job,
          decodeFileInto(job.path, pixels, job.index * imageBytes, target, options.fullHash, root),
        );
      }
      // Let the threads' results, sharp's callbacks, cache writes and the caller's progress rendering run
      // between chunks.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  if (pool) {
    // The threads get their first chunks (queued while they start) before this thread takes any.
    const threads = pool.run(take, pixels, target, options.fullHash, options.realRoot, onResult);
    threads.catch(() => {}); // awaited below, after this thread's share
    await decodeHere();
    await threads;
  } else {
    await decodeHere();
  }
  await Promise.all(sharpTasks);
  if (callbackError !== undefined) throw callbackError;
  failures.sort((a, b) => a.index - b.index);
  outside.sort((a, b) => a.index - b.index);
  return { pixels, width: size.width, height: size.height, stamps, failures, outside };
}

function stampOf(result: FileStamp): FileStamp {
  return result.hash === undefined
    ? { size: result.size, mtimeMs: result.mtimeMs }
    : { size: result.size, mtimeMs: result.mtimeMs, hash: result.hash };
}

function sizeReason(actual: { width: number; height: number }, target: DecodeTarget): string {
  return `it is ${actual.width}x${actual.height} but the first image is ${target.width}x${target.height}`;
}

type Root = { realRoot: string; folders: Map<string, string> };

/** Opens an image inside the dataset folder (not a FIFO or device), or says why not. */
async function openInside(
  path: string,
  root: Root,
): Promise<{ handle: FileHandle } | { outside: string } | { missing: string }> {
  let real: string;
  try {
    const resolved = resolveInside(root.realRoot, path, root.folders);
    if (!resolved.inside) return { outside: resolved.path };
    real = resolved.path;
    return { handle: await open(real, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0)) };
  } catch (error) {
    return { missing: openFailure(error) };
  }
}

/** The size of the first image that can be read, in job order. */
async function probeFirstSize(
  jobs: readonly DecodeJob[],
  root: Root,
): Promise<{ width: number; height: number } | undefined> {
  for (const job of jobs) {
    const opened = await openInside(job.path, root);
    if (!('handle' in opened)) continue;
    try {
      const stats = await opened.handle.stat();
      if (!stats.isFile() || imageFileProblem(stats.size)) continue;
      const size = await imageSizeOf(await opened.handle.readFile());
      // A larger image fails on its own (with that reason) rather than setting the size of all.
      if (!imageSizeProblem(size.width, size.height)) return size;
    } catch {
      // Broken: decoding reports it. Try the next.
    } finally {
      await opened.handle.close();
    }
  }
  return undefined;
}

/** Why an image that not even its size could be read from failed. */
async function probeFailure(
  path: string,
  root: Root,
): Promise<{ kind: FailureKind | 'outside'; reason: string }> {
  const opened = await openInside(path, root);
  if ('outside' in opened) return { kind: 'outside', reason: opened.outside };
  if ('missing' in opened) return { kind: 'missing', reason: opened.missing };
  try {
    const stats = await opened.handle.stat();
    const tooLarge = stats.isFile() ? imageFileProblem(stats.size) : 'it is not a regular file';
    if (tooLarge) return { kind: 'corrupt', reason: tooLarge };
    const size = await imageSizeOf(await opened.handle.readFile());
    const tooMany = imageSizeProblem(size.width, size.height);
    if (tooMany) return { kind: 'corrupt', reason: tooMany };
  } catch {
    // Not even a size: said below.
  } finally {
    await opened.handle.close();
  }
  return { kind: 'corrupt', reason: 'it is not an image that can be decoded' };
}

async function decodeOneWithSharp(
  job: DecodeJob,
  target: DecodeTarget,
  fullHash: boolean,
  pixels: Uint8Array,
  imageBytes: number,
  root: Root,
): Promise<{ stamp?: FileStamp; failure?: { kind: FailureKind; reason: string } }> {
  const opened = await openInside(job.path, root);
  if ('outside' in opened)
    return {
      failure: { kind: 'corrupt', reason: `it now leads to ${opened.outside}, outside the dataset folder` },
    };
  if ('missing' in opened) return { failure: { kind: 'missing', reason: opened.missing } };
  const { handle } = opened;
  let stamp: FileStamp | undefined;
  try {
    const stats = await handle.stat();
    stamp = { size: stats.size, mtimeMs: stats.mtimeMs };
    if (!stats.isFile()) return { stamp, failure: { kind: 'corrupt', reason: 'it is not a regular file' } };
    const tooLarge = imageFileProblem(stats.size);
    if (tooLarge) return { stamp, failure: { kind: 'corrupt', reason: tooLarge } };
    const bytes = await handle.readFile();
    if (fullHash) stamp.hash = createHash('sha256').update(bytes).digest('hex');
    const decoded = await decodeWithSharp(bytes, target);
    if (decoded.width !== target.width || decoded.height !== target.height) {
      return { stamp, failure: { kind: 'size', reason: sizeReason(decoded, target) } };
    }
    pixels.set(decoded.data, job.index * imageBytes);
    return { stamp };
  } catch (error) {
    const reason = error instanceof CorruptImageError ? error.message : describe(error);
    return { stamp, failure: { kind: 'corrupt', reason: `cannot be decoded (${reason})` } };
  } finally {
    await handle.close();
  }
}

/**
 * Decoding threads. Started before they are needed (they take tens of milliseconds to boot, which the
 * caller spends validating labels.json), given the output buffer once it exists, closed after one run.
 */
export class DecodePool {
  private readonly workers: Worker[];
  private failed: unknown;

  private constructor(threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(WORKER_URL);
      worker.on('error', (error) => {
        this.failed ??= error;
      });
      return worker;
    });
  }

  /** Starts `threads` threads; none for 0. */
  static start(threads: number): DecodePool | undefined {
    return threads > 0 ? new DecodePool(threads) : undefined;
  }

  /** Decodes the chunks that `take` gives into the shared `pixels`, handing them to whichever thread is free. */
  async run(
    take: () => DecodeJob[] | undefined,
    pixels: Uint8Array,
    target: DecodeTarget,
    fullHash: boolean,
    realRoot: string,
    onResult: (job: DecodeJob, result: FileResult) => void,
  ): Promise<void> {
    const byIndex = new Map<number, DecodeJob>();
    await Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            if (this.failed) reject(this.failed);
            let inFlight = 0;
            const send = () => {
              const chunk = take();
              if (chunk) {
                for (const job of chunk) byIndex.set(job.index, job);
                inFlight++;
                worker.postMessage({ type: 'jobs', jobs: chunk.map(({ index, path }) => ({ index, path })) });
              } else if (inFlight === 0) {
                resolve();
              }
            };
            worker.on('message', (results: (FileResult & { index: number })[]) => {
              inFlight--;
              try {
                for (const result of results) onResult(byIndex.get(result.index)!, result);
              } catch (error) {
                reject(error);
                return;
              }
              send();
            });
            worker.on('error', reject);
            worker.on('exit', (code) => reject(new Error(`a decoding thread stopped (exit code ${code})`)));
            worker.postMessage({ type: 'init', pixels: pixels.buffer, target, fullHash, realRoot });
            // Two chunks in flight per thread, so that a thread never waits for this (possibly busy) one.
            send();
            send();
          }),
      ),
    );
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
