import { crc32 } from './_crc32.js';
import { DatasetError } from './errors.js';
import { type RandomState, SeededRandom } from './random.js';

/**
 * Everything needed to continue a sampler exactly where it was: JSON-serialisable, for checkpoints.
 * `random` is the generator's state at the start of the current epoch (the epoch's order is recomputed
 * from it); `count` and `digest` identify the indices, so that a state is not restored into another split.
 */
export interface SamplerState {
  version: 1;
  epoch: number;
  position: number;
  random: RandomState;
  batchSize: number;
  dropLast: boolean;
  shuffle: boolean;
  count: number;
  digest: number;
}

/** Options of {@link EpochSampler}. */
export interface EpochSamplerOptions {
  /** The dataset indices to draw from (e.g. `split.train`). */
  indices: readonly number[] | Int32Array;
  batchSize: number;
  /** Seed of the shuffles. @default 0 */
  seed?: number;
  /** Skip an epoch's last batch when it would be smaller than `batchSize`. @default false */
  dropLast?: boolean;
  /** Shuffle each epoch; false keeps the order of `indices`. @default true */
  shuffle?: boolean;
}

/**
 * Draws batches of dataset indices epoch by epoch: every index exactly once per epoch (the last batch may be
 * smaller unless `dropLast`), in a new seeded order each epoch. {@link EpochSampler.state} and
 * {@link EpochSampler.restore} continue a run exactly, batch for batch.
 *
 * @example
 * const sampler = new EpochSampler({ indices: split.train, batchSize: 32, seed: 1 });
 * const batch = sampler.next();        // Int32Array of dataset indices
 * const saved = sampler.state();       // JSON-serialisable
 * const again = new EpochSampler({ indices: split.train, batchSize: 32, seed: 1 });
 * again.restore(saved);                // again.next() equals sampler.next()
 */
export class EpochSampler {
  readonly batchSize: number;
  readonly dropLast: boolean;
  readonly shuffle: boolean;
  private readonly indices: Int32Array;
  private readonly order: Int32Array;
  private readonly random: SeededRandom;
  private readonly digest: number;
  private epochStart: RandomState;
  private currentEpoch = 0;
  private cursor = 0;

  constructor(options: EpochSamplerOptions) {
    const { batchSize } = options;
    this.indices = Int32Array.from(options.indices);
    this.dropLast = options.dropLast ?? false;
    this.shuffle = options.shuffle ?? true;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new DatasetError('sampler-invalid', `batchSize must be a whole number >= 1, got ${batchSize}`);
    }
    if (this.indices.length === 0)
      throw new DatasetError('sampler-invalid', 'the sampler has no indices to draw from');
    if (this.dropLast && batchSize > this.indices.length) {
      throw new DatasetError(
        'sampler-invalid',
        `batchSize ${batchSize} is larger than the ${this.indices.length} indices and dropLast is set: every batch would be dropped`,
      );
    }
    this.batchSize = batchSize;
    this.order = new Int32Array(this.indices.length);
    this.random = new SeededRandom(options.seed ?? 0);
    this.digest = crc32(
      new Uint8Array(this.indices.buffer, this.indices.byteOffset, this.indices.byteLength),
    );
    this.epochStart = this.random.state();
    this.arrange();
  }

  /** The epoch (from 0) of the batch last returned by {@link EpochSampler.next}; 0 before the first. */
  get epoch(): number {
    return this.currentEpoch;
  }

  /** How far into the current epoch's order the sampler is (indices drawn this epoch). */
  get position(): number {
    return this.cursor;
  }

  /** Batches in each epoch. */
  get batchesPerEpoch(): number {
    const n = this.indices.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The epoch that the next batch will come from. */
  get nextEpoch(): number {
    return this.epochDone() ? this.currentEpoch + 1 : this.currentEpoch;
  }

  /** The next batch of dataset indices (a new array). */
  next(): Int32Array {
    if (this.epochDone()) {
      this.currentEpoch++;
      this.epochStart = this.random.state();
      this.arrange();
      this.cursor = 0;
    }
    const end = Math.min(this.cursor + this.batchSize, this.order.length);
    const batch = this.order.slice(this.cursor, end);
    this.cursor = end;
    return batch;
  }

  /** A JSON-serialisable snapshot; {@link EpochSampler.restore} continues from it exactly. */
  state(): SamplerState {
    return {
      version: 1,
      epoch: this.currentEpoch,
      position: this.cursor,
      random: [...this.epochStart] as RandomState,
      batchSize: this.batchSize,
      dropLast: this.dropLast,
      shuffle: this.shuffle,
      count: this.indices.length,
      digest: this.digest,
    };
  }

  /**
   * Continues from a snapshot taken by {@link EpochSampler.state} of a sampler with the same indices, batch
   * size and options.
   *
   * @throws DatasetError `sampler-invalid` when the state does not belong to a sampler like this one
   */
  restore(state: SamplerState): void {
    const problems: string[] = [];
    if (state?.version !== 1) problems.push(`unknown state version ${state?.version}`);
    else {
      if (state.count !== this.indices.length || state.digest !== this.digest) {
        problems.push(`it was taken over other indices (${state.count} indices, now ${this.indices.length})`);
      }
      if (state.batchSize !== this.batchSize)
        problems.push(`batch size ${state.batchSize}, now ${this.batchSize}`);
      if (state.dropLast !== this.dropLast) problems.push(`dropLast ${state.dropLast}, now ${this.dropLast}`);
      if (state.shuffle !== this.shuffle) problems.push(`shuffle ${state.shuffle}, now ${this.shuffle}`);
      if (!Number.isInteger(state.epoch) || state.epoch < 0) problems.push(`bad epoch ${state.epoch}`);
      if (!Number.isInteger(state.position) || state.position < 0 || state.position > this.indices.length) {
        problems.push(`bad position ${state.position}`);
      }
    }
    if (problems.length > 0) {
      throw new DatasetError(
        'sampler-invalid',
        `this sampler state does not fit the sampler: ${problems.join('; ')}. Restore it into a sampler built with the same indices and options.`,
      );
    }
    this.random.restore(state.random);
    this.epochStart = this.random.state();
    this.arrange();
    this.currentEpoch = state.epoch;
    this.cursor = state.position;
  }

  private epochDone(): boolean {
    const remaining = this.order.length - this.cursor;
    return remaining === 0 || (this.dropLast && remaining < this.batchSize);
  }

  /** This epoch's order: the indices, shuffled from their original order (so the order depends only on epochStart). */
  private arrange(): void {
    this.order.set(this.indices);
    if (this.shuffle) this.random.shuffle(this.order);
  }
}
