/**
 * Defaults of `litter train`, chosen so that the README's main command (`litter train` on the bundled
 * 196-image sample, 128x128) finishes in a few minutes on 2 CPU cores with the wasm backend and learns
 * something that holds on a held-out scene. Measured with seed-cnn on wasm, 2 shared cores: 32x32 runs at
 * 45-95 images/s (64x64 at ~10, 48x48 at ~22), so 200 steps of 32 take 70-120 s; on held-out scene 1, 32x32 beat
 * 48x48, and validation stops improving after 100-150 steps. Adam at 1e-3 with a cosine decay: the seed's 1e-4
 * needs thousands of steps. The best checkpoint is picked by macro F1: validation loss bottoms out early,
 * while the model still predicts every class absent (macro F1 0).
 */
export const TRAIN_DEFAULTS = {
  model: 'seed-cnn',
  width: 32,
  height: 32,
  batchSize: 32,
  steps: 200,
  learningRate: 1e-3,
  schedule: 'cosine',
  bestMetric: 'macroF1',
  seed: 0,
  logEvery: 25,
  validateEvery: 50,
} as const;

/** The image size `litter train` and `litter cache` use by default. */
export const TRAIN_SIZE = { width: TRAIN_DEFAULTS.width, height: TRAIN_DEFAULTS.height } as const;
