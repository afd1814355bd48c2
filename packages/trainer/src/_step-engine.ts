/*
 * The step engine: what makes one optimizer step of the training loop, in this thread (LocalEngine, here) or on
 * worker threads (_parallel-engine.ts); `_session.ts` picks one (startEngine). The loop sees only this interface: the engine owns the optimizer (Adam) and, for data
 * parallelism, the workers; the model it holds is the one validations and checkpoints read, up to date after
 * `sync()`.
 */
import type { Batch, SeededRandom } from '@litter/dataset';
import type { BoxHead, ModelFactory } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { recalibrateOn } from './_batchnorm.js';
import { type OptimizerSnapshot, snapshotOptimizer } from './_checkpoint.js';
import { batchLoss } from './_loss.js';
import {
  boxHeadFor,
  type ImageSource,
  type PredictOptions,
  predictRaw,
  type RawPredictions,
} from './_predict.js';
import { withRandom } from './_random.js';
import { TrainerError } from './errors.js';

/** One training step at a time, on the model it holds. */
export interface StepEngine {
  /** The model being trained, as validations and checkpoints read it: current after {@link sync}. */
  readonly model: tfl.LayersModel;
  /**
   * One optimizer step on the first `batch.size` rows of `batch` (float32 images, augmented already) at
   * `learningRate`: the batch's loss. A non-finite loss leaves the weights unchanged.
   */
  step(batch: Batch, learningRate: number): Promise<number>;
  /** Makes {@link model} hold the trained weights (data-parallel: copies them from the workers). */
  sync(): Promise<void>;
  /**
   * Gives {@link model} (synced first) the batch-norm statistics of its weights on `images`
   * (`recalibrateOn`; data-parallel: the batches shared out among the workers, whose own statistics stay).
   */
  recalibrate(images: ImageSource, batchSize: number): Promise<void>;
  /** {@link model}'s outputs on `images` (synced first; data-parallel: the images shared out among the workers). */
  predict(images: ImageSource, options: PredictOptions): Promise<RawPredictions>;
  /** The optimizer's state, for a checkpoint (the same layout in both engines). */
  optimizerState(): Promise<OptimizerSnapshot>;
  /**
   * Trains `next` from now on (the same weights at another input size: progressive resizing; call {@link sync}
   * and copy the weights into it first): the current model is disposed, the optimizer's moments carry over.
   */
  replaceModel(next: tfl.LayersModel): Promise<void>;
  /** Frees the optimizer (and the workers); the model stays (the caller disposes it). */
  dispose(): Promise<void>;
}

/** What both engines are made from. */
export interface StepEngineOptions {
  factory: ModelFactory;
  classes: number;
  boxes: boolean;
  boxLossWeight: number;
  /** The factor on the cross entropy of visible classes (`batchLoss`). */
  positiveWeight: number;
  learningRate: number;
  seed: number;
  /** More than 1: data-parallel worker threads (on `backend`). */
  workers: number;
  backend: 'wasm' | 'cpu';
  /** How the workers resolve the model (`resolveModel`). */
  modelSpec: string;
  /** The run's generator: dropout masks of in-process steps draw from it. */
  rng: SeededRandom;
  /** The image size the model is fed. */
  height: number;
  width: number;
  /** A checkpoint to take the optimizer's state from (a resume). */
  resumeFrom?: string;
}

/** Adam reads its learning rate on every update; tfjs declares the field protected. */
export function setLearningRate(optimizer: tf.Optimizer, rate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = rate;
}

/** The box head `model` is trained through (undefined: logits only), checked against `boxes`. */
export function trainedHead(model: tfl.LayersModel, options: StepEngineOptions): BoxHead | undefined {
  const { factory, classes, boxes } = options;
  const head = boxHeadFor(model, classes, [factory.boxHead]);
  if ((head !== undefined) !== boxes) {
    throw new TrainerError(
      'model-mismatch',
      `model ${factory.name} ${boxes ? 'has no box head although boxes were asked for' : 'has a box head although boxes were not asked for'}`,
    );
  }
  return head;
}

/** Steps in this thread: tfjs's gradients and its Adam on the model's own variables. */
export class LocalEngine implements StepEngine {
  private variables!: tf.Variable[];
  private head: BoxHead | undefined;

  constructor(
    public model: tfl.LayersModel,
    private readonly optimizer: tf.Optimizer,
    private readonly options: StepEngineOptions,
  ) {
    this.bind(model);
  }

  private bind(model: tfl.LayersModel): void {
    this.model = model;
    this.head = boxHeadFor(model, this.options.classes, [this.options.factory.boxHead]);
    // Adam keeps its moments by position: a new model's variables take the old ones' places.
    this.variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  }

  async step(batch: Batch, learningRate: number): Promise<number> {
    setLearningRate(this.optimizer, learningRate);
    const { model, variables, head, optimizer } = this;
    const { classes, boxLossWeight, positiveWeight, rng } = this.options;
    const [n, height, width] = [batch.size, batch.shape[1], batch.shape[2]];
    return withRandom(rng, () =>
      tf.tidy(() => {
        // Copies: the batcher reuses its buffers, and a backend may keep a reference to a tensor's source array.
        const images = tf.tensor4d(batch.images.slice(0, n * height * width * 3), [n, height, width, 3]);
        const labels = tf.tensor2d(batch.labels.slice(0, n * classes), [n, classes]);
        const box = head
          ? {
              head,
              targets: tf.tensor2d(batch.boxes.slice(0, n * classes * 4), [n, classes * 4]),
              mask: tf.tensor2d(batch.boxMask.slice(0, n * classes), [n, classes]),
              weight: boxLossWeight,
            }
          : undefined;
        const { value, grads } = tf.variableGrads(
          () => batchLoss(model, images, labels, box, 1, positiveWeight),
          variables,
        );
        const lossValue = value.dataSync()[0]!;
        // Check before applying: a non-finite loss must not reach the weights.
        if (Number.isFinite(lossValue)) {
          optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name]! })));
        }
        return lossValue;
      }),
    );
  }

  async sync(): Promise<void> {}

  async recalibrate(images: ImageSource, batchSize: number): Promise<void> {
    recalibrateOn(this.model, images, batchSize);
  }

  async predict(images: ImageSource, options: PredictOptions): Promise<RawPredictions> {
    return predictRaw(this.model, images, this.options.classes, options);
  }

  optimizerState(): Promise<OptimizerSnapshot> {
    return snapshotOptimizer(this.optimizer);
  }

  async replaceModel(next: tfl.LayersModel): Promise<void> {
    this.model.dispose();
    this.bind(next);
  }

  async dispose(): Promise<void> {
    this.optimizer.dispose();
  }
}
