import { join, resolve } from 'node:path';
import { decodeImage } from '@litter/dataset';
import { loadModel } from '@litter/model';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { CheckpointState } from './_checkpoint.js';
import { exists, readJson, recoverDirectory } from './_io.js';
import { hasBoxHead, predictRaw, sigmoid } from './_predict.js';
import { TrainerError } from './errors.js';
import type { RunConfig } from './train.js';

/** A trained model with what prediction needs: from {@link loadRun}. */
export interface LoadedRun {
  /** The model; the caller disposes it. */
  model: tfl.LayersModel;
  /** Class names, index order. */
  vocabulary: string[];
  /** The image size the model takes. */
  width: number;
  height: number;
  /** Per-class thresholds tuned on validation (0.5 each where none were saved). */
  thresholds: number[];
  /** The run's `config.json`, when the model comes from a run directory. */
  config: RunConfig | undefined;
  /** Whether the model has the box head. */
  boxes: boolean;
  /** The folder the model was loaded from. */
  dir: string;
  /** Training steps behind the model, when known. */
  step: number | undefined;
}

/** Options of {@link loadRun}. */
export interface LoadRunOptions {
  /** Which checkpoint of a run directory: `best` falls back to `last` when there is no best. @default 'best' */
  checkpoint?: 'best' | 'last';
}

/**
 * Loads a trained model for evaluation or prediction from a run directory (its best checkpoint by default), a
 * checkpoint folder (`RUN/checkpoints/last`), or a model folder with `model.json` and `vocabulary.json`.
 *
 * @throws {TrainerError} `run-not-found` when `path` is none of these.
 * @example
 * const run = await loadRun('runs/cube-sphere');
 * const predictions = await predictImages(run, ['photo.png']);
 * run.model.dispose();
 */
export async function loadRun(path: string, options: LoadRunOptions = {}): Promise<LoadedRun> {
  const root = resolve(path);
  let dir = root;
  let config: RunConfig | undefined;
  if (await exists(join(root, 'config.json'))) {
    config = await readJson<RunConfig>(join(root, 'config.json'), 'checkpoint-corrupt');
    const best = join(root, 'checkpoints', 'best');
    const last = join(root, 'checkpoints', 'last');
    const useBest = (options.checkpoint ?? 'best') === 'best' && (await recoverDirectory(best));
    dir = useBest ? best : last;
    if (!useBest && !(await recoverDirectory(last))) {
      throw new TrainerError(
        'run-not-found',
        `${root} has no checkpoint yet (no checkpoints/last): train longer, or resume the run`,
      );
    }
  } else if (await exists(join(root, 'model.json'))) {
    const runConfig = join(root, '..', '..', 'config.json');
    if (await exists(runConfig)) config = await readJson<RunConfig>(runConfig, 'checkpoint-corrupt');
  } else {
    throw new TrainerError(
      'run-not-found',
      `${root} is neither a run directory (config.json) nor a model folder (model.json): give the --out folder ` +
        'of `litter train` or a checkpoint folder in it',
    );
  }

  const state = (await exists(join(dir, 'state.json')))
    ? await readJson<CheckpointState>(join(dir, 'state.json'), 'checkpoint-corrupt')
    : undefined;
  let vocabulary = state?.vocabulary ?? config?.vocabulary;
  if (!vocabulary && (await exists(join(dir, 'vocabulary.json')))) {
    vocabulary = await readJson<string[]>(join(dir, 'vocabulary.json'), 'checkpoint-corrupt');
  }
  if (!vocabulary) {
    throw new TrainerError(
      'run-not-found',
      `${dir} has a model but no vocabulary.json: the class names are unknown. Put the training run's ` +
        'vocabulary.json next to model.json',
    );
  }
  let thresholds = state?.thresholds;
  if (!thresholds && (await exists(join(dir, 'thresholds.json')))) {
    thresholds = await readJson<number[]>(join(dir, 'thresholds.json'), 'checkpoint-corrupt');
  }
  if (!thresholds || thresholds.length !== vocabulary.length) thresholds = vocabulary.map(() => 0.5);

  const model = await loadModel(dir);
  const shape = model.inputs[0]?.shape ?? [];
  const height = state?.height ?? config?.height ?? shape[1];
  const width = state?.width ?? config?.width ?? shape[2];
  let boxes: boolean;
  try {
    boxes = hasBoxHead(model, vocabulary.length);
    if (typeof height !== 'number' || typeof width !== 'number') {
      throw new TrainerError('model-mismatch', `the model in ${dir} does not say which image size it takes`);
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return {
    model,
    vocabulary: [...vocabulary],
    width,
    height,
    thresholds,
    config,
    boxes,
    dir,
    step: state?.step,
  };
}

/** One class of one image, from {@link predictImages}. */
export interface ClassPrediction {
  name: string;
  /** Sigmoid of the class logit. */
  probability: number;
  /** `probability >= threshold`. */
  visible: boolean;
  /** The class's tuned threshold. */
  threshold: number;
  /**
   * With a box head: the predicted box, normalised to [0, 1], y down, corners ordered (`x1 <= x2`, `y1 <= y2`);
   * meaningful only where `visible`.
   */
  box?: { x1: number; y1: number; x2: number; y2: number };
}

/** What {@link predictImages} gives per image. */
export interface Prediction {
  /** The image path as given. */
  image: string;
  classes: ClassPrediction[];
}

/** Options of {@link predictImages}. */
export interface PredictOptions {
  /** Images per forward pass. @default 32 */
  batchSize?: number;
}

/**
 * Predicts which classes are visible in image files, with the run's tuned thresholds. Images are decoded and
 * resized with `decodeImage` from `@litter/dataset`, the same preprocessing as training.
 *
 * @example
 * for (const p of await predictImages(run, ['a.png'])) {
 *   console.log(p.image, p.classes.filter((c) => c.visible).map((c) => c.name));
 * }
 */
export async function predictImages(
  run: LoadedRun,
  imagePaths: readonly string[],
  options: PredictOptions = {},
): Promise<Prediction[]> {
  const batchSize = options.batchSize ?? 32;
  const classes = run.vocabulary.length;
  const predictions: Prediction[] = [];
  for (let start = 0; start < imagePaths.length; start += batchSize) {
    const paths = imagePaths.slice(start, start + batchSize);
    const images = await Promise.all(
      paths.map((path) => decodeImage(path, { width: run.width, height: run.height })),
    );
    const raw = predictRaw(
      run.model,
      (k) => images[k]!,
      images.length,
      run.height,
      run.width,
      classes,
      batchSize,
    );
    paths.forEach((image, k) => {
      predictions.push({
        image,
        classes: run.vocabulary.map((name, c) => {
          const probability = sigmoid(raw.logits[k * classes + c]!);
          const threshold = run.thresholds[c] ?? 0.5;
          const prediction: ClassPrediction = {
            name,
            probability,
            visible: probability >= threshold,
            threshold,
          };
          if (raw.boxes) {
            // The head's four outputs are not ordered: the box is the rectangle its two corners span.
            const o = (k * classes + c) * 4;
            const [x1, y1, x2, y2] = raw.boxes.subarray(o, o + 4) as unknown as [
              number,
              number,
              number,
              number,
            ];
            prediction.box = {
              x1: Math.min(x1, x2),
              y1: Math.min(y1, y2),
              x2: Math.max(x1, x2),
              y2: Math.max(y1, y2),
            };
          }
          return prediction;
        }),
      });
    });
  }
  return predictions;
}
