/*
 * A data-parallel training worker: one model replica on its own TensorFlow.js backend (wasm or cpu) in a
 * worker thread. Started by createParallelTrainer from the built file (dist/parallel/worker.js): worker threads
 * run plain JavaScript.
 *
 * Per step: `compute` takes the worker's rows of the batch from the shared input buffer and writes the gradient
 * of its share of the loss into its region of the shared gradient buffer; once every worker has done so, `apply`
 * sums the regions in worker order and applies Adam in the same pass (_adam.ts: the same float operations on
 * every replica), then averages the non-trainable weights, so all replicas stay identical.
 */
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { boxHeadOf, initBackend, registerModel, resolveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import { batchLoss } from '../_loss.js';
import { FlatAdam } from './_adam.js';
import {
  type InputLayout,
  inputOffsets,
  type ReplicaLayout,
  type Reply,
  type Request,
  regionSize,
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

async function start() {
  const backend = await initBackend({ backend: init.backend });
  for (const [name, entry] of Object.entries(init.models)) registerModel(name, entry);
  // As seen from the trainer's package first (its dependencies), then from the main thread's files.
  const factory = await resolveModel(init.modelSpec, {
    importFrom: [fileURLToPath(import.meta.url), ...init.importFrom],
  });
  const [height, width] = init.inputShape;
  const model = factory.create({
    inputShape: init.inputShape,
    classes: init.classes,
    boxes: init.boxes,
    seed: init.seed,
  });
  const head = boxHeadOf(model, init.classes, [factory.boxHead]);
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const nonTrainable = model.nonTrainableWeights;
  const spec = (shape: readonly (number | null)[]) => {
    const dims = shape.map((d) => d ?? 1);
    return { shape: dims, size: size(dims) };
  };
  const layout: ReplicaLayout = {
    weights: model.weights.map((w) => spec(w.shape)),
    trainable: variables.map((v) => spec(v.shape)),
    nonTrainable: nonTrainable.map((w) => spec(w.shape)),
    trainableSize: 0,
    nonTrainableSize: 0,
    backend: backend.name,
  };
  layout.trainableSize = layout.trainable.reduce((sum, w) => sum + w.size, 0);
  layout.nonTrainableSize = layout.nonTrainable.reduce((sum, w) => sum + w.size, 0);
  const region = regionSize(layout);
  // wasm copies a tensor's values into its heap; cpu keeps the array, which must then be ours alone.
  const copyIn = (values: Float32Array) => (backend.name === 'cpu' ? values.slice() : values);

  let inputs: { values: Float32Array; layout: InputLayout } | undefined;
  let gradients: Float32Array | undefined;
  const averaged = new Float32Array(layout.nonTrainableSize);
  // The trainable weights, flat: Adam updates this copy, which then replaces the variables' values.
  const flat = new Float32Array(layout.trainableSize);
  const readWeights = () => {
    let offset = 0;
    for (const variable of variables) {
      readInto(variable, flat, offset);
      offset += variable.size;
    }
  };
  readWeights();
  const adam = new FlatAdam(layout.trainableSize);
  const named = variables.map((variable, i) => ({ name: variable.name, ...layout.trainable[i]! }));

  function compute(request: Extract<Request, { type: 'compute' }>): number {
    if (!inputs || !gradients) throw new Error('compute before the shared buffers were sent');
    const own = gradients.subarray(init.index * region, (init.index + 1) * region);
    const { start, end, batchSize } = request;
    const n = end - start;
    let loss = 0;
    if (n === 0) {
      own.fill(0, 0, layout.trainableSize);
    } else {
      const { values } = inputs;
      const { classes } = inputs.layout;
      const offsets = inputOffsets(inputs.layout);
      const pixels = height * width * 3;
      loss = tf.tidy(() => {
        const images = tf.tensor4d(
          copyIn(values.subarray(offsets.images + start * pixels, offsets.images + end * pixels)),
          [n, height, width, 3],
        );
        const labels = tf.tensor2d(
          copyIn(values.subarray(offsets.labels + start * classes, offsets.labels + end * classes)),
          [n, classes],
        );
        // train()'s loss, split so that the shards' losses add up to the whole batch's (see batchLoss).
        const box = head
          ? {
              head,
              weight: init.boxLossWeight,
              targets: tf.tensor2d(
                copyIn(
                  values.subarray(offsets.boxes + start * classes * 4, offsets.boxes + end * classes * 4),
                ),
                [n, classes * 4],
              ),
              mask: tf.tensor2d(
                copyIn(values.subarray(offsets.mask + start * classes, offsets.mask + end * classes)),
                [n, classes],
              ),
              count: request.maskTotal,
            }
          : undefined;
        const { value, grads } = tf.variableGrads(
          () => batchLoss(model, images, labels, box, n / batchSize),
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
    let offset = layout.trainableSize;
    for (const weight of nonTrainable) {
      readInto(weight.read(), own, offset);
      offset += weight.read().size;
    }
    return loss;
  }

  function apply(request: Extract<Request, { type: 'apply' }>): void {
    if (!gradients) throw new Error('apply before the shared buffers were sent');
    if (request.skip) return;
    // Every replica sums the same regions in the same order and makes the same update: same bits everywhere.
    const parts = Array.from({ length: init.workers }, (_, k) =>
      gradients!.subarray(k * region, k * region + layout.trainableSize),
    );
    adam.update(flat, parts, request.learningRate);
    let offset = 0;
    for (const variable of variables) {
      const value = tf.tensor(copyIn(flat.subarray(offset, offset + variable.size)), variable.shape);
      variable.assign(value);
      value.dispose();
      offset += variable.size;
    }
    if (layout.nonTrainableSize > 0) {
      averaged.fill(0);
      request.shares.forEach((share, k) => {
        if (share === 0) return;
        const start = k * region + layout.trainableSize;
        const theirs = gradients!.subarray(start, start + layout.nonTrainableSize);
        for (let i = 0; i < averaged.length; i++) averaged[i] = averaged[i]! + share * theirs[i]!;
      });
      let offset = 0;
      nonTrainable.forEach((weight, i) => {
        const count = layout.nonTrainable[i]!.size;
        const value = tf.tensor(averaged.slice(offset, offset + count), layout.nonTrainable[i]!.shape);
        weight.write(value);
        value.dispose();
        offset += count;
      });
    }
  }

  async function handle(request: Request): Promise<Omit<Extract<Reply, { type: 'done' }>, 'ms'>> {
    switch (request.type) {
      case 'inputs':
        inputs = { values: new Float32Array(request.buffer), layout: request.layout };
        return { type: 'done', id: request.id };
      case 'gradients':
        gradients = new Float32Array(request.buffer);
        return { type: 'done', id: request.id };
      case 'compute':
        return { type: 'done', id: request.id, loss: compute(request) };
      case 'apply':
        apply(request);
        return { type: 'done', id: request.id };
      case 'get-weights':
        return {
          type: 'done',
          id: request.id,
          // Copies: cpu's dataSync is the backend's own array, and these are transferred away.
          weights: model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array)),
        };
      case 'set-weights': {
        const tensors = request.weights.map((values, i) => tf.tensor(values, layout.weights[i]!.shape));
        try {
          model.setWeights(tensors);
        } finally {
          tf.dispose(tensors);
        }
        readWeights();
        return { type: 'done', id: request.id };
      }
      case 'get-optimizer':
        return { type: 'done', id: request.id, state: adam.getState(named) };
      case 'set-optimizer':
        adam.setState(request.state, named);
        return { type: 'done', id: request.id };
    }
  }

  // One request at a time, in arrival order.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: Request) => {
    queue = queue.then(async () => {
      let reply: Reply;
      const started = performance.now();
      try {
        reply = { ...(await handle(request)), ms: performance.now() - started };
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
  port.postMessage({ type: 'ready', layout } satisfies Reply);
}

function transferables(reply: Pick<Extract<Reply, { type: 'done' }>, 'weights' | 'state'>): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const values of reply.weights ?? []) buffers.push(values.buffer as ArrayBuffer);
  for (const { values } of reply.state ?? []) buffers.push(values.buffer as ArrayBuffer);
  return buffers;
}

start().catch((error: unknown) => {
  port.postMessage({
    type: 'error',
    id: undefined,
    message: error instanceof Error ? error.message : String(error),
    stack: error instanceof Error ? error.stack : undefined,
  } satisfies Reply);
});
