/**
 * Defaults of `litter train`, chosen so that the README's main command (`litter train` on the bundled
 * 196-image sample) finishes in a few minutes on 2 CPU cores with the wasm backend and still learns: small
 * images, a few hundred steps, a learning rate above the seed's 1e-4 (which needs thousands of steps).
 */
export const TRAIN_DEFAULTS = {
  model: 'seed-cnn',
  width: 64,
  height: 64,
  batchSize: 32,
  steps: 300,
  learningRate: 1e-3,
  seed: 0,
  logEvery: 25,
  validateEvery: 100,
} as const;

/** The image size `litter train` and `litter cache` use by default. */
export const TRAIN_SIZE = { width: TRAIN_DEFAULTS.width, height: TRAIN_DEFAULTS.height } as const;
