/*
 * What train() settles before its first step: the checked options and their defaults, the run directory (claimed,
 * resumed or new), the split, the schedule and config.json. `checkOptions` and `planRun` are pure; `prepareRun`
 * adds the files (claim, resume point, config.json) around them.
 */
import os from 'node:os';
import { type Dataset, splitDataset } from '@litter/dataset';
import * as tf from '@tensorflow/tfjs-core';
import { TrainerError } from './errors.js';
import { type ResolvedSettings, resolveSettings, resumeProblems } from './options.js';
import { claimRunDir, type RunClaim } from './run-claim.js';
import {
  type CheckpointState,
  type RunConfig,
  type RunPaths,
  readResumePoint,
  runPaths,
  writeRunConfig,
} from './run-dir.js';
import {
  describeScheduleChange,
  type SizeStage,
  type TrainingLength,
  type TrainingSchedule,
} from './schedule.js';
import type { TrainOptions, TrainSplit } from './train-types.js';

/** The run's split, every part present. */
export type Split = { train: number[]; validation: number[]; test: number[] };

/** One image size of the run (progressive resizing): its dataset, used from run fraction `from` on. */
export interface Stage {
  dataset: Dataset;
  from: number;
}

/** The options after {@link checkOptions}: what can be known before the run directory is touched. */
export interface CheckedOptions {
  settings: ResolvedSettings;
  /** The TensorFlow.js backend in use. */
  backend: string;
  stages: Stage[];
}

/** Everything the loop needs to know about the run before it starts. */
export interface RunPlan extends CheckedOptions {
  options: TrainOptions;
  paths: RunPaths;
  vocabulary: string[];
  classes: number;
  split: Split;
  /** What config.json holds. */
  config: RunConfig;
  /** The checkpoint a resumed run starts from. */
  resumeState: CheckpointState | undefined;
  /** The stage the run starts in (a resumed one: that of its checkpoint's image size). */
  stage: number;
  schedule: TrainingSchedule;
  /** For a resume with another length: how the schedule changes. */
  scheduleChange: string | undefined;
  stepsPerEpoch: number;
  /** With a time budget and no `validateEvery`: seconds between validations (10 a run). */
  validateEverySeconds: number | undefined;
  /** Whether `checkpoints/last` is saved at each validation rather than every `checkpointEvery` steps. */
  checkpointAtValidation: boolean;
  /** Write report.html when done. */
  report: boolean;
}

const sameIndices = (a: readonly number[] | undefined, b: readonly number[] | undefined): boolean => {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

function checkSplit(split: TrainSplit, size: number): Split {
  const parts = { train: split.train, validation: split.validation ?? [], test: split.test ?? [] };
  for (const [name, indices] of Object.entries(parts)) {
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= size) {
        throw new TrainerError(
          'invalid-options',
          `split.${name} holds image index ${index}, outside the dataset (${size} images): make the split from ` +
            'this dataset (splitDataset)',
        );
      }
    }
  }
  if (parts.train.length === 0) {
    throw new TrainerError(
      'empty-split',
      'the training split is empty: give more scenes to training (fewer validation/test scenes or a smaller fraction)',
    );
  }
  return parts;
}

/** The datasets of the run's stages (progressive resizing), each with the run fraction it starts at. */
function stagesOf(dataset: Dataset, progressive: TrainOptions['progressive']): Stage[] {
  if (!progressive) return [{ dataset, from: 0 }];
  const small = progressive.dataset;
  if (!(progressive.until > 0 && progressive.until < 1)) {
    throw new TrainerError(
      'invalid-options',
      `progressive.until must be a fraction of the run in (0, 1), got ${String(progressive.until)}`,
    );
  }
  if (
    small.size !== dataset.size ||
    small.labelsPath !== dataset.labelsPath ||
    JSON.stringify(small.vocabulary) !== JSON.stringify(dataset.vocabulary)
  ) {
    throw new TrainerError(
      'invalid-options',
      `progressive.dataset must be the same images as dataset at another size (${small.labelsPath}, ` +
        `${small.size} images; dataset: ${dataset.labelsPath}, ${dataset.size})`,
    );
  }
  if (small.width === dataset.width && small.height === dataset.height) return [{ dataset, from: 0 }];
  return [
    { dataset: small, from: 0 },
    { dataset, from: progressive.until },
  ];
}

/** The schedule a run was saved with (its config.json), for telling what a resume changes. */
function savedSchedule(saved: RunConfig, current: TrainingSchedule): TrainingSchedule {
  return {
    length: saved.time !== undefined ? { seconds: saved.time } : { steps: saved.steps ?? 0 },
    learningRate: saved.learningRate,
    schedule: saved.schedule,
    warmupSteps: saved.warmupSteps ?? 0,
    sizes: saved.sizes ?? current.sizes,
  };
}

/**
 * Checks the options and fills in their defaults (pure).
 * @throws {TrainerError} `invalid-options`
 */
export function checkOptions(
  options: TrainOptions,
  context: { backend: string; cores: number },
): CheckedOptions {
  const { dataset, model: factory } = options;
  const settings = resolveSettings(options, context);
  const stages = stagesOf(dataset, options.progressive);
  if (settings.boxes && !factory.supportsBoxes) {
    throw new TrainerError(
      'invalid-options',
      `model ${factory.name} has no box head: train without boxes or pick a model that supports them`,
    );
  }
  if (dataset.vocabulary.length === 0 || dataset.size === 0) {
    throw new TrainerError('invalid-options', `the dataset at ${dataset.root} has no images or no classes`);
  }
  return { settings, backend: context.backend, stages };
}

/** Why `saved` (a run's config.json) cannot be resumed with these options (none: it can). */
function resumeMismatches(options: TrainOptions, settings: ResolvedSettings, saved: RunConfig): string[] {
  const { dataset, model: factory } = options;
  const problems: string[] = [];
  if (saved.model !== factory.name) problems.push(`model ${saved.model}, now ${factory.name}`);
  if (saved.width !== dataset.width || saved.height !== dataset.height) {
    problems.push(`image size ${saved.width}x${saved.height}, now ${dataset.width}x${dataset.height}`);
  }
  if (JSON.stringify(saved.vocabulary) !== JSON.stringify(dataset.vocabulary)) {
    problems.push(`classes ${saved.vocabulary.join(', ')}, now ${dataset.vocabulary.join(', ')}`);
  }
  problems.push(...resumeProblems(saved, settings));
  const split = options.split;
  if (
    split &&
    !(
      sameIndices(split.train, saved.split.train) &&
      sameIndices(split.validation, saved.split.validation) &&
      sameIndices(split.test, saved.split.test)
    )
  ) {
    problems.push('a different split');
  }
  return problems;
}

/** The config.json of a run. */
function configOf(
  options: TrainOptions,
  checked: CheckedOptions,
  plan: { length: TrainingLength; sizes: SizeStage[]; split: Split; createdAt: string },
): RunConfig {
  const { dataset, model: factory } = options;
  const { colorJitter } = checked.settings;
  return {
    ...(colorJitter ? { colorJitter } : {}),
    format: 1,
    model: factory.name,
    backend: checked.backend,
    width: dataset.width,
    height: dataset.height,
    channels: 3,
    vocabulary: [...dataset.vocabulary],
    ...checked.settings,
    steps: 'steps' in plan.length ? plan.length.steps : undefined,
    sizes: plan.sizes,
    dataset: {
      root: dataset.root,
      labelsPath: dataset.labelsPath,
      size: dataset.size,
      fingerprint: dataset.fingerprint,
    },
    split: plan.split,
    createdAt: plan.createdAt,
  };
}

/**
 * The run's plan (pure): split, length, schedule, stage and config.json, from the checked options and, for a
 * resume, the run's config.json and last checkpoint.
 * @throws {TrainerError} `resume-mismatch` when the run was trained with other settings; `invalid-options` or
 *   `empty-split` for a bad split.
 */
export function planRun(
  options: TrainOptions,
  checked: CheckedOptions,
  resumePoint: { config: RunConfig; state: CheckpointState } | undefined,
  now: string,
): RunPlan {
  const { dataset, runDir } = options;
  const { settings, stages } = checked;
  if (resumePoint) {
    const problems = resumeMismatches(options, settings, resumePoint.config);
    if (problems.length > 0) {
      throw new TrainerError(
        'resume-mismatch',
        `cannot resume ${runDir}: it was trained with ${problems.join('; ')}. Resume with the same settings, ` +
          'or start a new run directory',
      );
    }
  }
  const split = checkSplit(
    resumePoint?.config.split ?? options.split ?? splitDataset(dataset, { seed: settings.seed }),
    dataset.size,
  );
  const stepsPerEpoch = Math.ceil(split.train.length / settings.batchSize); // EpochSampler without dropLast
  const time = settings.time;
  const length: TrainingLength =
    time !== undefined
      ? { seconds: time }
      : { steps: settings.epochs !== undefined ? settings.epochs * stepsPerEpoch : settings.steps! };
  const sizes = stages.map(({ dataset: d, from }) => ({ width: d.width, height: d.height, from }));
  const { learningRate, schedule: kind, warmupSteps } = settings;
  const schedule: TrainingSchedule = { length, learningRate, schedule: kind, warmupSteps, sizes };
  const createdAt = resumePoint?.config.createdAt ?? now;
  const state = resumePoint?.state;
  const stage = state
    ? Math.max(
        0,
        stages.findIndex((s) => s.dataset.width === state.width && s.dataset.height === state.height),
      )
    : 0;
  const scheduleChange =
    state && resumePoint
      ? describeScheduleChange(
          savedSchedule(resumePoint.config, schedule),
          schedule,
          { step: state.step, seconds: state.seconds ?? state.elapsedSeconds },
          stage,
        )
      : undefined;
  // With a time budget and no step count: 10 validations a run, evenly by time.
  const validateEverySeconds =
    time !== undefined && options.validateEvery === undefined ? time / 10 : undefined;
  return {
    ...checked,
    options,
    paths: runPaths(runDir),
    vocabulary: [...dataset.vocabulary],
    classes: dataset.vocabulary.length,
    split,
    config: configOf(options, checked, { length, sizes, split, createdAt }),
    resumeState: state,
    stage,
    schedule,
    scheduleChange,
    stepsPerEpoch,
    validateEverySeconds,
    checkpointAtValidation: validateEverySeconds !== undefined && options.checkpointEvery === undefined,
    report: options.report ?? true,
  };
}

/**
 * Checks the options, claims the run directory (into `claims`, released by the caller), reads the resume point
 * and writes config.json.
 */
export async function prepareRun(options: TrainOptions, claims: RunClaim[]): Promise<RunPlan> {
  const checked = checkOptions(options, { backend: tf.getBackend(), cores: os.availableParallelism() });
  const resume = options.resume ?? false;
  // Creates it, or refuses a folder litter did not create; one writer at a time; a new run clears only an old one.
  claims.push(await claimRunDir(options.runDir, { resume, overwrite: options.overwrite ?? false }));
  const point = resume ? await readResumePoint(options.runDir) : undefined;
  const plan = planRun(options, checked, point, new Date().toISOString());
  await writeRunConfig(options.runDir, plan.config);
  return plan;
}
