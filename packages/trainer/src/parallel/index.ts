import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtModule } from '@litter/dataset';
import { registeredModels } from '@litter/model';
import type { ImageSource, PredictOptions, RawPredictions } from '../_predict.js';
import { TrainerError } from '../errors.js';
import { Barrier } from './_barrier.js';
import { WORKER_FAILED, WorkerPool } from './_pool.js';
import {
  type InputLayout,
  inputOffsets,
  type OptimizerWeight,
  type ReplicaLayout,
  regionSize,
  type SharedBuffers,
  type WeightSpec,
  type WorkerInit,
} from './_protocol.js';

export type { OptimizerWeight } from './_protocol.js';

/** Options of {@link createParallelTrainer}. */
export interface ParallelTrainerOptions {
  /** The model, as `resolveModel` takes it: `seed-cnn`, `model-lite`, a package name or a path. */
  modelSpec: string;
  /** `[height, width, 3]` of the training images. */
  inputShape: [number, number, 3];
  /** Number of classes (the model's logits). */
  classes: number;
  /** Train the box head too (as `train({ boxes: true })`). @default false */
  boxes?: boolean;
  /** Weight of the box head's box terms against the classification loss. @default 1 */
  boxLossWeight?: number;
  /** The factor on the cross entropy of visible classes (as `train({ positiveWeight })`). @default 1 */
  positiveWeight?: number;
  /** Worker threads, each with a model replica, computing the gradient of a shard of every batch. @default os.availableParallelism() */
  workers?: number;
  /** The TensorFlow.js backend of every worker. `tensorflow` uses all cores by itself: train it in-process. @default 'wasm' */
  backend?: 'wasm' | 'cpu';
  /** Adam's learning rate (a step may override it, for schedules). @default 1e-4 */
  learningRate?: number;
  /** Seed of the model's initial weights (when `initialWeights` is not given). @default 0 */
  seed?: number;
  /**
   * Starting weights, in `model.getWeights()` order (e.g. `model.getWeights().map((t) => t.dataSync())` of the
   * main thread's model, or `getWeights()` of another trainer). Without them, worker 0's freshly created weights
   * (from `seed`) are copied to the others.
   */
  initialWeights?: readonly Float32Array[];
  /**
   * Files (paths or file URLs) from whose folders the workers may also resolve the model package, when the
   * trainer's own dependencies do not include it (as `resolveModel`'s `importModule` would from the caller).
   * @default [process.argv[1], `${process.cwd()}/noop.js`]
   */
  importFrom?: readonly (string | URL)[];
  /**
   * The worker entry. Default: the built `worker.js` next to this module in `dist/parallel/` (from the sources,
   * as under vitest, the package's `dist/parallel/worker.js`: `builtModule` of @litter/dataset; build it first).
   */
  workerUrl?: URL;
}

/** Per-step options of {@link ParallelTrainer.step}. */
export interface ParallelStepOptions {
  /** Box targets, `batchSize * classes * 4` (with `boxes: true`). */
  boxes?: Float32Array;
  /** Box mask, `batchSize * classes` (with `boxes: true`). */
  boxMask?: Float32Array;
  /** Adam's learning rate for this step. @default the trainer's `learningRate` */
  learningRate?: number;
}

/** See {@link ParallelTrainer.lastStepTiming}. Per-worker lists are in worker order. */
export interface StepTiming {
  /** The step as the caller saw it. */
  wallMs: number;
  /** Each worker computing the gradient of its rows. */
  computeMs: number[];
  /** Each worker waiting for the others' gradients (the slowest waits least). */
  waitMs: number[];
  /** Each worker updating its range of the weights, waiting for the other ranges, loading all weights. */
  applyMs: number[];
  /** Tensors each worker holds after the step (`tf.memory().numTensors`): the same after every step. */
  tensors: number[];
}

/** Data-parallel training of one model on worker threads. Calls are queued: one runs at a time. */
export interface ParallelTrainer {
  /** Number of worker threads (model replicas). */
  readonly workers: number;
  /** The backend the workers run on. */
  readonly backend: 'wasm' | 'cpu';
  /** Shapes of the model's weights, in `model.getWeights()` order. */
  readonly weightShapes: readonly number[][];
  /**
   * One training step on the first `batchSize` images (`batchSize * H * W * 3` floats in [0, 1], HWC) and
   * labels (`batchSize * classes` multi-hot): every worker computes the gradient on its share of the rows, the
   * gradients are summed through shared memory, each worker updates its part of the weights (Adam) and every
   * replica then loads all of them. Resolves to the batch's loss (the same as `train()`'s). A non-finite loss
   * leaves the weights unchanged.
   */
  step(
    images: Float32Array,
    labels: Float32Array,
    batchSize: number,
    options?: ParallelStepOptions,
  ): Promise<number>;
  /** The current weights (every replica holds the same), in `model.getWeights()` order. */
  getWeights(): Promise<Float32Array[]>;
  /** Replaces the weights of every replica (`model.getWeights()` order). */
  setWeights(weights: readonly Float32Array[]): Promise<void>;
  /**
   * "Precise batch norm" of the current weights ({@link recalibrateBatchNorm}) on `images` at the input shape:
   * the model runs in training mode on them in batches of `batchSize`, the batches shared out among the
   * workers, and the result is every non-trainable weight (`model.nonTrainableWeights` order) averaged over
   * the batches: the batch-norm statistics a validation should use. The replicas keep their own moving ones.
   */
  batchNormStatistics(images: ImageSource, batchSize: number): Promise<Float32Array[]>;
  /**
   * The model's outputs on `images` in inference mode, as `predictRaw` gives them in one thread, the images
   * shared out among the workers. With `nonTrainable` (`model.nonTrainableWeights` order, e.g. from
   * {@link batchNormStatistics}), the replicas predict with those in place of their own.
   */
  predict(
    images: ImageSource,
    options?: PredictOptions & { nonTrainable?: readonly Float32Array[] },
  ): Promise<RawPredictions>;
  /** Adam's state, as `tf.Optimizer.getWeights()` lists it (iterations, then first and second moments). */
  getOptimizerState(): Promise<OptimizerWeight[]>;
  /** Restores Adam's state (from {@link getOptimizerState}, or a single-process optimizer's) on every replica. */
  setOptimizerState(state: readonly OptimizerWeight[]): Promise<void>;
  /**
   * Where the last step's time went: per worker, milliseconds computing its gradient, waiting for the others,
   * and applying the update (the rest of `wallMs` is messaging).
   */
  lastStepTiming(): StepTiming | undefined;
  /** Terminates the workers; resolves once every thread has exited. Safe to call more than once. */
  dispose(): Promise<void>;
  /** Resolves once every worker thread has exited: after {@link dispose}, or after a failure. */
  readonly closed: Promise<void>;
}

/** The options with their defaults, checked. */
interface Settings {
  backend: 'wasm' | 'cpu';
  workers: number;
  height: number;
  width: number;
  classes: number;
  boxes: boolean;
  learningRate: number;
  url: URL;
  importFrom: string[];
}

function checkOptions(options: ParallelTrainerOptions): Settings {
  const backend = options.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu') {
    throw new TrainerError(
      'invalid-options',
      `parallel training runs on the wasm or cpu backend, not '${String(backend)}': the tensorflow backend ` +
        'already uses every core, so train in-process there',
    );
  }
  const workers = options.workers ?? os.availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) {
    throw new TrainerError('invalid-options', `workers must be a positive integer, got ${String(workers)}`);
  }
  const [height, width, channels] = options.inputShape ?? [];
  if (!Number.isInteger(height) || !Number.isInteger(width) || height! < 1 || width! < 1 || channels !== 3) {
    throw new TrainerError(
      'invalid-options',
      `inputShape must be [height, width, 3], got ${JSON.stringify(options.inputShape)}`,
    );
  }
  if (!Number.isInteger(options.classes) || options.classes < 1) {
    throw new TrainerError('invalid-options', `classes must be a positive integer, got ${options.classes}`);
  }
  const learningRate = options.learningRate ?? 1e-4;
  checkLearningRate(learningRate);
  const url = options.workerUrl ?? builtModule('./worker.js', import.meta.url);
  if (url.protocol === 'file:' && !existsSync(fileURLToPath(url))) {
    throw new TrainerError(
      'invalid-options',
      `the parallel training worker ${fileURLToPath(url)} does not exist: build @litter/trainer first ` +
        '(pnpm --filter @litter/trainer build)',
    );
  }
  const importFrom = (options.importFrom ?? [process.argv[1], path.join(process.cwd(), 'noop.js')])
    .filter((entry): entry is string | URL => entry !== undefined && entry !== '')
    .map((entry) =>
      entry instanceof URL || entry.startsWith('file:') ? fileURLToPath(entry) : path.resolve(entry),
    );
  const { classes } = options;
  return {
    backend,
    workers,
    height: height!,
    width: width!,
    classes,
    boxes: options.boxes ?? false,
    learningRate,
    url,
    importFrom,
  };
}

function checkLearningRate(rate: number): void {
  if (!(rate > 0) || !Number.isFinite(rate)) {
    throw new TrainerError('invalid-options', `learningRate must be a positive number, got ${rate}`);
  }
}

/** What each worker starts from (`workerData`). */
function workerInits(options: ParallelTrainerOptions, settings: Settings): WorkerInit[] {
  const { workers, height, width, classes, boxes, backend, learningRate, importFrom } = settings;
  return Array.from({ length: workers }, (_, index) => ({
    index,
    workers,
    modelSpec: options.modelSpec,
    importFrom,
    models: registeredModels(),
    inputShape: [height, width, 3],
    classes,
    boxes,
    boxLossWeight: options.boxLossWeight ?? 1,
    positiveWeight: options.positiveWeight ?? 1,
    backend,
    learningRate,
    seed: options.seed ?? 0,
  }));
}

/**
 * Once every worker is ready: checks that they built the same model, hands them the shared gradient buffer and
 * gives them all the same weights (`initialWeights`, else worker 0's).
 */
async function handshake(
  pool: WorkerPool,
  initialWeights: readonly Float32Array[] | undefined,
): Promise<ReplicaLayout> {
  const layouts = await pool.ready();
  const first = layouts[0]!;
  if (layouts.some((other) => JSON.stringify(other) !== JSON.stringify(first))) {
    throw new TrainerError(WORKER_FAILED, 'the workers built different models from the same options');
  }
  const workers = pool.replicas.length;
  const buffers: SharedBuffers = {
    gradients: new SharedArrayBuffer(workers * regionSize(first) * 4),
    update: new SharedArrayBuffer(3 * first.trainableSize * 4),
    losses: new SharedArrayBuffer(workers * 8),
    barrier: new SharedArrayBuffer(Barrier.BYTES),
  };
  await pool.broadcast({ type: 'buffers', ...buffers });
  if (initialWeights) {
    checkWeights(
      initialWeights,
      first.weights.map((w) => w.shape),
      'initialWeights',
    );
    await pool.broadcast({ type: 'set-weights', weights: [...initialWeights] });
  } else if (pool.replicas.length > 1) {
    const [source, ...others] = pool.replicas;
    const { weights } = await source!.request({ type: 'get-weights' });
    await Promise.all(others.map((r) => r.request({ type: 'set-weights', weights: weights! })));
  }
  return first;
}

/** Checks a step's arguments against the trainer's settings. */
function checkStep(
  settings: Settings,
  pixels: number,
  batch: { images: Float32Array; labels: Float32Array; batchSize: number },
  options: ParallelStepOptions,
): void {
  const { batchSize, images, labels } = batch;
  const { classes, boxes } = settings;
  checkBatchSize(batchSize);
  if (images.length < batchSize * pixels || labels.length < batchSize * classes) {
    throw new TrainerError(
      'invalid-options',
      `a batch of ${batchSize} needs ${batchSize * pixels} image values and ${batchSize * classes} labels, ` +
        `got ${images.length} and ${labels.length}`,
    );
  }
  const { boxes: boxTargets, boxMask } = options;
  if (
    boxes &&
    (!boxTargets ||
      !boxMask ||
      boxTargets.length < batchSize * classes * 4 ||
      boxMask.length < batchSize * classes)
  ) {
    throw new TrainerError(
      'invalid-options',
      `this trainer trains boxes: give boxes (${batchSize * classes * 4} values) and boxMask ` +
        `(${batchSize * classes}) with every step`,
    );
  }
}

/** Rows [start, end) of a batch per worker, as even as possible. */
function shards(batchSize: number, workers: number): { start: number; end: number }[] {
  const base = Math.floor(batchSize / workers);
  const extra = batchSize % workers;
  let start = 0;
  return Array.from({ length: workers }, (_, k) => {
    const rows = base + (k < extra ? 1 : 0);
    const shard = { start, end: start + rows };
    start += rows;
    return shard;
  });
}

/** The trainer over a ready pool. */
class Trainer implements ParallelTrainer {
  readonly workers: number;
  readonly backend: 'wasm' | 'cpu';
  readonly weightShapes: readonly number[][];
  readonly closed: Promise<void>;
  private readonly pixels: number;
  private inputs: { values: Float32Array; layout: InputLayout } | undefined;
  /** The image buffer of `batchNormStatistics` and `predict` (grown as needed). */
  private images: Uint8Array | undefined;
  private timing: StepTiming | undefined;

  constructor(
    private readonly pool: WorkerPool,
    private readonly layout: ReplicaLayout,
    private readonly settings: Settings,
  ) {
    this.workers = settings.workers;
    this.backend = settings.backend;
    this.weightShapes = layout.weights.map((w) => w.shape);
    this.closed = pool.closed;
    this.pixels = settings.height * settings.width * 3;
  }

  step(
    images: Float32Array,
    labels: Float32Array,
    batchSize: number,
    options: ParallelStepOptions = {},
  ): Promise<number> {
    return this.pool.serial(async () => {
      checkStep(this.settings, this.pixels, { images, labels, batchSize }, options);
      const rate = options.learningRate ?? this.settings.learningRate;
      checkLearningRate(rate);
      const started = performance.now();
      const maskTotal = await this.writeBatch(images, labels, batchSize, options);
      const rows = shards(batchSize, this.workers);
      const shares = rows.map((s) => (s.end - s.start) / batchSize);
      // One message each: the workers meet at a barrier in shared memory between gradient and update.
      const replies = await Promise.all(
        this.pool.replicas.map((replica, k) =>
          replica.request({ type: 'step', batchSize, maskTotal, learningRate: rate, shares, ...rows[k]! }),
        ),
      );
      // In worker order, as each worker sums them to decide whether to update (a non-finite loss does not).
      let loss = 0;
      for (const reply of replies) loss += reply.loss ?? 0;
      const phases = replies.map((reply) => reply.phases!);
      this.timing = {
        wallMs: performance.now() - started,
        computeMs: phases.map((p) => p.computeMs),
        waitMs: phases.map((p) => p.waitMs),
        applyMs: phases.map((p) => p.updateMs),
        tensors: phases.map((p) => p.tensors),
      };
      return loss;
    });
  }

  /** Copies the batch into the shared input buffer (grown as needed); the count of visible boxes. */
  private async writeBatch(
    images: Float32Array,
    labels: Float32Array,
    batchSize: number,
    options: ParallelStepOptions,
  ): Promise<number> {
    const { classes, boxes } = this.settings;
    const pixels = this.pixels;
    if (!this.inputs || this.inputs.layout.capacity < batchSize) {
      const layout: InputLayout = { capacity: batchSize, pixels, classes, boxes };
      const buffer = new SharedArrayBuffer(inputOffsets(layout).total * 4);
      await this.pool.broadcast({ type: 'inputs', buffer, layout });
      this.inputs = { values: new Float32Array(buffer), layout };
    }
    const { values } = this.inputs;
    const offsets = inputOffsets(this.inputs.layout);
    values.set(images.subarray(0, batchSize * pixels), offsets.images);
    values.set(labels.subarray(0, batchSize * classes), offsets.labels);
    let maskTotal = 0;
    if (boxes) {
      values.set(options.boxes!.subarray(0, batchSize * classes * 4), offsets.boxes);
      const mask = options.boxMask!.subarray(0, batchSize * classes);
      values.set(mask, offsets.mask);
      for (const m of mask) maskTotal += m; // the visible boxes
    }
    return maskTotal;
  }

  lastStepTiming(): StepTiming | undefined {
    return this.timing;
  }

  /** Copies `images` into the shared image buffer (grown as needed), after checking their size. */
  private async writeImages(images: ImageSource): Promise<void> {
    const { height, width } = this.settings;
    if (images.height !== height || images.width !== width) {
      throw new TrainerError(
        'invalid-options',
        `the images are ${images.width}x${images.height}, the trainer's model takes ${width}x${height}`,
      );
    }
    const bytes = images.count * this.pixels; // HWC uint8: one byte per value
    if (!this.images || this.images.length < bytes) {
      const buffer = new SharedArrayBuffer(bytes);
      await this.pool.broadcast({ type: 'images', buffer });
      this.images = new Uint8Array(buffer);
    }
    for (let k = 0; k < images.count; k++) this.images.set(images.imageAt(k), k * this.pixels);
  }

  batchNormStatistics(images: ImageSource, batchSize: number): Promise<Float32Array[]> {
    return this.pool.serial(async () => {
      checkBatchSize(batchSize);
      await this.writeImages(images);
      const batches = Math.ceil(images.count / batchSize);
      // Whole batches per worker: the mean of the workers' means weighted by their batch counts is the mean
      // over all batches, as in one thread.
      const ranges = shards(batches, this.workers).filter((r) => r.end > r.start);
      const replies = await Promise.all(
        ranges.map((range, k) =>
          this.pool.replicas[k]!.request({
            type: 'batch-norm',
            start: range.start * batchSize,
            end: Math.min(range.end * batchSize, images.count),
            batchSize,
          }),
        ),
      );
      const mean = new Float32Array(this.layout.nonTrainableSize);
      replies.forEach((reply, k) => {
        const share = (ranges[k]!.end - ranges[k]!.start) / batches;
        reply.nonTrainable!.forEach((value, i) => {
          mean[i]! += share * value;
        });
      });
      return unflatten(mean, this.layout.nonTrainable);
    });
  }

  predict(
    images: ImageSource,
    options: PredictOptions & { nonTrainable?: readonly Float32Array[] } = {},
  ): Promise<RawPredictions> {
    return this.pool.serial(async () => {
      const batchSize = options.batchSize ?? 32;
      checkBatchSize(batchSize);
      const nonTrainable = options.nonTrainable && flatten(options.nonTrainable, this.layout.nonTrainable);
      await this.writeImages(images);
      const ranges = shards(images.count, this.workers).filter((r) => r.end > r.start);
      const replies = await Promise.all(
        ranges.map((range, k) =>
          this.pool.replicas[k]!.request({
            type: 'predict',
            ...range,
            batchSize,
            testTimeFlip: options.testTimeFlip ?? false,
            ...(nonTrainable ? { nonTrainable } : {}),
          }),
        ),
      );
      const parts = replies.map((reply) => reply.predictions!);
      const joined = (pick: (part: (typeof parts)[number]) => Float32Array | undefined) =>
        parts.length > 0 && parts.every((part) => pick(part) !== undefined)
          ? concatenate(parts.map((part) => pick(part)!))
          : undefined;
      return {
        logits: joined((part) => part.logits) ?? new Float32Array(0),
        boxes: joined((part) => part.boxes),
        scores: joined((part) => part.scores),
      };
    });
  }

  getWeights(): Promise<Float32Array[]> {
    return this.pool.serial(
      async () => (await this.pool.replicas[0]!.request({ type: 'get-weights' })).weights!,
    );
  }

  setWeights(weights: readonly Float32Array[]): Promise<void> {
    return this.pool.serial(async () => {
      checkWeights(weights, this.weightShapes, 'setWeights');
      await this.pool.broadcast({ type: 'set-weights', weights: [...weights] });
    });
  }

  getOptimizerState(): Promise<OptimizerWeight[]> {
    return this.pool.serial(
      async () => (await this.pool.replicas[0]!.request({ type: 'get-optimizer' })).state!,
    );
  }

  setOptimizerState(state: readonly OptimizerWeight[]): Promise<void> {
    return this.pool.serial(async () => {
      await this.pool.broadcast({ type: 'set-optimizer', state: [...state] });
    });
  }

  dispose(): Promise<void> {
    return this.pool.dispose();
  }
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TrainerError('invalid-options', `batchSize must be a positive integer, got ${batchSize}`);
  }
}

function concatenate(parts: readonly Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Weights laid out by `specs`, as one flat array (the workers' layout of the non-trainable weights). */
function flatten(weights: readonly Float32Array[], specs: readonly WeightSpec[]): Float32Array {
  checkWeights(
    weights,
    specs.map((spec) => spec.shape),
    'nonTrainable',
  );
  return concatenate(weights);
}

function unflatten(values: Float32Array, specs: readonly WeightSpec[]): Float32Array[] {
  let offset = 0;
  return specs.map((spec) => {
    const part = values.slice(offset, offset + spec.size);
    offset += spec.size;
    return part;
  });
}

function checkWeights(weights: readonly Float32Array[], shapes: readonly number[][], what: string): void {
  if (weights.length !== shapes.length) {
    throw new TrainerError(
      'invalid-options',
      `${what}: ${weights.length} arrays for a model with ${shapes.length} weights (give model.getWeights() order)`,
    );
  }
  weights.forEach((values, i) => {
    const expected = shapes[i]!.reduce((a, b) => a * b, 1);
    if (!(values instanceof Float32Array) || values.length !== expected) {
      throw new TrainerError(
        'invalid-options',
        `${what}: weight ${i} has ${values?.length} values, the model's has ${expected} (shape ${shapes[i]!.join('x')})`,
      );
    }
  });
}

/**
 * Starts data-parallel training on worker threads: each worker has its own TensorFlow.js backend (wasm or cpu)
 * and a replica of the model, and computes the gradient of its share of every batch; the gradients are summed
 * through a SharedArrayBuffer in a fixed order, each worker applies Adam to its part of the weights (shared
 * memory too) and every replica loads the result, so the replicas stay identical and the losses follow
 * single-process training (without batch norm: within float rounding; with
 * batch norm, each shard normalises with its own batch statistics, as PyTorch's DistributedDataParallel does,
 * and the moving statistics are averaged after each step).
 *
 * Workers run the built `dist/parallel/worker.js`. Idle workers do not keep the process alive; still, call
 * `dispose()` when done. A worker that fails rejects the pending call and terminates all workers.
 *
 * @throws {TrainerError} `invalid-options` for bad options, or `worker-failed` when a worker cannot start.
 * @example
 * const trainer = await createParallelTrainer({ modelSpec: 'seed-cnn', inputShape: [64, 64, 3], classes: 5 });
 * try {
 *   const loss = await trainer.step(batch.images, batch.labels, batch.size);
 * } finally {
 *   await trainer.dispose();
 * }
 */
export async function createParallelTrainer(options: ParallelTrainerOptions): Promise<ParallelTrainer> {
  const settings = checkOptions(options);
  const pool = new WorkerPool(settings.url, workerInits(options, settings));
  let layout: ReplicaLayout;
  try {
    layout = await pool.track(() => handshake(pool, options.initialWeights));
  } catch (error) {
    await pool.dispose();
    throw pool.error ?? error;
  }
  return new Trainer(pool, layout, settings);
}
