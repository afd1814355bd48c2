import type { Dataset } from './dataset.js';
import { DatasetError } from './errors.js';
import { SeededRandom } from './random.js';
import type { EpochSampler, SamplerState } from './sampler.js';

/**
 * A batch of B images. Arrays are flat and row-major: images [B, H, W, 3], labels and boxMask [B, C],
 * boxes [B, C, 4]. From a {@link Batcher} the buffers are reused: a batch is valid until the next `next()`.
 */
export interface Batch {
  /** uint8 0-255, or float32 pixel / 255 with `format: 'float32'`. */
  images: Uint8Array | Float32Array;
  labels: Float32Array;
  boxes: Float32Array;
  boxMask: Float32Array;
  /** The dataset index of each image. */
  indices: Int32Array;
  /** B (the last batch of an epoch may be smaller than the batch size). */
  size: number;
  shape: [number, number, number, 3];
}

/** Options of {@link createBatcher}. */
export interface BatcherOptions {
  sampler: EpochSampler;
  /** `'uint8'` copies pixels; `'float32'` gives pixel / 255 in [0, 1]. @default 'uint8' */
  format?: 'uint8' | 'float32';
  /** Batches the async iterator prepares ahead of the consumer. @default 1 */
  prefetch?: number;
  /** The async iterator ends before the first batch of this epoch (counted from 0, like `sampler.epoch`). @default endless */
  epochs?: number;
}

/** Assembles batches from a dataset with an {@link EpochSampler}. */
export interface Batcher {
  /** The next batch, assembled now. Valid until the next call. */
  next(): Batch;
  /** Batches with `prefetch` prepared ahead; ends at `epochs` when given. Valid until the next step. */
  [Symbol.asyncIterator](): AsyncIterator<Batch>;
  /**
   * The sampler. While the async iterator prefetches, it is ahead of the batches handed out: save
   * {@link Batcher.state} instead of `sampler.state()` then.
   */
  readonly sampler: EpochSampler;
  /** The sampler state right after the last batch handed out (exact also while prefetching). */
  state(): SamplerState;
  /** Continues from a {@link Batcher.state} (drops prefetched batches). */
  restore(state: SamplerState): void;
}

type Pixels = Pick<
  Dataset,
  'pixels' | 'labels' | 'boxes' | 'boxMask' | 'width' | 'height' | 'vocabulary' | 'size'
>;

/** 256 float32 values i / 255 (what a float32 division gives), so conversion is a table lookup. */
const SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/** One set of batch buffers. */
class Slot {
  readonly images: Uint8Array | Float32Array;
  readonly labels: Float32Array;
  readonly boxes: Float32Array;
  readonly boxMask: Float32Array;
  readonly indices: Int32Array;

  constructor(
    private readonly dataset: Pixels,
    private readonly capacity: number,
    private readonly format: 'uint8' | 'float32',
  ) {
    const pixels = dataset.height * dataset.width * 3;
    const classes = dataset.vocabulary.length;
    this.images =
      format === 'float32' ? new Float32Array(capacity * pixels) : new Uint8Array(capacity * pixels);
    this.labels = new Float32Array(capacity * classes);
    this.boxes = new Float32Array(capacity * classes * 4);
    this.boxMask = new Float32Array(capacity * classes);
    this.indices = new Int32Array(capacity);
  }

  /** Copies the images and labels of `indices` in: work proportional to the batch, not the dataset. */
  fill(indices: Int32Array): Batch {
    const { dataset } = this;
    const n = indices.length;
    if (n > this.capacity) {
      throw new DatasetError('sampler-invalid', `a batch of ${n} does not fit buffers for ${this.capacity}`);
    }
    const pixels = dataset.height * dataset.width * 3;
    const classes = dataset.vocabulary.length;
    const size = dataset.size;
    // Locals rather than property loads in the loop.
    const source = dataset.pixels;
    const fromLabels = dataset.labels;
    const fromBoxes = dataset.boxes;
    const fromMask = dataset.boxMask;
    const { labels, boxes, boxMask } = this;
    const bytes = this.format === 'uint8' ? (this.images as Uint8Array) : undefined;
    const floats = this.format === 'float32' ? (this.images as Float32Array) : undefined;
    for (let k = 0; k < n; k++) {
      const index = indices[k]!;
      if (!(index >= 0 && index < size)) {
        throw new DatasetError(
          'sampler-invalid',
          `index ${index} is outside the dataset (${size} images): the sampler was built for another dataset`,
        );
      }
      const from = index * pixels;
      if (bytes) {
        bytes.set(source.subarray(from, from + pixels), k * pixels);
      } else if (floats) {
        const to = k * pixels;
        for (let j = 0; j < pixels; j++) floats[to + j] = SCALE[source[from + j]!]!;
      }
      // A few floats per image: plain loops beat creating subarrays to copy them.
      for (let c = 0; c < classes; c++) {
        labels[k * classes + c] = fromLabels[index * classes + c]!;
        boxMask[k * classes + c] = fromMask[index * classes + c]!;
      }
      for (let c = 0; c < classes * 4; c++) boxes[k * classes * 4 + c] = fromBoxes[index * classes * 4 + c]!;
    }
    this.indices.set(indices);
    const full = n === this.capacity;
    return {
      images: full ? this.images : this.images.subarray(0, n * pixels),
      labels: full ? this.labels : this.labels.subarray(0, n * classes),
      boxes: full ? this.boxes : this.boxes.subarray(0, n * classes * 4),
      boxMask: full ? this.boxMask : this.boxMask.subarray(0, n * classes),
      indices: full ? this.indices : this.indices.subarray(0, n),
      size: n,
      shape: [n, dataset.height, dataset.width, 3],
    };
  }
}

/**
 * Creates a batcher: `next()` assembles the sampler's next batch into reused buffers; the async iterator
 * does the same with `prefetch` batches prepared ahead.
 *
 * @example
 * const sampler = new EpochSampler({ indices: split.train, batchSize: 32, seed: 1 });
 * const batcher = createBatcher(dataset, { sampler, format: 'float32' });
 * const { images, labels, shape } = batcher.next();  // e.g. tf.tensor4d(images, shape)
 * for await (const batch of createBatcher(dataset, { sampler, epochs: 10 })) train(batch);
 */
export function createBatcher(dataset: Pixels, options: BatcherOptions): Batcher {
  const { sampler } = options;
  const format = options.format ?? 'uint8';
  if (format !== 'uint8' && format !== 'float32') {
    throw new DatasetError(
      'options-invalid',
      `format must be 'uint8' or 'float32', got ${JSON.stringify(format)}`,
    );
  }
  const prefetch = options.prefetch ?? 1;
  if (!Number.isInteger(prefetch) || prefetch < 0) {
    throw new DatasetError('options-invalid', `prefetch must be a whole number >= 0, got ${prefetch}`);
  }
  const slots = Array.from({ length: prefetch + 1 }, () => new Slot(dataset, sampler.batchSize, format));
  let slot = 0;
  /** Prefetched batches with the sampler state right after each. */
  let queue: { batch: Batch; state: SamplerState }[] = [];
  /** The sampler state after the last batch handed out, while the queue is not empty. */
  let delivered: SamplerState | undefined;
  let scheduled = false;

  const assemble = (): Batch => {
    const batch = slots[slot]!.fill(sampler.next());
    slot = (slot + 1) % slots.length;
    return batch;
  };
  const dropQueue = () => {
    if (queue.length > 0 && delivered) sampler.restore(delivered);
    queue = [];
    delivered = undefined;
  };
  const ended = () => options.epochs !== undefined && sampler.nextEpoch >= options.epochs;
  const fillAhead = () => {
    scheduled = false;
    while (queue.length < prefetch && !ended()) {
      delivered ??= sampler.state();
      const batch = assemble();
      queue.push({ batch, state: sampler.state() });
    }
  };

  return {
    sampler,
    next() {
      dropQueue();
      return assemble();
    },
    state() {
      return delivered ?? sampler.state();
    },
    restore(state) {
      queue = [];
      delivered = undefined;
      sampler.restore(state);
    },
    [Symbol.asyncIterator]() {
      return {
        next: async (): Promise<IteratorResult<Batch>> => {
          let batch: Batch;
          const head = queue.shift();
          if (head) {
            batch = head.batch;
            delivered = queue.length > 0 ? head.state : undefined;
          } else {
            if (ended()) return { done: true, value: undefined };
            batch = assemble();
          }
          // Prepare the next batches while the consumer works on this one.
          if (prefetch > 0 && !scheduled) {
            scheduled = true;
            setImmediate(fillAhead);
          }
          return { done: false, value: batch };
        },
        return: async (): Promise<IteratorResult<Batch>> => {
          dropQueue();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * The seed's convenience: `batchSize` distinct images drawn at random (all of them if the dataset is
 * smaller), in new buffers. Costs O(batchSize), unlike the seed's copy-and-shuffle of the whole list.
 *
 * @param options.random the generator to draw with @default a generator seeded from Math.random
 * @example
 * const { images, labels } = getBatch(dataset, 32);
 */
export function getBatch(
  dataset: Pixels,
  batchSize: number,
  options: { random?: SeededRandom; format?: 'uint8' | 'float32' } = {},
): Batch {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DatasetError('options-invalid', `batchSize must be a whole number >= 1, got ${batchSize}`);
  }
  const random = options.random ?? new SeededRandom(Math.random() * 2 ** 32);
  const n = Math.min(batchSize, dataset.size);
  // Floyd's algorithm: n distinct values of [0, size) in O(n), then shuffled so the order is random too.
  const chosen = new Set<number>();
  for (let j = dataset.size - n; j < dataset.size; j++) {
    const t = random.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  const indices = random.shuffle(Int32Array.from(chosen));
  return new Slot(dataset, n, options.format ?? 'uint8').fill(indices);
}
