/*
 * One definition per training option: TRAIN_OPTIONS below. From it come the option types of train() and of
 * config.json (TrainSettings), their checks and defaults (resolveSettings), the resume checks (resumeProblems),
 * and in @litter/cli the flags of `litter train`, their parsing and --help. Adding a hyperparameter is adding an
 * entry here and using its value: nothing else.
 *
 * This module imports nothing heavy (`@litter/trainer/options`): the CLI reads it before TensorFlow.js loads.
 */
import { TrainerError } from './errors.js';

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

interface OptionCommon {
  /** The `litter train` flag (kebab-case, without `--`). */
  flag: string;
  /** What the flag's value looks like in --help, e.g. `N`. */
  hint?: string;
  /** One line for --help (the default is appended). */
  description: string;
  /** How --help states the default when it is not a plain value, e.g. `one per core`. */
  defaultText?: string;
  /**
   * On resume: `same` must equal the run's (`resume-mismatch` otherwise); `given` is never taken from the run's
   * config.json; by default the run's value is kept unless given anew.
   */
  resume?: 'same' | 'given';
}

/** One option's definition: its kind, range and default, and how the CLI shows it. */
export type OptionSpec = OptionCommon &
  (
    | { type: 'integer'; min: number; max?: number; default?: number }
    | {
        type: 'number';
        min: number;
        minExclusive?: boolean;
        max?: number;
        maxExclusive?: boolean;
        default?: number;
      }
    | { type: 'boolean'; default: boolean }
    /** Named numbers, each in `[min, max)` (the CLI takes them comma-separated, in this order). */
    | { type: 'numbers'; names: readonly string[]; min: number; max: number }
    | { type: 'choice'; choices: readonly string[]; default: string }
    | { type: 'string'; default?: string }
  );

/**
 * The training options of {@link train}, each once. The JSDoc of each entry is that of the option.
 * Entries without a `default` get theirs from {@link resolveSettings} (`checkpointEvery`, `workers`) or none
 * (`epochs`).
 */
export const TRAIN_OPTIONS = {
  /** Images per step. @default 32 */
  batchSize: {
    type: 'integer',
    min: 1,
    default: 32,
    flag: 'batch-size',
    hint: 'N',
    description: 'Images per step',
    resume: 'same',
  },
  /** Optimizer steps to train for. Give one of `steps`, `epochs` and `time`. @default 1000 */
  steps: {
    type: 'integer',
    min: 1,
    default: 1000,
    flag: 'steps',
    hint: 'N',
    description: 'Train for N steps instead of a time budget',
  },
  /** Passes over the training split (each `ceil(train / batchSize)` steps) instead of `steps`. */
  epochs: {
    type: 'integer',
    min: 1,
    flag: 'epochs',
    hint: 'N',
    description: 'Train for N passes over the training split instead of --steps',
    resume: 'given',
  },
  /**
   * A wall-clock budget in seconds instead of a number of steps: the cosine decay and the progressive resizing
   * are laid out on it, and the run ends with its final validation and report inside it. The clock counts the
   * training loop (steps, validations, checkpoints), is recorded in every checkpoint and goes on across resumes:
   * the schedule is a function of that recorded progress. A resume may give a longer budget.
   */
  time: {
    type: 'number',
    min: 0,
    minExclusive: true,
    flag: 'time',
    hint: 'SECONDS',
    description: 'Train for this many seconds instead of --steps (the schedule is laid out on the time)',
  },
  /** Adam's learning rate (the peak one with `schedule: 'cosine'`). @default 1e-4 (as the seed) */
  learningRate: {
    type: 'number',
    min: 0,
    minExclusive: true,
    default: 1e-4,
    flag: 'lr',
    hint: 'RATE',
    description: 'Adam learning rate',
  },
  /** `cosine` decays the learning rate from `learningRate` to 0 over the run. @default 'constant' */
  schedule: {
    type: 'choice',
    choices: SCHEDULES,
    default: 'constant',
    flag: 'schedule',
    description: 'Learning-rate schedule: cosine decays to 0 over the run',
  },
  /**
   * Raise the learning rate linearly over the first this many steps (step k of them uses (k + 1) / warmupSteps
   * of the scheduled rate): large rates such as 3e-3 otherwise throw fresh weights about. @default 0
   */
  warmupSteps: {
    type: 'integer',
    min: 0,
    default: 0,
    flag: 'warmup-steps',
    hint: 'N',
    description: 'Raise the learning rate linearly over the first N steps',
  },
  /**
   * Mirror each training image left-right with probability 1/2 at every step (its boxes too), drawn from the
   * run's seeded generator (so a resume flips the same images). For scenes whose left and right are alike.
   * @default false
   */
  flip: {
    type: 'boolean',
    default: false,
    flag: 'flip',
    description: 'Mirror half the training images left-right at every step, boxes too',
  },
  /**
   * Predict each image and its left-right mirror and average the two (logits, and boxes mirrored back), at
   * every validation, at the final evaluation, and in `litter evaluate`, `predict` and `report` of the run
   * (they follow its config.json). A second forward pass per prediction. It suits models trained with `flip`:
   * on three render sets it raised held-out exact match by 0.009 on average (30 of 43 trained runs up, 9 down)
   * and box IoU by 0.02-0.05 (BENCHMARKS.md, "Test-time flips"). @default false (the CLI: true)
   */
  testTimeFlip: {
    type: 'boolean',
    default: false,
    flag: 'test-time-flip',
    description: 'Average the predictions of each image and its mirror (validation, evaluation, predict)',
  },
  /**
   * Zoom each training image out by a random factor in `[1 - zoomOut, 1]` (uniform), about a random point
   * (see `shift`), its boxes with it; the border pixels fill what the image no longer covers
   * (`augmentGeometry`). Objects then appear smaller and at other places than in the renders, and none is cut
   * off (zooming in, i.e. random crops, cut objects at the border and scored lower on held-out scenes:
   * BENCHMARKS.md, "The recipe on three render sets"). Five draws from the run's generator per image when this
   * or `shift` is on. `litter train` zooms out to 0.75 by default (not with boxes: `_defaults.ts` in
   * @litter/cli). @default 0 (off)
   */
  zoomOut: {
    type: 'number',
    min: 0,
    max: 0.9,
    default: 0,
    flag: 'zoom-out',
    hint: 'F',
    description:
      'Zoom each training image out by a random factor in [1 - F, 1] (boxes too), the border repeated; 0 turns it off',
  },
  /**
   * Shift each training image by up to this fraction of its size each way (boxes too), with `zoomOut`'s
   * transform. @default 0 (off)
   */
  shift: {
    type: 'number',
    min: 0,
    max: 0.5,
    default: 0,
    flag: 'shift',
    hint: 'F',
    description: 'Shift each training image by up to F of its size each way (boxes too); 0 turns it off',
  },
  /**
   * Stretch each training image along one axis (x or y, even odds) by a random factor in `[1, 1 + stretch]`
   * (uniform), cropping that axis at a random place, its boxes with it (`augmentGeometry`'s `stretch`): objects
   * appear wider or taller than rendered, so the boxes' sizes are read from the pixels rather than from each
   * class's usual shape, and nothing is filled in. An object cropped wholly away is no longer visible. Two more
   * draws from the run's generator per image (with `zoomOut`'s and `shift`'s five). `litter train` stretches by
   * up to 0.3 with boxes (`_defaults.ts` in @litter/cli). @default 0 (off)
   */
  stretch: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0,
    flag: 'stretch',
    hint: 'F',
    description:
      'Stretch each training image along x or y by a random factor in [1, 1 + F] (boxes too); 0 turns it off',
  },
  /**
   * For models with batch normalisation: before each validation and at the end of training, replace the moving
   * mean and variance with their average over this many training images (evenly spaced over the training
   * split) run with the current weights ("precise batch norm"). The moving averages lag far behind weights that
   * move fast, and a model evaluated with them scores well below what its weights can. 0 keeps them.
   * @default 256
   */
  recalibrateBatchNorm: {
    type: 'integer',
    min: 0,
    default: 256,
    flag: 'recalibrate-bn',
    hint: 'IMAGES',
    description:
      'Before each validation, re-estimate batch-norm statistics on this many training images; 0 keeps the moving averages',
  },
  /** Write a `step` row to the metrics every this many steps (and at the last step). @default 100 (as the seed) */
  logEvery: {
    type: 'integer',
    min: 1,
    default: 100,
    flag: 'log-every',
    hint: 'N',
    description: 'Log a step line every N steps',
  },
  /**
   * Validate every this many steps, and always at the last step. @default 500, or with `time`: 10 times a run,
   * evenly by time, at most a tenth of the clock (slow validations space out), half as often before the final
   * size of progressive resizing (those validations only report progress), with boxes not within a spacing after
   * the switch to the final size (the box head adapts first), and none within half a spacing of the last step's
   * own
   */
  validateEvery: {
    type: 'integer',
    min: 1,
    default: 500,
    flag: 'validate-every',
    hint: 'N',
    description: 'Validate every N steps',
  },
  /** Save `checkpoints/last` every this many steps, and always at the end. @default validateEvery */
  checkpointEvery: {
    type: 'integer',
    min: 1,
    flag: 'checkpoint-every',
    hint: 'N',
    description: 'Save the last checkpoint every N steps',
    defaultText: 'at each validation',
  },
  /**
   * Photometric augmentation: each training image gets a random brightness, contrast and saturation (factors
   * in `[1 - x, 1 + x]`) and hue rotation (`[-hue, hue]` of a turn), drawn from the run's seeded generator.
   * Off in train(); `litter train` turns it on (0.2, 0.2, 0.2, 0.03: BENCHMARKS.md, "Session 7 (issue 11)").
   * @default undefined (off)
   */
  colorJitter: {
    type: 'numbers',
    names: ['brightness', 'contrast', 'saturation', 'hue'],
    min: 0,
    max: 1,
    flag: 'color-jitter',
    hint: 'B,C,S,H',
    description:
      'Photometric augmentation: brightness, contrast, saturation factors within 1 +- B, C, S and a hue turn within +- H, e.g. 0.2,0.2,0.2,0.03',
    defaultText: 'off',
  },
  /** Which validation metric picks `checkpoints/best`. @default 'loss' */
  bestMetric: {
    type: 'choice',
    choices: BEST_METRICS,
    default: 'loss',
    flag: 'best-metric',
    description: 'Validation metric that picks the best checkpoint, the one reported and used',
  },
  /** Seed of the model's initial weights, the split, the sampler and the flips. @default 0 */
  seed: {
    type: 'integer',
    min: 0,
    max: 2 ** 32 - 1,
    default: 0,
    flag: 'seed',
    hint: 'N',
    description: 'Seed of the weights, the shuffling and the scene split',
  },
  /** Train the box head too (the factory must support it). @default false */
  boxes: {
    type: 'boolean',
    default: false,
    flag: 'boxes',
    description:
      'Also learn a box per class (the model needs a box head: seed-cnn and lite have one); predict then prints boxes',
    resume: 'same',
  },
  /** Weight of the box head's box terms (for CenterNet: focal loss, size and offset L1) against the classification loss. @default 1 */
  boxLossWeight: {
    type: 'number',
    min: 0,
    minExclusive: true,
    default: 1,
    flag: 'box-loss-weight',
    hint: 'W',
    description:
      "Weight of the box head's box terms (CenterNet: heatmap focal loss, size and offset) against the class loss, with --boxes",
  },
  /**
   * The factor on the sigmoid cross entropy of the classes an image shows (label 1): a missed object costs this
   * many false alarms. Objects in scenes a model has not seen give it less evidence than in its training scenes,
   * so at threshold 0.5 its held-out errors are mostly misses of small or partly hidden objects; a weight above 1
   * moves that balance. Measured on three render sets (BENCHMARKS.md, "Session 7 (issue 11)"): 2 and 3 traded
   * misses for false alarms as meant but were no better on average (one set gained, one lost), hence the
   * default. @default 1 (plain cross entropy)
   */
  positiveWeight: {
    type: 'number',
    min: 0,
    minExclusive: true,
    default: 1,
    flag: 'positive-weight',
    hint: 'W',
    description: 'Factor on the class loss of visible objects: a miss costs W false alarms',
  },
  /**
   * Worker threads for data-parallel training on the `wasm` and `cpu` backends: each holds a replica of the
   * model and computes the gradient of its share of every batch; the gradients are summed in a fixed order and
   * every replica applies the same Adam step (see `createParallelTrainer` in `@litter/trainer/parallel`). The
   * losses equal single-thread training's within float rounding (models with batch norm normalise each share
   * with its own statistics). `1` trains in this thread. The `tensorflow` backend uses every core (or the GPU)
   * by itself: there training always runs in this thread, and more than 1 is an error.
   * @default os.availableParallelism() (one per core) on wasm and cpu, capped at batchSize; 1 on other backends
   */
  workers: {
    type: 'integer',
    min: 1,
    max: 1024,
    flag: 'workers',
    hint: 'N',
    description:
      'Worker threads training data-parallel on wasm or cpu, a model replica each; 1 trains in one thread; the tensorflow backend uses every core by itself',
    defaultText: 'one per core',
    resume: 'given',
  },
} as const satisfies Record<string, OptionSpec>;

export type TrainOptionName = keyof typeof TRAIN_OPTIONS;

/** The value an option of kind `S` takes. */
export type OptionValue<S> = S extends { type: 'integer' | 'number' }
  ? number
  : S extends { type: 'boolean' }
    ? boolean
    : S extends { choices: readonly (infer C)[] }
      ? C
      : S extends { type: 'string' }
        ? string
        : S extends { names: readonly (infer N extends string)[] }
          ? { [P in N]: number }
          : never;

/** Every training option with its value: what `config.json` records (`epochs` only when the run was given it). */
export type TrainSettings = { -readonly [K in TrainOptionName]: OptionValue<(typeof TRAIN_OPTIONS)[K]> };

/**
 * The settings after {@link resolveSettings}: defaults filled in, checked; `epochs` and `time` only when given,
 * `steps` none for a time-budgeted run.
 */
export type ResolvedSettings = Omit<TrainSettings, 'epochs' | 'time' | 'steps' | 'colorJitter'> & {
  steps: number | undefined;
  epochs: number | undefined;
  time?: number | undefined;
  /** Photometric augmentation, when on. */
  colorJitter?: ColorJitter | undefined;
};

/**
 * How strongly the photometric augmentation varies each image: each factor is drawn uniformly from
 * `[1 - x, 1 + x]`, the hue rotation from `[-hue, hue]` of a full turn. 0 leaves that property alone.
 */
export type ColorJitter = OptionValue<(typeof TRAIN_OPTIONS)['colorJitter']>;

interface Range {
  min: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
}

/** A number for messages: `2 ** 32 - 1` reads as 4294967295. */
const rangeText = (spec: Range, what: string): string =>
  spec.max === undefined && spec.min === 0 && spec.minExclusive
    ? what.replace(/^an? /, 'a positive ')
    : spec.max === undefined
      ? `${what} ${spec.minExclusive ? '>' : '>='} ${spec.min}`
      : `${what} in ${spec.minExclusive ? '(' : '['}${spec.min}, ${spec.max}${spec.maxExclusive ? ')' : ']'}`;

/** Whether `v` is a finite number in the range. */
const inRange = (spec: Range, v: unknown): boolean =>
  typeof v === 'number' &&
  Number.isFinite(v) &&
  (spec.minExclusive ? v > spec.min : v >= spec.min) &&
  (spec.max === undefined || (spec.maxExclusive ? v < spec.max : v <= spec.max));

/** Why `value` is not a value of `spec` (undefined when it is). */
export function optionProblem(spec: OptionSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'integer': {
      const ok =
        Number.isInteger(value) &&
        (value as number) >= spec.min &&
        (spec.max === undefined || (value as number) <= spec.max);
      return ok ? undefined : `must be ${rangeText(spec, 'an integer')}`;
    }
    case 'number':
      return inRange(spec, value) ? undefined : `must be ${rangeText(spec, 'a number')}`;
    case 'numbers': {
      const range = { min: spec.min, max: spec.max, maxExclusive: true };
      const record = value as Record<string, unknown>;
      const ok =
        typeof value === 'object' &&
        value !== null &&
        Object.keys(value).length === spec.names.length &&
        spec.names.every((name) => inRange(range, record[name]));
      return ok ? undefined : `must be { ${spec.names.join(', ')} }, each ${rangeText(range, 'a number')}`;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'choice':
      return spec.choices.includes(value as string)
        ? undefined
        : `must be one of ${spec.choices.map((c) => `'${c}'`).join(', ')}`;
    case 'string':
      return typeof value === 'string' && value !== '' ? undefined : 'must be a non-empty string';
  }
}

/** A value for messages: objects as JSON. */
const shownValue = (value: unknown): string =>
  typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);

/** What {@link resolveSettings} needs to know besides the options. */
export interface SettingsContext {
  /** The TensorFlow.js backend in use (`tf.getBackend()`). */
  backend: string;
  /** Cores to train on: the default worker count on wasm and cpu. */
  cores: number;
}

/** Whether the backend can train data-parallel on worker threads. */
export const isParallelBackend = (backend: string): backend is 'wasm' | 'cpu' =>
  backend === 'wasm' || backend === 'cpu';

/**
 * Checks the training options and fills in their defaults (pure: no files, no TensorFlow.js).
 *
 * @throws {TrainerError} `invalid-options` naming the option and what it must be.
 */
export function resolveSettings(options: Partial<TrainSettings>, context: SettingsContext): ResolvedSettings {
  if ([options.steps, options.epochs, options.time].filter((v) => v !== undefined).length > 1) {
    throw new TrainerError('invalid-options', 'give one of steps, epochs and time');
  }
  const parallel = isParallelBackend(context.backend);
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(TRAIN_OPTIONS) as [TrainOptionName, OptionSpec][]) {
    const given = options[name];
    const problem = given === undefined ? undefined : optionProblem(spec, given);
    if (problem) throw new TrainerError('invalid-options', `${name} ${problem}, got ${shownValue(given)}`);
    values[name] = given ?? ('default' in spec ? spec.default : undefined);
  }
  const resolved = values as ResolvedSettings;
  if (options.time !== undefined || options.epochs !== undefined) resolved.steps = undefined;
  // The defaults that depend on other options (see their entries).
  resolved.checkpointEvery ??= resolved.validateEvery;
  if (options.workers !== undefined && options.workers > 1 && !parallel) {
    throw new TrainerError(
      'invalid-options',
      `workers: ${options.workers} needs the wasm or cpu backend; the ${context.backend} backend uses every core ` +
        'by itself: leave workers out (or 1)',
    );
  }
  resolved.workers = parallel ? Math.min(options.workers ?? context.cores, resolved.batchSize) : 1;
  return resolved;
}

/** `batchSize` as a message says it: `batch size`. */
const spoken = (name: string) => name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);

/**
 * The options of a resumed run that differ from those it was trained with although they must not
 * (`resume: 'same'`), as `batch size 8, now 4`.
 */
export function resumeProblems(saved: Partial<TrainSettings>, now: Partial<TrainSettings>): string[] {
  return (Object.entries(TRAIN_OPTIONS) as [TrainOptionName, OptionSpec][])
    .filter(([name, spec]) => spec.resume === 'same' && saved[name] !== now[name])
    .map(([name]) => `${spoken(name)} ${String(saved[name])}, now ${String(now[name])}`);
}
