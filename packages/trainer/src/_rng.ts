/** The state of a {@link Rng}, JSON-serialisable (stored in checkpoints). */
export interface RngState {
  algorithm: 'mulberry32';
  state: number;
}

/** A small seeded generator (mulberry32) whose whole state is one 32-bit integer, so it can be checkpointed. */
export class Rng {
  private value: number;

  constructor(seed: number) {
    this.value = seed >>> 0;
  }

  static restore(state: RngState): Rng {
    return new Rng(state.state);
  }

  /** A float in [0, 1). */
  next(): number {
    this.value = (this.value + 0x6d2b79f5) >>> 0;
    let t = this.value;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  state(): RngState {
    return { algorithm: 'mulberry32', state: this.value };
  }
}

/**
 * Runs synchronous `fn` with `Math.random` drawing from `rng`.
 *
 * Why: TensorFlow.js seeds the random ops of layers created without a seed (dropout masks, noise) from
 * `Math.random()`. Routing those draws through a checkpointed generator makes a resumed run draw the same masks
 * as an uninterrupted one. `fn` must not await: nothing else may run while `Math.random` is replaced.
 */
export function withRandom<T>(rng: Rng, fn: () => T): T {
  const original = Math.random;
  Math.random = () => rng.next();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
