/*
 * A data-parallel training worker: one model replica on its own TensorFlow.js backend (wasm or cpu) in a
 * worker thread. Started by createParallelTrainer from the built file (dist/parallel/worker.js): worker threads
 * run plain JavaScript.
 *
 * Per step (one `step` request): the worker takes its rows of the batch from the shared input buffer and writes
 * the gradient of its share of the loss into its region of the shared gradient buffer; once every worker has
 * done so (a barrier in shared memory, no round trip through the main thread), it sums the regions in worker
 * order over its own range of the weights and applies Adam there (_adam.ts), in the shared weights and moments;
 * once every range is done (the barrier again), it loads all the weights and averages the non-trainable ones,
 * so all replicas stay identical and each weight is updated once per step, not once per worker.
 */
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { type BoxHead, boxHeadOf, initBackend, registerModel, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { recalibrateOn } from '../_batchnorm.js';
import { batchLoss } from '../_loss.js';
import { type ImageSource, predictRaw } from '../_predict.js';
import { FlatAdam, type WeightRange, weightRange } from './_adam.js';
import { Barrier } from './_barrier.js';
import {
  type InputLayout,
  inputOffsets,
  type ReplicaLayout,
  type Reply,
  type Request,
  regionSize,
  type SharedBuffers,
  type WorkerInit,
} from './_protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Copies a float32 tensor's values into `target` at `offset`, without the array `dataSync` allocates on wasm. */
function readInto(tensor: tf.Tensor, target: Float32Array, offset: number): void {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (info: tf.TensorInfo) => Float32Array };
  // wasm: a view of its heap; cpu: dataSync is the backend's own array, no copy either.
  target.set(
    typeof backend.typedArrayFromHeap === 'function'
      ? backend.typedArrayFromHeap(tensor)
      : (tensor.dataSync() as Float32Array),
    offset,
  );
}

type Step = Extract<Request, { type: 'step' }>;
type BatchNorm = Extract<Request, { type: 'batch-norm' }>;
type Predict = Extract<Request, { type: 'predict' }>;
type Done = Omit<Extract<Reply, { type: 'done' }>, 'ms'>;

const spec = (shape: readonly (number | null)[]) => {
  const dims = shape.map((d) => d ?? 1);
  return { shape: dims, size: size(dims) };
};

/** The layout of a model's weights, as every replica reports it. */
function layoutOf(model: tfl.LayersModel, variables: tf.Variable[], backend: string): ReplicaLayout {
  const layout: ReplicaLayout = {
    weights: model.weights.map((w) => spec(w.shape)),
    trainable: variables.map((v) => spec(v.shape)),
    nonTrainable: model.nonTrainableWeights.map((w) => spec(w.shape)),
    trainableSize: 0,
    nonTrainableSize: 0,
    backend,
  };
  layout.trainableSize = layout.trainable.reduce((sum, w) => sum + w.size, 0);
  layout.nonTrainableSize = layout.nonTrainable.reduce((sum, w) => sum + w.size, 0);
  return layout;
}

/** What the workers share for the update (see SharedBuffers), as this worker sees it. */
interface Shared {
  gradients: Float32Array;
  losses: Float64Array;
  barrier: Barrier;
}

/** This worker's model replica, its Adam state and the shared buffers. */
class Replica {
  readonly variables: tf.Variable[];
  readonly layout: ReplicaLayout;
  private readonly region: number;
  /** The part of the flat trainable weights this worker updates. */
  private readonly own: WeightRange;
  private inputs: { values: Float32Array; layout: InputLayout } | undefined;
  /** The images of `batch-norm` and `predict` requests. */
  private images: Uint8Array | undefined;
  private shared: Shared | undefined;
  private readonly averaged: Float32Array;
  /**
   * The trainable weights, flat (shared by the workers once the buffers came): Adam updates them, and they then
   * replace the variables' values.
   */
  private flat: Float32Array;
  private adam: FlatAdam;
  private readonly named: { name: string; shape: number[]; size: number }[];

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly head: BoxHead | undefined,
    private readonly backend: string,
  ) {
    this.variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
    this.layout = layoutOf(model, this.variables, backend);
    this.region = regionSize(this.layout);
    this.own = weightRange(this.layout.trainableSize, init.workers, init.index);
    this.averaged = new Float32Array(this.layout.nonTrainableSize);
    this.flat = new Float32Array(this.layout.trainableSize);
    this.readWeights();
    this.adam = new FlatAdam(this.layout.trainableSize);
    this.named = this.variables.map((variable, i) => ({ name: variable.name, ...this.layout.trainable[i]! }));
  }

  /** wasm copies a tensor's values into its heap; cpu keeps the array, which must then be ours alone. */
  private copyIn(values: Float32Array): Float32Array {
    return this.backend === 'cpu' ? values.slice() : values;
  }

  /** The variables' values into this worker's range of the flat weights (the others write theirs). */
  private readWeights(): void {
    const all = new Float32Array(this.layout.trainableSize);
    let offset = 0;
    for (const variable of this.variables) {
      readInto(variable, all, offset);
      offset += variable.size;
    }
    const { start, end } = this.own;
    this.flat.set(all.subarray(start, end), start);
  }

  /** Moves the flat weights and Adam's moments (this worker's range of them) into the shared buffers. */
  private share(buffers: SharedBuffers): void {
    const size = this.layout.trainableSize;
    const { start, end } = this.own;
    const flat = new Float32Array(buffers.update, 0, size);
    const first = new Float32Array(buffers.update, size * 4, size);
    const second = new Float32Array(buffers.update, size * 8, size);
    flat.set(this.flat.subarray(start, end), start);
    first.set(this.adam.firstMoment.subarray(start, end), start);
    second.set(this.adam.secondMoment.subarray(start, end), start);
    const adam = new FlatAdam(size, { first, second });
    adam.iterations = this.adam.iterations;
    this.flat = flat;
    this.adam = adam;
    this.shared = {
      gradients: new Float32Array(buffers.gradients),
      losses: new Float64Array(buffers.losses),
      barrier: new Barrier(buffers.barrier, init.workers),
    };
  }

  /** Rows [start, end) of the shared inputs as tensors (`train()`'s loss inputs). */
  private shardTensors(start: number, end: number) {
    const { values, layout } = this.inputs!;
    const { classes } = layout;
    const offsets = inputOffsets(layout);
    const [height, width] = init.inputShape;
    const pixels = height * width * 3;
    const n = end - start;
    const slice = (at: number, per: number) => this.copyIn(values.subarray(at + start * per, at + end * per));
    return {
      images: tf.tensor4d(slice(offsets.images, pixels), [n, height, width, 3]),
      labels: tf.tensor2d(slice(offsets.labels, classes), [n, classes]),
      targets: () => tf.tensor2d(slice(offsets.boxes, classes * 4), [n, classes * 4]),
      mask: () => tf.tensor2d(slice(offsets.mask, classes), [n, classes]),
    };
  }

  /** The gradient of this worker's rows' share of the loss, into its region of the gradient buffer: their loss. */
  private compute(request: Step, gradients: Float32Array): number {
    const { layout, variables, model, head } = this;
    const own = gradients.subarray(init.index * this.region, (init.index + 1) * this.region);
    const { start, end, batchSize } = request;
    const n = end - start;
    let loss = 0;
    if (n === 0) {
      own.fill(0, 0, layout.trainableSize);
    } else {
      loss = tf.tidy(() => {
        const { images, labels, targets, mask } = this.shardTensors(start, end);
        // train()'s loss, split so that the shards' losses add up to the whole batch's (see batchLoss).
        const box = head
          ? { head, weight: init.boxLossWeight, targets: targets(), mask: mask(), count: request.maskTotal }
          : undefined;
        const { value, grads } = tf.variableGrads(
          () => batchLoss(model, images, labels, box, n / batchSize, init.positiveWeight),
          variables,
        );
        let offset = 0;
        for (const variable of variables) {
          readInto(grads[variable.name]!, own, offset);
          offset += variable.size;
        }
        return value.dataSync()[0]!;
      });
    }
    // The forward pass moved the batch-norm statistics (if any): publish them for averaging.
    this.readNonTrainableInto(own, layout.trainableSize);
    return loss;
  }

  /**
   * One training step with the other workers: this worker's gradient, then (all gradients in) its range of the
   * update, then (all ranges updated) every weight loaded and the non-trainable weights averaged by shard size.
   */
  step(request: Step): Done {
    if (!this.inputs || !this.shared) throw new Error('a step before the shared buffers were sent');
    const { gradients, losses, barrier } = this.shared;
    const started = performance.now();
    const loss = this.compute(request, gradients);
    losses[init.index] = loss;
    const computeMs = performance.now() - started;
    const waitMs = barrier.wait();
    const updating = performance.now();
    // Every worker sums the losses in the same order as the main thread: the same decision everywhere.
    let total = 0;
    for (let k = 0; k < init.workers; k++) total += losses[k]!;
    const skip = !Number.isFinite(total);
    const { layout, region } = this;
    if (!skip) {
      // The regions summed in worker order over this worker's range: the same bits whoever sums them.
      const parts = Array.from({ length: init.workers }, (_, k) =>
        gradients.subarray(k * region, k * region + layout.trainableSize),
      );
      this.adam.update(this.flat, parts, request.learningRate, this.own);
    }
    barrier.wait();
    if (!skip) {
      this.loadWeights();
      if (layout.nonTrainableSize > 0) this.averageNonTrainable(request.shares);
    }
    const phases = {
      computeMs,
      waitMs,
      updateMs: performance.now() - updating,
      tensors: tf.memory().numTensors,
    };
    return { type: 'done', id: request.id, loss, phases };
  }

  /** The flat weights into the variables. */
  private loadWeights(): void {
    let offset = 0;
    for (const variable of this.variables) {
      const value = tf.tensor(
        this.copyIn(this.flat.subarray(offset, offset + variable.size)),
        variable.shape,
      );
      variable.assign(value);
      value.dispose();
      offset += variable.size;
    }
  }

  private averageNonTrainable(shares: number[]): void {
    const { layout, region, averaged } = this;
    averaged.fill(0);
    shares.forEach((share, k) => {
      if (share === 0) return;
      const start = k * region + layout.trainableSize;
      const theirs = this.shared!.gradients.subarray(start, start + layout.nonTrainableSize);
      for (let i = 0; i < averaged.length; i++) averaged[i] = averaged[i]! + share * theirs[i]!;
    });
    this.writeNonTrainable(averaged);
  }

  /** The non-trainable weights (batch-norm statistics), flat, into `target` from `offset` on. */
  private readNonTrainableInto(target: Float32Array, offset: number): void {
    for (const weight of this.model.nonTrainableWeights) {
      readInto(weight.read(), target, offset);
      offset += weight.read().size;
    }
  }

  /** The non-trainable weights, flat, copied. */
  private readNonTrainable(): Float32Array {
    const values = new Float32Array(this.layout.nonTrainableSize);
    this.readNonTrainableInto(values, 0);
    return values;
  }

  /** Replaces the non-trainable weights with `values` (flat, as {@link readNonTrainable} gives them). */
  private writeNonTrainable(values: Float32Array): void {
    const { layout } = this;
    let offset = 0;
    this.model.nonTrainableWeights.forEach((weight, i) => {
      const count = layout.nonTrainable[i]!.size;
      const value = tf.tensor(values.slice(offset, offset + count), layout.nonTrainable[i]!.shape);
      weight.write(value);
      value.dispose();
      offset += count;
    });
  }

  /** Images [start, end) of the image buffer. */
  private imageSource(start: number, end: number): ImageSource {
    if (!this.images) throw new Error('a batch-norm or predict request before the images were sent');
    const images = this.images;
    const [height, width] = init.inputShape;
    const pixels = height * width * 3;
    return {
      count: end - start,
      height,
      width,
      imageAt: (k) => images.subarray((start + k) * pixels, (start + k + 1) * pixels),
    };
  }

  /** Precise batch norm on this worker's share of the images, its own statistics kept (`batch-norm`). */
  private batchNorm(request: BatchNorm): Done {
    const own = this.readNonTrainable();
    try {
      recalibrateOn(this.model, this.imageSource(request.start, request.end), request.batchSize);
      return { type: 'done', id: request.id, nonTrainable: this.readNonTrainable() };
    } finally {
      this.writeNonTrainable(own);
    }
  }

  /** The outputs on this worker's share of the images (`predict`), with the statistics the request gives. */
  private predict(request: Predict): Done {
    const { nonTrainable } = request;
    const own = nonTrainable ? this.readNonTrainable() : undefined;
    if (nonTrainable) this.writeNonTrainable(nonTrainable);
    try {
      const raw = predictRaw(this.model, this.imageSource(request.start, request.end), init.classes, {
        batchSize: request.batchSize,
        testTimeFlip: request.testTimeFlip,
      });
      const predictions = {
        logits: raw.logits,
        ...(raw.boxes ? { boxes: raw.boxes } : {}),
        ...(raw.scores ? { scores: raw.scores } : {}),
      };
      return { type: 'done', id: request.id, predictions };
    } finally {
      if (own) this.writeNonTrainable(own);
    }
  }

  private setWeights(weights: Float32Array[]): void {
    const tensors = weights.map((values, i) => tf.tensor(values, this.layout.weights[i]!.shape));
    try {
      this.model.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
    this.readWeights();
  }

  async handle(request: Request): Promise<Done> {
    const done = { type: 'done' as const, id: request.id };
    switch (request.type) {
      case 'inputs':
        this.inputs = { values: new Float32Array(request.buffer), layout: request.layout };
        return done;
      case 'buffers':
        this.share(request);
        return done;
      case 'step':
        return this.step(request);
      case 'images':
        this.images = new Uint8Array(request.buffer);
        return done;
      case 'batch-norm':
        return this.batchNorm(request);
      case 'predict':
        return this.predict(request);
      case 'get-weights':
        // Copies: cpu's dataSync is the backend's own array, and these are transferred away.
        return {
          ...done,
          weights: this.model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array)),
        };
      case 'set-weights':
        this.setWeights(request.weights);
        return done;
      case 'get-optimizer':
        return { ...done, state: this.adam.getState(this.named) };
      case 'set-optimizer':
        this.adam.setState(request.state, this.named, this.own);
        return done;
    }
  }
}

/** The backend, the registered models and this worker's replica of the model. */
async function createReplica(): Promise<Replica> {
  const backend = await initBackend({ backend: init.backend });
  for (const [name, entry] of Object.entries(init.models)) registerModel(name, entry);
  // As seen from the trainer's package first (its dependencies), then from the main thread's files.
  const factory = await resolveModel(init.modelSpec, {
    importFrom: [fileURLToPath(import.meta.url), ...init.importFrom],
  });
  const model = factory.create({
    inputShape: init.inputShape,
    classes: init.classes,
    boxes: init.boxes,
    seed: init.seed,
  });
  return new Replica(model, boxHeadOf(model, init.classes, [factory.boxHead]), backend.name);
}

/** Answers the main thread's requests, one at a time, in arrival order. */
function serve(replica: Replica): void {
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: Request) => {
    queue = queue.then(async () => {
      let reply: Reply;
      const started = performance.now();
      try {
        reply = { ...(await replica.handle(request)), ms: performance.now() - started };
      } catch (error) {
        reply = {
          type: 'error',
          id: request.id,
          message: error instanceof Error ? error.message : String(error),
          stack: error instanceof Error ? error.stack : undefined,
        };
      }
      const transfer = reply.type === 'done' ? transferables(reply) : [];
      port.postMessage(reply, transfer);
    });
  });
}

async function start() {
  const replica = await createReplica();
  serve(replica);
  port.postMessage({ type: 'ready', layout: replica.layout } satisfies Reply);
}

function transferables(
  reply: Pick<Extract<Reply, { type: 'done' }>, 'weights' | 'state' | 'nonTrainable' | 'predictions'>,
): ArrayBuffer[] {
  const { logits, boxes, scores } = reply.predictions ?? {};
  const arrays = [
    ...(reply.weights ?? []),
    ...(reply.state ?? []).map(({ values }) => values),
    ...[reply.nonTrainable, logits, boxes, scores].filter((a) => a !== undefined),
  ];
  // Each array its own buffer once (a wasm heap view must not be transferred: every array here is a copy).
  return [...new Set(arrays.map((values) => values.buffer as ArrayBuffer))];
}

start().catch((error: unknown) => {
  port.postMessage({
    type: 'error',
    id: undefined,
    message: error instanceof Error ? error.message : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  } satisfies Reply);
});
