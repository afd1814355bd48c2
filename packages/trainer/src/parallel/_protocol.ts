/*
 * Messages between the parallel trainer (main thread) and its workers. Requests carry an `id`; a worker answers
 * each with `done` (same id, maybe a payload) or `error`, in order. Images, labels and gradients do not travel in
 * messages: they sit in SharedArrayBuffers (layouts below).
 */

import type { ModelRegistration } from '@litter/model';

/** What a worker needs to build its replica (`workerData`). */
export interface WorkerInit {
  index: number;
  workers: number;
  modelSpec: string;
  /** Files from whose folders the model package may also be resolved (besides the trainer's own). */
  importFrom: string[];
  /** The main thread's registered model names (`registeredModels()` of @litter/model), registered here too. */
  models: Record<string, ModelRegistration>;
  inputShape: [number, number, 3];
  classes: number;
  boxes: boolean;
  boxLossWeight: number;
  positiveWeight: number;
  backend: 'wasm' | 'cpu';
  learningRate: number;
  seed: number;
}

/** Shape and size of one weight tensor. */
export interface WeightSpec {
  shape: number[];
  size: number;
}

/** A worker's model layout, reported once it is ready; every replica must report the same. */
export interface ReplicaLayout {
  /** `model.getWeights()` order. */
  weights: WeightSpec[];
  trainable: WeightSpec[];
  nonTrainable: WeightSpec[];
  /** Sum of the trainable sizes: the gradient floats per worker. */
  trainableSize: number;
  nonTrainableSize: number;
  backend: string;
}

/** One tensor of the optimizer's state, as `tf.Optimizer.getWeights()` names it, with its values copied out. */
export interface OptimizerWeight {
  name: string;
  dtype: 'float32' | 'int32';
  shape: number[];
  values: Float32Array | Int32Array;
}

/**
 * The input buffer: `capacity` images, then their labels, box targets and box masks, all float32:
 * `[capacity * H * W * 3 | capacity * C | capacity * C * 4 | capacity * C]` (the last two only with boxes).
 */
export interface InputLayout {
  capacity: number;
  pixels: number;
  classes: number;
  boxes: boolean;
}

export function inputOffsets(layout: InputLayout): {
  images: number;
  labels: number;
  boxes: number;
  mask: number;
  total: number;
} {
  const { capacity, pixels, classes, boxes } = layout;
  const labels = capacity * pixels;
  const boxTargets = labels + capacity * classes;
  const mask = boxTargets + (boxes ? capacity * classes * 4 : 0);
  const total = mask + (boxes ? capacity * classes : 0);
  return { images: 0, labels, boxes: boxTargets, mask, total };
}

/**
 * The gradient buffer: one region per worker of `trainableSize + nonTrainableSize` floats: the gradient of its
 * shard's share of the loss (trainable weights in order, flattened), then its non-trainable weights after the
 * forward pass (batch-norm moving statistics).
 */
export const regionSize = (layout: ReplicaLayout) => layout.trainableSize + layout.nonTrainableSize;

/**
 * The buffers the workers share besides the inputs. `gradients`: see {@link regionSize}. `update`: the trainable
 * weights, flat, then Adam's first and second moments (`3 * trainableSize` floats); each worker updates its own
 * range of them (`weightRange`) and then loads all the weights. `losses`: one float64 per worker, its shard's
 * loss. `barrier`: the `Barrier` the workers meet at (after the gradients, after the update).
 */
export interface SharedBuffers {
  gradients: SharedArrayBuffer;
  update: SharedArrayBuffer;
  losses: SharedArrayBuffer;
  barrier: SharedArrayBuffer;
}

export type Request =
  | { type: 'inputs'; id: number; buffer: SharedArrayBuffer; layout: InputLayout }
  | ({ type: 'buffers'; id: number } & SharedBuffers)
  | {
      /**
       * A whole step: the gradient of rows [start, end), then (once every worker has its gradient) this
       * worker's range of the update, then (once every range is updated) all the weights loaded. A batch whose
       * summed loss is not finite updates nothing.
       */
      type: 'step';
      id: number;
      batchSize: number;
      start: number;
      end: number;
      /** Visible boxes in the whole batch: the box loss divides by it. */
      maskTotal: number;
      learningRate: number;
      /** Per worker, its shard's share of the batch: how much its non-trainable weights count. */
      shares: number[];
    }
  /** The images of `batch-norm` and `predict` requests: HWC uint8 at the input shape, one after the other. */
  | { type: 'images'; id: number; buffer: SharedArrayBuffer }
  | {
      /**
       * Precise batch norm on images [start, end) of the image buffer (whole batches of `batchSize` of them):
       * the non-trainable weights after `recalibrateOn`, i.e. the mean over these batches of their statistics.
       * The replica's own are left as they were.
       */
      type: 'batch-norm';
      id: number;
      start: number;
      end: number;
      batchSize: number;
    }
  | {
      /**
       * The model's outputs on images [start, end) of the image buffer (`predictRaw`), with `nonTrainable`
       * (flat, `model.nonTrainableWeights` order) in place of the replica's own while predicting, when given.
       */
      type: 'predict';
      id: number;
      start: number;
      end: number;
      batchSize: number;
      testTimeFlip: boolean;
      nonTrainable?: Float32Array;
    }
  | { type: 'get-weights'; id: number }
  | { type: 'set-weights'; id: number; weights: Float32Array[] }
  | { type: 'get-optimizer'; id: number }
  | { type: 'set-optimizer'; id: number; state: OptimizerWeight[] };

export type Reply =
  | { type: 'ready'; layout: ReplicaLayout }
  | {
      type: 'done';
      id: number;
      /** Milliseconds the worker spent on the request. */
      ms: number;
      loss?: number;
      /**
       * Of a `step`: milliseconds computing the gradient, waiting for the others, updating and loading; the
       * tensors the worker holds after it.
       */
      phases?: { computeMs: number; waitMs: number; updateMs: number; tensors: number };
      weights?: Float32Array[];
      state?: OptimizerWeight[];
      /** Of a `batch-norm`: the non-trainable weights, flat. */
      nonTrainable?: Float32Array;
      /** Of a `predict`: the raw outputs (`RawPredictions`' arrays). */
      predictions?: { logits: Float32Array; boxes?: Float32Array; scores?: Float32Array };
    }
  | { type: 'error'; id: number | undefined; message: string; stack: string | undefined };

/** A request without its id (the replica numbers them). */
export type RequestBody = DistributiveOmit<Request, 'id'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
