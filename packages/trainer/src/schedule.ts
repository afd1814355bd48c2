/**
 * The training schedule: how long a run is (optimizer steps or a wall-clock budget), the learning rate at each
 * point (linear warm-up, then constant or cosine decay to 0) and the image size at each point (progressive
 * resizing). Everything here is a pure function of the progress a checkpoint records (steps done and seconds
 * of training so far), so a resumed run continues on exactly the schedule it was on, and a resumed run with a
 * longer length re-lays the rest of the schedule on the new length ({@link describeScheduleChange} says how).
 */

/** A run's length: a number of optimizer steps, or a budget of seconds of training (wall clock). */
export type TrainingLength = { steps: number } | { seconds: number };

/** One image size of a progressive-resizing schedule: used from `from` (a fraction of the run) on. */
export interface SizeStage {
  width: number;
  height: number;
  /** Fraction of the run (0 for the first stage) from which this size is used. */
  from: number;
}

/** What {@link learningRateAt} and {@link stageAt} need. */
export interface TrainingSchedule {
  length: TrainingLength;
  /** The peak learning rate. */
  learningRate: number;
  /** `cosine` decays the rate from `learningRate` (after the warm-up) to 0 at the end of the run. */
  schedule: 'constant' | 'cosine';
  /** Linear warm-up over the first this many steps (steps, not seconds: it steadies fresh weights). */
  warmupSteps: number;
  /** Image sizes by progress, first one `from: 0`, ascending `from`. One stage: no resizing. */
  sizes: readonly SizeStage[];
}

/** How far a run is: what a checkpoint records. */
export interface Progress {
  /** Optimizer steps done. */
  step: number;
  /** Seconds of training done (wall clock of the training loop, across resumes). */
  seconds: number;
}

/** Fraction of the run done, in [0, 1]. */
export function progressOf(length: TrainingLength, progress: Progress): number {
  const fraction = 'steps' in length ? progress.step / length.steps : progress.seconds / length.seconds;
  return Math.min(1, Math.max(0, fraction));
}

/** Whether the run is over. */
export function finished(length: TrainingLength, progress: Progress): boolean {
  return 'steps' in length ? progress.step >= length.steps : progress.seconds >= length.seconds;
}

/**
 * The learning rate of the step that follows `progress`: `(k + 1) / warmupSteps` of the scheduled rate for
 * step k of the warm-up; the scheduled rate is `learningRate`, or with `cosine`
 * `learningRate * (1 + cos(pi * p)) / 2` at run fraction `p`.
 * @example learningRateAt({ length: { seconds: 120 }, learningRate: 3e-3, schedule: 'cosine', warmupSteps: 30, sizes }, { step: 100, seconds: 60 }) // 1.5e-3
 */
export function learningRateAt(schedule: TrainingSchedule, progress: Progress): number {
  const p = progressOf(schedule.length, progress);
  const scheduled =
    schedule.schedule === 'cosine'
      ? schedule.learningRate * 0.5 * (1 + Math.cos(Math.PI * p))
      : schedule.learningRate;
  return progress.step < schedule.warmupSteps
    ? (scheduled * (progress.step + 1)) / schedule.warmupSteps
    : scheduled;
}

/**
 * Index into `sizes` of the size of the step that follows `progress`. `atLeast` (the stage a resumed run was
 * in) keeps a run that was given a longer length from going back to a smaller size.
 */
export function stageAt(schedule: TrainingSchedule, progress: Progress, atLeast = 0): number {
  const p = progressOf(schedule.length, progress);
  let stage = 0;
  schedule.sizes.forEach((size, i) => {
    if (p >= size.from) stage = i;
  });
  return Math.max(stage, Math.min(atLeast, schedule.sizes.length - 1));
}

/**
 * Progressive resizing: the final size, and before it a smaller one (`first` of each side, rounded to an even
 * number of pixels) until `switchAt` of the run. The small size learns the easy part fast; the large one sees
 * the small objects (bench:tta). With `switchAt` 0, or where the sizes would be equal, one stage.
 * @example progressiveSizes({ width: 120, height: 90 }, 2 / 3, 0.3) // [{ 80x60 from 0 }, { 120x90 from 0.3 }]
 */
export function progressiveSizes(
  final: { width: number; height: number },
  first: number,
  switchAt: number,
): SizeStage[] {
  const even = (value: number) => Math.max(8, 2 * Math.round(value / 2));
  const small = { width: even(final.width * first), height: even(final.height * first) };
  if (switchAt <= 0 || (small.width === final.width && small.height === final.height) || first >= 1) {
    return [{ ...final, from: 0 }];
  }
  return [
    { ...small, from: 0 },
    { ...final, from: switchAt },
  ];
}

/** `90s`, `2m`, `1m30s`, `1h5m` from seconds (rounded). */
export function formatSeconds(seconds: number): string {
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts = [h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', s > 0 || total === 0 ? `${s}s` : ''];
  return parts.join('');
}

const lengthText = (length: TrainingLength) =>
  'steps' in length ? `${length.steps} steps` : formatSeconds(length.seconds);

/** Where progress `at` of a length is, in the length's own unit. */
const pointText = (length: TrainingLength, fraction: number) =>
  'steps' in length
    ? `step ${Math.round(fraction * length.steps)}`
    : formatSeconds(fraction * length.seconds);

/**
 * One sentence on what a new length does to a run at `progress` (for a resume that changes the length), or
 * undefined when nothing changes.
 * @example "length 2m -> 10m: the learning rate goes from 0 back up to 2.7e-3 at 2m and decays to 0 at 10m; 120x90 from 3m (was 36s)"
 */
export function describeScheduleChange(
  before: TrainingSchedule,
  after: TrainingSchedule,
  progress: Progress,
  stage: number,
): string | undefined {
  if (JSON.stringify(before.length) === JSON.stringify(after.length)) return undefined;
  const rate = (s: TrainingSchedule) => {
    const value = learningRateAt(s, progress);
    return value < 1e-12 ? '0' : value.toExponential(1);
  };
  const head = `length ${lengthText(before.length)} -> ${lengthText(after.length)}`;
  const parts: string[] = [];
  if (finished(before.length, progress) && !finished(after.length, progress)) {
    parts.push(`training goes on from ${pointText(after.length, progressOf(after.length, progress))}`);
  }
  if (after.schedule === 'cosine') {
    parts.push(
      `the learning rate is now ${rate(after)} (was ${rate(before)}) and decays to 0 at ${lengthText(after.length)}`,
    );
  }
  after.sizes.forEach((size, i) => {
    if (i === 0) return;
    const was = before.sizes[i];
    if (stage >= i) return;
    parts.push(
      `${size.width}x${size.height} from ${pointText(after.length, size.from)}` +
        (was ? ` (was ${pointText(before.length, was.from)})` : ''),
    );
  });
  return parts.length === 0 ? `${head}.` : `${head}: ${parts.join('; ')}.`;
}
