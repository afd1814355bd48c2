/** Learning-rate schedules: `cosine` decays from the peak rate to 0 over the run. */
export const SCHEDULES = ['constant', 'cosine'] as const;
export type Schedule = (typeof SCHEDULES)[number];

/** Validation metrics that can pick `checkpoints/best`: the lowest loss, or the highest of the others. */
export const BEST_METRICS = ['loss', 'exactMatch', 'macroF1'] as const;
export type BestMetric = (typeof BEST_METRICS)[number];

/** The two checkpoints of a run directory. */
export const CHECKPOINT_KINDS = ['best', 'last'] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

/** Why a training run ended: it reached its length, it was aborted (signal), or the loss was not finite. */
export type StopReason = 'done' | 'signal' | 'nan';

/** The held-out splits a run is evaluated on. */
export type EvaluationSplit = 'validation' | 'test';
