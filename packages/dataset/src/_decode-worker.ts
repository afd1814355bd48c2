// A decoding thread (run built, from dist/: see `builtModule`). It is started early (while the main thread still validates labels.json), then gets
// { type: 'init', pixels, target, fullHash, realRoot } once the output exists, then lists of { index, path }:
// it writes pixels straight into the shared output (image `index` at `index * width * height * 3`) and
// answers with each file's result.
import { parentPort } from 'node:worker_threads';
import { decodeFileInto } from './_image-file.js';
import type { DecodeTarget } from './_png.js';

interface Init {
  type: 'init';
  pixels: SharedArrayBuffer;
  target: DecodeTarget;
  fullHash: boolean;
  realRoot: string;
}

let state:
  | {
      out: Uint8Array;
      imageBytes: number;
      init: Init;
      root: { realRoot: string; folders: Map<string, string> };
    }
  | undefined;

parentPort?.on('message', (message: Init | { type: 'jobs'; jobs: { index: number; path: string }[] }) => {
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
  const { out, imageBytes, init, root } = state!;
  parentPort?.postMessage(
    message.jobs.map((job) => ({
      index: job.index,
      ...decodeFileInto(job.path, out, job.index * imageBytes, init.target, init.fullHash, root),
    })),
  );
});
