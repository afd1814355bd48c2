import { DatasetError } from './errors.js';

/** The state of a {@link SeededRandom}: four unsigned 32-bit integers, JSON-serialisable. */
export type RandomState = [number, number, number, number];

/** splitmix32: spreads a seed over 32 bits so that nearby seeds give unrelated streams. */
function splitmix32(x: number): [next: number, out: number] {
  const next = (x + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/**
 * A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) whose whole state is four
 * numbers, so it can be saved in a checkpoint and restored exactly. Not for cryptography.
 *
 * @example
 * const random = new SeededRandom(42);
 * const saved = random.state();
 * const a = random.int(10);
 * random.restore(saved);
 * random.int(10) === a; // true
 */
export class SeededRandom {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** @param seed any finite number; integers are used as they are, other numbers by their bits */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) {
      throw new DatasetError('options-invalid', `seed must be a finite number, got ${seed}`);
    }
    // Mix both 32-bit halves of the float64 so that e.g. 0.5 and 1.5 or 2**32 and 0 differ.
    const bits = new DataView(new ArrayBuffer(8));
    bits.setFloat64(0, seed);
    let x = (bits.getUint32(0) ^ Math.imul(bits.getUint32(4), 0x27d4eb2d)) >>> 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, value] = splitmix32(x);
      x = next;
      out.push(value);
    }
    [this.s0, this.s1, this.s2, this.s3] = out as RandomState;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** A generator continuing from a saved {@link SeededRandom.state}. */
  static fromState(state: RandomState): SeededRandom {
    const random = new SeededRandom(0);
    random.restore(state);
    return random;
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits. */
  next(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** An unbiased integer in [0, n), for 1 <= n <= 2**32 (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new DatasetError(
        'options-invalid',
        `SeededRandom.int(n) needs an integer n in [1, 2**32], got ${n}`,
      );
    }
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [index: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** The whole state, to save and later {@link SeededRandom.restore}. */
  state(): RandomState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  /** Continues exactly from a saved state. */
  restore(state: RandomState): void {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff) ||
      state.every((v) => v === 0)
    ) {
      throw new DatasetError(
        'sampler-invalid',
        `a random state is four unsigned 32-bit integers, not all zero; got ${JSON.stringify(state)}`,
      );
    }
    [this.s0, this.s1, this.s2, this.s3] = state;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
