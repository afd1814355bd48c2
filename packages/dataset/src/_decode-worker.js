// @ts-check
// A decoding thread. It is started early (while the main thread still validates labels.json), then gets
// { type: 'init', pixels, target, fullHash, realRoot } once the output exists, then lists of { index, path }:
// it writes pixels straight into the shared output (image `index` at `index * width * height * 3`) and
// answers with each file's result.
import { parentPort } from 'node:worker_threads';
import { decodeFileInto } from './_image-file.js';

/**
 * @typedef {object} Init
 * @property {'init'} type
 * @property {SharedArrayBuffer} pixels
 * @property {import('./_png.js').DecodeTarget} target
 * @property {boolean} fullHash
 * @property {string} realRoot
 */

/** @type {{ out: Uint8Array, imageBytes: number, init: Init, root: { realRoot: string, folders: Map<string, string> } } | undefined} */
let state;

parentPort?.on(
  'message',
  (/** @type {Init | { type: 'jobs', jobs: { index: number, path: string }[] }} */ message) => {
    if (message.type === 'init') {
      const { width, height } = message.target;
      state = {
        out: new Uint8Array(message.pixels),
        imageBytes: width * height * 3,
        init: message,
        root: { realRoot: message.realRoot, folders: new Map() },
      };
      return;
    }
    const { out, imageBytes, init, root } = /** @type {NonNullable<typeof state>} */ (state);
    parentPort?.postMessage(
      message.jobs.map((job) => ({
        index: job.index,
        ...decodeFileInto(job.path, out, job.index * imageBytes, init.target, init.fullHash, root),
      })),
    );
  },
);
