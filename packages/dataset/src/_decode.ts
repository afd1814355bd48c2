import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import pLimit from 'p-limit';
import {
  CorruptImageError,
  type DecodeTarget,
  decodeFileInto,
  type FileResult,
  type FileStamp,
} from './_png.js';
import { decodeWithSharp, describe, imageSizeOf } from './images.js';

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

/** Reported after each image is done (decoded or failed). */
export interface DecodeProgress {
  /** Images finished so far, including this one. */
  done: number;
  total: number;
  /** The image just finished, as named in labels.json. */
  image: string;
}

export interface DecodeOptions {
  width: number | undefined;
  height: number | undefined;
  background: [number, number, number];
  concurrency: number;
  workerThreads: boolean | 'auto';
  fullHash: boolean;
  onProgress?: ((progress: DecodeProgress) => void) | undefined;
}

export interface DecodeOutcome {
  /** `jobs.length` slots of `height * width * 3` bytes (failed slots are zero). */
  pixels: Uint8Array;
  width: number;
  height: number;
  /** The stamp of each job's file (undefined where the file could not be opened). */
  stamps: (FileStamp | undefined)[];
  failures: DecodeFailure[];
}

/** Below this many images, threads cost more to start than they save. */
const WORKER_THRESHOLD = 200;
/** Images per message to a thread: enough to amortise messaging, few enough to balance the threads. */
const CHUNK = 16;

/** The default number of images decoded at once. */
export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism());
}

/**
 * Decodes every job into one buffer. Built-in PNG decoding runs on worker threads (or in this thread for
 * small jobs), sharp takes the rest with at most `concurrency` images in flight. Failures are collected, not
 * thrown, so that the caller can report them all or skip them.
 */
export async function decodeImages(
  jobs: readonly DecodeJob[],
  options: DecodeOptions,
): Promise<DecodeOutcome> {
  const stamps: (FileStamp | undefined)[] = new Array(jobs.length).fill(undefined);
  const failures: DecodeFailure[] = [];
  const background = options.background;

  let size =
    options.width !== undefined && options.height !== undefined
      ? { width: options.width, height: options.height }
      : undefined;
  const resize = size !== undefined;
  size ??= await probeFirstSize(jobs);
  if (!size) {
    // Not a single image could be read: report each one.
    await Promise.all(
      jobs.map(async (job) => {
        const { kind, reason } = await probeFailure(job.path);
        failures.push({ index: job.index, image: job.image, kind, reason });
      }),
    );
    failures.sort((a, b) => a.index - b.index);
    return { pixels: new Uint8Array(0), width: 0, height: 0, stamps, failures };
  }

  const target: DecodeTarget = { width: size.width, height: size.height, resize, background };
  const imageBytes = size.width * size.height * 3;
  const threads = chooseThreads(jobs.length, options);
  const pixels = new Uint8Array(
    threads > 0 ? new SharedArrayBuffer(jobs.length * imageBytes) : new ArrayBuffer(jobs.length * imageBytes),
  );

  let done = 0;
  const finished = (job: DecodeJob) => {
    done++;
    options.onProgress?.({ done, total: jobs.length, image: job.image });
  };
  const fail = (job: DecodeJob, kind: FailureKind, reason: string) => {
    failures.push({ index: job.index, image: job.image, kind, reason });
    finished(job);
  };

  const limit = pLimit(options.concurrency);
  const sharpTasks: Promise<void>[] = [];
  const onResult = (job: DecodeJob, result: FileResult) => {
    if (result.status !== 'missing') stamps[job.index] = stampOf(result);
    switch (result.status) {
      case 'ok':
        finished(job);
        break;
      case 'fallback':
        sharpTasks.push(
          limit(() => decodeOneWithSharp(job, target, options.fullHash, pixels, imageBytes)).then(
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

  if (threads > 0) {
    await decodeOnThreads(jobs, threads, pixels, target, options.fullHash, onResult);
  } else {
    for (let start = 0; start < jobs.length; start += CHUNK) {
      for (const job of jobs.slice(start, start + CHUNK)) {
        onResult(job, decodeFileInto(job.path, pixels, job.index * imageBytes, target, options.fullHash));
      }
      // Let sharp's callbacks and the caller's progress rendering run between chunks.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await Promise.all(sharpTasks);
  failures.sort((a, b) => a.index - b.index);
  return { pixels, width: size.width, height: size.height, stamps, failures };
}

/** The worker script, next to this module (in src/ for tests, dist/ once built). */
const WORKER_URL = new URL('./_decode-worker.js', import.meta.url);

function chooseThreads(count: number, options: DecodeOptions): number {
  // A bundler that inlined this module without the worker script: decode in this thread.
  if (options.workerThreads === false || !existsSync(fileURLToPath(WORKER_URL))) return 0;
  const wanted = Math.min(options.concurrency, Math.ceil(count / CHUNK));
  if (options.workerThreads === true) return Math.max(1, wanted);
  return count >= WORKER_THRESHOLD && options.concurrency >= 2 ? wanted : 0;
}

function stampOf(result: FileStamp): FileStamp {
  return result.hash === undefined
    ? { size: result.size, mtimeMs: result.mtimeMs }
    : { size: result.size, mtimeMs: result.mtimeMs, hash: result.hash };
}

function sizeReason(actual: { width: number; height: number }, target: DecodeTarget): string {
  return `it is ${actual.width}x${actual.height} but the first image is ${target.width}x${target.height}`;
}

/** The size of the first image that can be read, in job order. */
async function probeFirstSize(
  jobs: readonly DecodeJob[],
): Promise<{ width: number; height: number } | undefined> {
  for (const job of jobs) {
    try {
      const handle = await open(job.path, 'r');
      try {
        return await imageSizeOf(await handle.readFile());
      } finally {
        await handle.close();
      }
    } catch {
      // This one is missing or broken: decoding reports it. Try the next.
    }
  }
  return undefined;
}

async function probeFailure(path: string): Promise<{ kind: FailureKind; reason: string }> {
  try {
    const handle = await open(path, 'r');
    await handle.close();
    return { kind: 'corrupt', reason: 'it is not an image that can be decoded' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      kind: 'missing',
      reason: code === 'ENOENT' ? 'the file does not exist' : `cannot open it (${code})`,
    };
  }
}

async function decodeOneWithSharp(
  job: DecodeJob,
  target: DecodeTarget,
  fullHash: boolean,
  pixels: Uint8Array,
  imageBytes: number,
): Promise<{ stamp?: FileStamp; failure?: { kind: FailureKind; reason: string } }> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(job.path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      failure: {
        kind: 'missing',
        reason: code === 'ENOENT' ? 'the file does not exist' : `cannot open it (${code})`,
      },
    };
  }
  let stamp: FileStamp | undefined;
  try {
    const stats = await handle.stat();
    stamp = { size: stats.size, mtimeMs: stats.mtimeMs };
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

/** Runs the built-in decoder on `threads` worker threads that write into the shared `pixels`. */
async function decodeOnThreads(
  jobs: readonly DecodeJob[],
  threads: number,
  pixels: Uint8Array,
  target: DecodeTarget,
  fullHash: boolean,
  onResult: (job: DecodeJob, result: FileResult) => void,
): Promise<void> {
  const byIndex = new Map(jobs.map((job) => [job.index, job]));
  let next = 0;
  const workers: Worker[] = [];
  try {
    await Promise.all(
      Array.from({ length: threads }, () => {
        const worker = new Worker(WORKER_URL, { workerData: { pixels: pixels.buffer, target, fullHash } });
        workers.push(worker);
        return new Promise<void>((resolve, reject) => {
          const send = () => {
            if (next >= jobs.length) {
              resolve();
              return;
            }
            const chunk = jobs.slice(next, next + CHUNK).map(({ index, path }) => ({ index, path }));
            next += chunk.length;
            worker.postMessage(chunk);
          };
          worker.on('message', (results: (FileResult & { index: number })[]) => {
            try {
              for (const result of results) onResult(byIndex.get(result.index)!, result);
            } catch (error) {
              reject(error);
              return;
            }
            send();
          });
          worker.on('error', reject);
          worker.on('exit', (code) => {
            if (next < jobs.length || code !== 0)
              reject(new Error(`a decoding thread stopped (exit code ${code})`));
          });
          send();
        });
      }),
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
