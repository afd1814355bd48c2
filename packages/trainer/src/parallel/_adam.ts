import type { OptimizerWeight } from './_protocol.js';

/** Indices [start, end) of the flat weights: the part of the update one worker makes. */
export interface WeightRange {
  start: number;
  end: number;
}

/** The `workers` parts of `size` flat weights, as even as possible, in order: worker `index`'s is the `index`-th. */
export function weightRange(size: number, workers: number, index: number): WeightRange {
  return { start: Math.floor((index * size) / workers), end: Math.floor(((index + 1) * size) / workers) };
}

/**
 * Adam as `tf.train.adam(learningRate)` computes it (beta1 0.9, beta2 0.999, epsilon 1e-7 as the wasm and cpu
 * backends give it), on one flat array of all trainable weights, in a single pass that also sums the workers'
 * gradients. tfjs's Adam makes some fifteen passes over every weight (one per tensor op), which for seed-cnn's
 * 6.5 M weights costs more than this whole update.
 *
 * The moments may live in shared memory (`moments`), and an update may cover a range of the weights only: the
 * data-parallel workers each update their own range of the shared weights and moments, so every weight is
 * updated once per step, not once per worker.
 *
 * The state reads and writes in `tf.Optimizer.getWeights()` layout: `iter`, then each weight's first moment
 * (`<name>/m`), then each second moment (`<name>/v`), so it is interchangeable with a tfjs Adam's.
 */
export class FlatAdam {
  readonly beta1 = 0.9;
  readonly beta2 = 0.999;
  readonly epsilon = 1e-7;
  readonly firstMoment: Float32Array;
  readonly secondMoment: Float32Array;
  iterations = 0;

  constructor(
    readonly size: number,
    moments: { first: Float32Array; second: Float32Array } = {
      first: new Float32Array(size),
      second: new Float32Array(size),
    },
  ) {
    if (moments.first.length !== size || moments.second.length !== size) {
      throw new Error(`Adam's moments for ${size} weights hold ${size} values each`);
    }
    this.firstMoment = moments.first;
    this.secondMoment = moments.second;
  }

  /**
   * One update of `weights[range]` in place with the gradient `sum(parts)`, added in order and rounded to
   * float32 after each addition, so that every replica (and every split into ranges) computes the same bits.
   * Counts one iteration whatever the range.
   */
  update(
    weights: Float32Array,
    parts: readonly Float32Array[],
    learningRate: number,
    range: WeightRange = { start: 0, end: this.size },
  ): void {
    this.iterations++;
    const { beta1, beta2, epsilon } = this;
    const step = learningRate / (1 - beta1 ** this.iterations);
    const scale = 1 / (1 - beta2 ** this.iterations);
    const m = this.firstMoment;
    const v = this.secondMoment;
    const { start, end } = range;
    const first = parts[0]!;
    // The common cases get loops of their own: an inner loop over the parts costs more than the update.
    if (parts.length === 1) {
      for (let i = start; i < end; i++) {
        const g = first[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * g;
        const vi = beta2 * v[i]! + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        weights[i] = weights[i]! - (step * mi) / (Math.sqrt(vi * scale) + epsilon);
      }
      return;
    }
    const second = parts[1]!;
    if (parts.length === 2) {
      for (let i = start; i < end; i++) {
        const g = Math.fround(first[i]! + second[i]!);
        const mi = beta1 * m[i]! + (1 - beta1) * g;
        const vi = beta2 * v[i]! + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        weights[i] = weights[i]! - (step * mi) / (Math.sqrt(vi * scale) + epsilon);
      }
      return;
    }
    for (let i = start; i < end; i++) {
      let g = Math.fround(first[i]! + second[i]!);
      for (let k = 2; k < parts.length; k++) g = Math.fround(g + parts[k]![i]!);
      const mi = beta1 * m[i]! + (1 - beta1) * g;
      const vi = beta2 * v[i]! + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      weights[i] = weights[i]! - (step * mi) / (Math.sqrt(vi * scale) + epsilon);
    }
  }

  /** The state as `tf.Optimizer.getWeights()` lists it; `weights` names and sizes the trainable weights in order. */
  getState(weights: readonly { name: string; shape: number[]; size: number }[]): OptimizerWeight[] {
    const slices = (moments: Float32Array, suffix: string) => {
      let offset = 0;
      return weights.map(({ name, shape, size }) => {
        const values = moments.slice(offset, offset + size);
        offset += size;
        return { name: `${name}/${suffix}`, dtype: 'float32' as const, shape, values };
      });
    };
    return [
      { name: 'iter', dtype: 'int32', shape: [], values: Int32Array.of(this.iterations) },
      ...slices(this.firstMoment, 'm'),
      ...slices(this.secondMoment, 'v'),
    ];
  }

  /**
   * Restores a state from {@link getState} or a tfjs Adam's `getWeights()` (matched by position: iterations,
   * first moments, second moments). A state with no moments (an optimizer that never stepped) zeroes them.
   * Only the moments in `range` are written (shared moments: each worker writes its own range).
   */
  setState(
    state: readonly OptimizerWeight[],
    weights: readonly { size: number }[],
    range: WeightRange = { start: 0, end: this.size },
  ): void {
    const [iterations, ...moments] = state;
    if (iterations === undefined || iterations.values.length !== 1) {
      throw new Error('an Adam state starts with the iteration count');
    }
    if (moments.length !== 0 && moments.length !== 2 * weights.length) {
      throw new Error(
        `an Adam state for ${weights.length} weights holds ${2 * weights.length} moments, got ${moments.length}`,
      );
    }
    const first = new Float32Array(this.size);
    const second = new Float32Array(this.size);
    let offset = 0;
    weights.forEach(({ size }, i) => {
      const m = moments[i];
      const v = moments[weights.length + i];
      if (m && v) {
        if (m.values.length !== size || v.values.length !== size) {
          throw new Error(
            `Adam moments ${m.name} and ${v.name} do not have the ${size} values of their weight`,
          );
        }
        first.set(m.values, offset);
        second.set(v.values, offset);
      }
      offset += size;
    });
    this.iterations = Number(iterations.values[0]);
    this.firstMoment.set(first.subarray(range.start, range.end), range.start);
    this.secondMoment.set(second.subarray(range.start, range.end), range.start);
  }
}
