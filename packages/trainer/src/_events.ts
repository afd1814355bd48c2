/*
 * The training loop's event hooks: the public ones of TrainerCallbacks, plus two that only litter's own
 * callbacks use (_loop-callbacks.ts: checkpoints, the metrics log), and the emitter that calls them in order.
 */
import type { StopReason } from './options.js';
import type { TrainerCallbacks } from './train-types.js';

/** A step is done: its validation (if any) and `onValidation` are behind it, the next step not begun. */
export interface StepDoneEvent {
  step: number;
  /** Whether it is the run's last step (the length is reached, a time budget ends, or a callback stopped it). */
  last: boolean;
  /** Whether the model was validated after it. */
  validated: boolean;
  /** Whether that validation was the best so far. */
  best: boolean;
}

/** The loop ended (before the optimizer and the workers go). */
export interface LoopEndEvent {
  step: number;
  stopped: StopReason;
}

/** The hooks of litter's own callbacks: the public ones and two more. */
export interface LoopCallbacks extends TrainerCallbacks {
  onStepDone?(event: StepDoneEvent): void | Promise<void>;
  onLoopEnd?(event: LoopEndEvent): void | Promise<void>;
}

/** Calls hook `name` of every callback, in order, awaiting each. */
export type Emit = <K extends keyof LoopCallbacks>(
  name: K,
  event: Parameters<NonNullable<LoopCallbacks[K]>>[0],
) => Promise<void>;

/** The emitter of `callbacks` (read when an event is emitted: entries may be added later). */
export function emitter(callbacks: readonly LoopCallbacks[]): Emit {
  return async (name, event) => {
    for (const hooks of callbacks) {
      await (hooks[name] as ((e: typeof event) => void | Promise<void>) | undefined)?.call(hooks, event);
    }
  };
}
