// @ts-check
// A decoding thread. It is started early (while the main thread still validates labels.json), then gets
// { type: 'init', pixels, target, fullHash } once the output exists, then lists of { index, path }: it writes
// pixels straight into the shared output (image `index` at `index * width * height * 3`) and answers with
// each file's result.
import { parentPort } from 'node:worker_threads';
import { decodeFileInto } from './_png.js';

/** @type {{ out: Uint8Array, imageBytes: number, target: import('./_png.js').DecodeTarget, fullHash: boolean } | undefined} */
let state;

parentPort?.on(
  'message',
  (
    /** @type {{ type: 'init', pixels: SharedArrayBuffer, target: import('./_png.js').DecodeTarget, fullHash: boolean } | { type: 'jobs', jobs: { index: number, path: string }[] }} */ message,
  ) => {
    if (message.type === 'init') {
      const { target } = message;
      state = {
        out: new Uint8Array(message.pixels),
        imageBytes: target.width * target.height * 3,
        target,
        fullHash: message.fullHash,
      };
      return;
    }
    const { out, imageBytes, target, fullHash } = /** @type {NonNullable<typeof state>} */ (state);
    parentPort?.postMessage(
      message.jobs.map((job) => ({
        index: job.index,
        ...decodeFileInto(job.path, out, job.index * imageBytes, target, fullHash),
      })),
    );
  },
);
