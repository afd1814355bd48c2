/*
 * The data-parallel step engine: the workers of createParallelTrainer (parallel/) hold the trained weights and
 * Adam's moments; the model in this thread gets the weights when it is read (validation, checkpoints).
 */
import type { Batch } from '@litter/dataset';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { OptimizerSnapshot } from './_checkpoint.js';
import type { ImageSource, PredictOptions, RawPredictions } from './_predict.js';
import { type StepEngine, type StepEngineOptions, setLearningRate } from './_step-engine.js';
import { TrainerError } from './errors.js';
import { createParallelTrainer, type ParallelTrainer } from './parallel/index.js';

/**
 * Starts the data-parallel workers from `model`'s current weights, and checks that they built the same model
 * (a `modelSpec` that resolves to another model would otherwise train something else).
 */
async function startWorkers(model: tfl.LayersModel, options: StepEngineOptions): Promise<ParallelTrainer> {
  const [, height, width] = model.inputs[0]!.shape as number[];
  const shapes = model.weights.map((w) => w.shape as number[]);
  const initialWeights = model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
  const { modelSpec, backend, workers, classes, boxes, boxLossWeight, positiveWeight, learningRate, seed } =
    options;
  let parallel: ParallelTrainer;
  try {
    parallel = await createParallelTrainer({
      ...{ modelSpec, backend, workers, classes, boxes, boxLossWeight, positiveWeight, learningRate, seed },
      inputShape: [height!, width!, 3],
    });
  } catch (error) {
    if (!(error instanceof TrainerError) || error.code !== 'worker-failed') throw error;
    throw new TrainerError(
      'worker-failed',
      `${error.message}. The workers load the model with resolveModel('${modelSpec}'): give modelSpec ` +
        '(--model) as the model package or path, or train in one thread (workers: 1, --workers 1)',
      { cause: error },
    );
  }
  if (JSON.stringify(parallel.weightShapes) !== JSON.stringify(shapes)) {
    await parallel.dispose();
    throw new TrainerError(
      'model-mismatch',
      `the workers' model (resolveModel('${modelSpec}')) has other weights than the model being trained: ` +
        'give modelSpec as the spec that created it, or train in one thread (workers: 1)',
    );
  }
  try {
    await parallel.setWeights(initialWeights);
  } catch (error) {
    await parallel.dispose();
    throw error;
  }
  return parallel;
}

/** Steps on worker threads; the model here only receives their weights. */
class ParallelEngine implements StepEngine {
  /** Whether the workers' weights moved since the model here got them. */
  private stale = false;

  constructor(
    public model: tfl.LayersModel,
    private workers: ParallelTrainer,
    /** Holds no moments: it names the optimizer and its config in checkpoints. */
    private readonly optimizer: tf.Optimizer,
    private readonly options: StepEngineOptions,
  ) {}

  async step(batch: Batch, learningRate: number): Promise<number> {
    // The config saved with checkpoints records the rate of the moment, as the in-process optimizer's does.
    setLearningRate(this.optimizer, learningRate);
    const loss = await this.workers.step(batch.images as Float32Array, batch.labels, batch.size, {
      learningRate,
      ...(this.options.boxes ? { boxes: batch.boxes, boxMask: batch.boxMask } : {}),
    });
    this.stale = true;
    return loss;
  }

  async sync(): Promise<void> {
    if (!this.stale) return;
    const values = await this.workers.getWeights();
    const tensors = values.map((v, i) => tf.tensor(v, this.model.weights[i]!.shape as number[]));
    try {
      this.model.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
    this.stale = false;
  }

  async recalibrate(images: ImageSource, batchSize: number): Promise<void> {
    await this.sync();
    const statistics = await this.workers.batchNormStatistics(images, batchSize);
    this.model.nonTrainableWeights.forEach((weight, i) => {
      const value = tf.tensor(statistics[i]!, weight.shape as number[]);
      weight.write(value);
      value.dispose();
    });
  }

  async predict(images: ImageSource, options: PredictOptions): Promise<RawPredictions> {
    await this.sync();
    // The workers' replicas hold the weights here but their own moving statistics: predict with these.
    const nonTrainable = this.model.nonTrainableWeights.map((w) =>
      Float32Array.from(w.read().dataSync() as Float32Array),
    );
    return this.workers.predict(images, { ...options, nonTrainable });
  }

  async optimizerState(): Promise<OptimizerSnapshot> {
    return {
      className: this.optimizer.getClassName(),
      config: this.optimizer.getConfig(),
      weights: await this.workers.getOptimizerState(),
    };
  }

  async replaceModel(next: tfl.LayersModel): Promise<void> {
    const moments = await this.workers.getOptimizerState();
    await this.workers.dispose();
    this.model.dispose();
    this.model = next;
    this.workers = await startWorkers(next, this.options);
    await this.workers.setOptimizerState(moments);
  }

  async dispose(): Promise<void> {
    this.optimizer.dispose();
    await this.workers.dispose();
  }
}

/** The data-parallel engine for `model`, its workers started from its weights (and `saved`'s moments). */
export async function startParallelEngine(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  options: StepEngineOptions,
  saved: OptimizerSnapshot | undefined,
): Promise<StepEngine> {
  const workers = await startWorkers(model, options);
  try {
    if (saved) await workers.setOptimizerState(saved.weights);
  } catch (error) {
    await workers.dispose();
    throw error;
  }
  return new ParallelEngine(model, workers, optimizer, options);
}
