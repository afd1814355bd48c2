// @ts-check
// A decoding thread: it receives lists of { index, path } and writes pixels straight into the shared output
// buffer (image `index` at `index * width * height * 3`), answering with each file's result.
import { parentPort, workerData } from 'node:worker_threads';
import { decodeFileInto } from './_png.js';

/** @type {{ pixels: SharedArrayBuffer, target: import('./_png.js').DecodeTarget, fullHash: boolean }} */
const { pixels, target, fullHash } = workerData;
const out = new Uint8Array(pixels);
const imageBytes = target.width * target.height * 3;

parentPort?.on('message', (/** @type {{ index: number, path: string }[]} */ jobs) => {
  parentPort?.postMessage(
    jobs.map((job) => ({
      index: job.index,
      ...decodeFileInto(job.path, out, job.index * imageBytes, target, fullHash),
    })),
  );
});
