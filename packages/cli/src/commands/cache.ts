import { defineCommand } from 'citty';

/** `litter cache build|info|verify|clear DATASET`: the CBOR image cache of @litter/dataset. No TensorFlow.js. */
export default defineCommand({
  meta: {
    name: 'cache',
    description: 'Build, describe, verify or delete the image cache of a dataset (labels.litter-cache)',
  },
  subCommands: {
    build: () => import('./cache/build.js').then((m) => m.default),
    info: () => import('./cache/info.js').then((m) => m.default),
    verify: () => import('./cache/verify.js').then((m) => m.default),
    clear: () => import('./cache/clear.js').then((m) => m.default),
  },
});
