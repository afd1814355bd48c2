import { decodeImage } from '@litter/dataset';
import { loadModel } from '@litter/model';
import type * as tfl from '@tensorflow/tfjs-layers';
import { boxHeadFor, orderedBox, type PredictOptions, predictRaw, sigmoid } from './_predict.js';
import { TrainerError } from './errors.js';
import type { CheckpointKind } from './options.js';
import { locateModel, type RunConfig } from './run-dir.js';

export type { PredictOptions } from './_predict.js';

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
  /**
   * Whether its predictions average each image with its mirror: the run's `testTimeFlip` setting (false for a
   * model folder without a run's config.json, and for runs made before the setting existed).
   */
  testTimeFlip: boolean;
  /** The folder the model was loaded from. */
  dir: string;
  /** Training steps behind the model, when known. */
  step: number | undefined;
}

/** Options of {@link loadRun}. */
export interface LoadRunOptions {
  /** Which checkpoint of a run directory: `best` falls back to `last` when there is no best. @default 'best' */
  checkpoint?: CheckpointKind;
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
  const { dir, config, state, vocabulary, thresholds } = await locateModel(path, options.checkpoint);
  const model = await loadModel(dir);
  const shape = model.inputs[0]?.shape ?? [];
  const height = state?.height ?? config?.height ?? shape[1];
  const width = state?.width ?? config?.width ?? shape[2];
  let boxes: boolean;
  try {
    boxes = boxHeadFor(model, vocabulary.length) !== undefined;
    if (typeof height !== 'number' || typeof width !== 'number') {
      throw new TrainerError('model-mismatch', `the model in ${dir} does not say which image size it takes`);
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  const testTimeFlip = config?.testTimeFlip ?? false;
  return {
    model,
    vocabulary,
    width,
    height,
    thresholds,
    config,
    boxes,
    testTimeFlip,
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
  /**
   * With a box head that scores its boxes (CenterNet): the box's confidence in [0, 1], which ranks boxes for
   * average precision (presence and localisation together).
   */
  score?: number;
}

/** What {@link predictImages} gives per image. */
export interface Prediction {
  /** The image path as given. */
  image: string;
  classes: ClassPrediction[];
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
  const testTimeFlip = options.testTimeFlip ?? run.testTimeFlip;
  const classes = run.vocabulary.length;
  const predictions: Prediction[] = [];
  for (let start = 0; start < imagePaths.length; start += batchSize) {
    const paths = imagePaths.slice(start, start + batchSize);
    const images = await Promise.all(
      paths.map((path) => decodeImage(path, { width: run.width, height: run.height })),
    );
    const source = {
      count: images.length,
      height: run.height,
      width: run.width,
      imageAt: (k: number) => images[k]!,
    };
    const raw = predictRaw(run.model, source, classes, { batchSize, testTimeFlip });
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
            const [x1, y1, x2, y2] = orderedBox(raw.boxes, (k * classes + c) * 4);
            prediction.box = { x1, y1, x2, y2 };
          }
          if (raw.scores) prediction.score = raw.scores[k * classes + c]!;
          return prediction;
        }),
      });
    });
  }
  return predictions;
}
