import { type RandomState, SeededRandom } from '@litter/dataset';
import { TrainerError } from './errors.js';

/**
 * The run's random state in a checkpoint (`state.json`'s `rng`): the state of litter's one seeded generator,
 * `SeededRandom` of `@litter/dataset` (the sampler's and the split's too), with a version.
 */
export type RunRandomState = { version: 2; algorithm: 'xoshiro128**'; state: RandomState } | RandomStateV1;

/**
 * Version 1, written before litter had one generator: mulberry32's one 32-bit word. A resume of such a checkpoint
 * goes on with `SeededRandom` seeded from that word: the run resumes, but its flips and dropout masks from then on
 * are not those the old code would have drawn.
 */
interface RandomStateV1 {
  algorithm: 'mulberry32';
  state: number;
}

/** The run's generator (flips, dropout masks) for a new run of `seed`: apart from the sampler's and the split's. */
export const runRandom = (seed: number): SeededRandom => new SeededRandom(seed ^ 0x5eed);

/** The state to save in a checkpoint. */
export const saveRandom = (random: SeededRandom): RunRandomState => ({
  version: 2,
  algorithm: 'xoshiro128**',
  state: random.state(),
});

/** The generator of a checkpoint, from either version of its state. */
export function restoreRandom(saved: RunRandomState): SeededRandom {
  if ('version' in saved && saved.version === 2) return SeededRandom.fromState(saved.state);
  if (saved.algorithm === 'mulberry32' && Number.isInteger(saved.state)) return new SeededRandom(saved.state);
  throw new TrainerError(
    'checkpoint-corrupt',
    `the checkpoint's random state ${JSON.stringify(saved)} is of no known version: start a new run`,
  );
}

/**
 * Runs synchronous `fn` with `Math.random` drawing from `random`.
 *
 * Why: TensorFlow.js seeds the random ops of layers created without a seed (dropout masks, noise) from
 * `Math.random()`. Routing those draws through a checkpointed generator makes a resumed run draw the same masks
 * as an uninterrupted one. `fn` must not await: nothing else may run while `Math.random` is replaced.
 */
export function withRandom<T>(random: { next(): number }, fn: () => T): T {
  const original = Math.random;
  Math.random = () => random.next();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
