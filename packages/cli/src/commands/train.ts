import os from 'node:os';
import path from 'node:path';
import type { Evaluation } from '@litter/trainer';
import { BEST_METRICS, SCHEDULES, TRAIN_OPTIONS } from '@litter/trainer/options';
import { defineCommand } from 'citty';
import {
  BACKENDS,
  choiceFlag,
  commonArgs,
  datasetCacheArgs,
  datasetCacheFlags,
  exclusive,
  intFlag,
  listFlag,
  numberFlag,
  stringFlag,
} from '../_args.js';
import { defaultTime, PROGRESSIVE_DEFAULTS, TRAIN_DEFAULTS } from '../_defaults.js';
import { parseDuration } from '../_duration.js';
import { type ChosenSize, chooseInputSize } from '../_input-size.js';
import { type Io, ioOf, printable, resolvePath, writeJson, writeLine } from '../_io.js';
import { registerBuiltinModels } from '../_models.js';
import { datasetPath, defaultRunDir, sampleDataset } from '../_paths.js';
import { duration, ProgressRenderer, progressMode } from '../_progress.js';
import { chooseSplit } from '../_split.js';
import { parseOption, RUN_OPTIONS } from '../_train-options.js';
import { CliError, ExitCode } from '../errors.js';

export default defineCommand({
  meta: {
    name: 'train',
    description: `Train a model on a dataset and print its validation report (defaults: the image size from the images and the cores, a time budget from the dataset's size, batches of ${TRAIN_DEFAULTS.batchSize}, Adam ${TRAIN_DEFAULTS.learningRate})`,
  },
  args: {
    dataset: {
      type: 'positional',
      required: false,
      valueHint: 'DATASET',
      description:
        'Folder with labels.json and the PNGs (default: the bundled sample examples/blender-cube-sphere)',
    },
    model: {
      type: 'string',
      valueHint: 'NAME|PACKAGE|PATH',
      description: `Model: a built-in name, an installed package or a local path (default: ${TRAIN_DEFAULTS.model})`,
    },
    backend: {
      type: 'string',
      valueHint: BACKENDS.join('|'),
      description: 'TensorFlow.js backend (default: the best one that loads here; see litter doctor)',
    },
    workers: {
      type: 'string',
      valueHint: 'N',
      description:
        'Worker threads training data-parallel on wasm or cpu, a model replica each; 1 trains in one thread; the tensorflow backend uses every core by itself (default: one per core)',
    },
    width: {
      type: 'string',
      valueHint: 'PX',
      description:
        "Training image width (default: the images' aspect ratio in 5,400 pixels per core, never upscaled; printed at the start)",
    },
    height: {
      type: 'string',
      valueHint: 'PX',
      description: 'Training image height (default: as --width; one of the two alone keeps the aspect ratio)',
    },
    progressive: {
      type: 'string',
      valueHint: 'F',
      description: `Progressive resizing: train at ${Math.round(PROGRESSIVE_DEFAULTS.smallScale * 100)}% of each side for the first F of the run, then at full size; 0 turns it off (default: ${PROGRESSIVE_DEFAULTS.progressive} with a time budget, 0 with --steps/--epochs)`,
    },
    'batch-size': {
      type: 'string',
      valueHint: 'N',
      description: `Images per step (default: ${TRAIN_DEFAULTS.batchSize})`,
    },
    time: {
      type: 'string',
      valueHint: 'DURATION',
      description:
        'Train for a wall-clock budget: 90s, 2m, 1h, 1m30s; the schedule is laid out on it (default: 1 s per 8 training images, 20 s to 10 min)',
    },
    steps: {
      type: 'string',
      valueHint: 'N',
      description: 'Train for N steps instead of a time budget',
    },
    epochs: {
      type: 'string',
      valueHint: 'N',
      description: 'Train for N passes over the training split instead of --steps',
    },
    lr: {
      type: 'string',
      valueHint: 'RATE',
      description: `Adam learning rate (default: ${TRAIN_DEFAULTS.learningRate})`,
    },
    schedule: {
      type: 'string',
      valueHint: SCHEDULES.join('|'),
      description: `Learning-rate schedule: cosine decays to 0 over the run (default: ${TRAIN_DEFAULTS.schedule})`,
    },
    'warmup-steps': {
      type: 'string',
      valueHint: 'N',
      description: `Raise the learning rate linearly over the first N steps (default: ${TRAIN_DEFAULTS.warmupSteps})`,
    },
    flip: {
      type: 'boolean',
      description:
        'Mirror half the training images left-right at every step, boxes too (default: on; --no-flip turns it off)',
    },
    'recalibrate-bn': {
      type: 'string',
      valueHint: 'IMAGES',
      description: `Before each validation, re-estimate batch-norm statistics on this many training images; 0 keeps the moving averages (default: ${TRAIN_DEFAULTS.recalibrateBatchNorm})`,
    },
    seed: {
      type: 'string',
      valueHint: 'N',
      description: `Seed of the weights, the shuffling and the scene split (default: ${TRAIN_DEFAULTS.seed})`,
    },
    patience: {
      type: 'string',
      valueHint: 'N',
      description:
        'Early stopping: end the run after N validations in a row without a new best (default: off; with a cosine schedule the best comes late)',
    },
    'color-jitter': {
      type: 'string',
      valueHint: 'B,C,S,H',
      description:
        'Photometric augmentation: brightness, contrast, saturation factors within 1 +- B, C, S and a hue turn within +- H, e.g. 0.2,0.2,0.2,0.03 (default: off)',
    },
    'best-metric': {
      type: 'string',
      valueHint: BEST_METRICS.join('|'),
      description: `Validation metric that picks the best checkpoint, the one reported and used (default: ${TRAIN_DEFAULTS.bestMetric})`,
    },
    boxes: {
      type: 'boolean',
      description:
        'Also learn a box per class (the model needs a box head: seed-cnn and lite have one); predict then prints boxes',
    },
    'box-loss-weight': {
      type: 'string',
      valueHint: 'W',
      description:
        "Weight of the box head's box terms (CenterNet: heatmap focal loss, size and offset) against the class loss, with --boxes (default: 1)",
    },
    out: {
      type: 'string',
      valueHint: 'RUN_DIR',
      description: 'Run directory (default: runs/<timestamp> under the current directory)',
    },
    'val-scenes': {
      type: 'string',
      valueHint: 'S1,S2',
      description: 'Scenes held out for validation (default: by --val-fraction)',
    },
    'val-fraction': {
      type: 'string',
      valueHint: 'F',
      description: 'Fraction of the scenes held out for validation, 0 for none (default: 0.2)',
    },
    'test-scenes': {
      type: 'string',
      valueHint: 'S1,S2',
      description:
        "Scenes held out for testing: thresholds are tuned on validation, the final figures are the test split's (default: none)",
    },
    'test-fraction': {
      type: 'string',
      valueHint: 'F',
      description: 'Fraction of the scenes held out for testing (default: 0)',
    },
    resume: {
      type: 'boolean',
      description: 'Continue the run in --out from its last checkpoint, with its settings',
    },
    overwrite: {
      type: 'boolean',
      description: 'Start over in an --out that already holds a run (deletes it)',
    },
    'log-every': {
      type: 'string',
      valueHint: 'N',
      description: `Log a step line every N steps (default: ${TRAIN_DEFAULTS.logEvery})`,
    },
    'validate-every': {
      type: 'string',
      valueHint: 'N',
      description: `Validate every N steps (default: ${TRAIN_DEFAULTS.validateEvery} with --steps/--epochs, 10 times a time budget)`,
    },
    'checkpoint-every': {
      type: 'string',
      valueHint: 'N',
      description: 'Save the last checkpoint every N steps (default: at each validation)',
    },
    cache: {
      type: 'boolean',
      description: 'Keep decoded images in the dataset cache (default: on; --no-cache decodes every time)',
    },
    'cache-path': {
      type: 'string',
      valueHint: 'FILE',
      description: 'The cache file (default: labels.litter-cache next to labels.json)',
    },
    ...datasetCacheArgs,
    json: {
      type: 'boolean',
      description: 'Print one JSON object per line (events split, begin, step, validation, checkpoint, end)',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    // Every flag is checked before anything heavy loads: a usage error costs no TensorFlow.js start-up.
    const flags = {
      model: stringFlag('model', args.model),
      backend: choiceFlag('backend', args.backend, BACKENDS),
      workers: parseOption(TRAIN_OPTIONS.workers, args.workers),
      width: parseOption(RUN_OPTIONS.width, args.width),
      height: parseOption(RUN_OPTIONS.height, args.height),
      progressive: numberFlag('progressive', args.progressive, { min: 0, max: 1, maxExclusive: true }),
      time: parseDuration('time', stringFlag('time', args.time)),
      batchSize: parseOption(TRAIN_OPTIONS.batchSize, args['batch-size']),
      steps: parseOption(TRAIN_OPTIONS.steps, args.steps),
      epochs: parseOption(TRAIN_OPTIONS.epochs, args.epochs),
      learningRate: parseOption(TRAIN_OPTIONS.learningRate, args.lr),
      schedule: parseOption(TRAIN_OPTIONS.schedule, args.schedule),
      warmupSteps: parseOption(TRAIN_OPTIONS.warmupSteps, args['warmup-steps']),
      flip: args.flip === undefined ? undefined : args.flip === true,
      recalibrateBatchNorm: parseOption(TRAIN_OPTIONS.recalibrateBatchNorm, args['recalibrate-bn']),
      bestMetric: parseOption(TRAIN_OPTIONS.bestMetric, args['best-metric']),
      patience: intFlag('patience', args.patience),
      colorJitter: jitterFlag(args['color-jitter']),
      seed: parseOption(TRAIN_OPTIONS.seed, args.seed),
      out: stringFlag('out', args.out),
      validationScenes: listFlag('val-scenes', args['val-scenes']),
      validationFraction: numberFlag('val-fraction', args['val-fraction'], {
        min: 0,
        max: 1,
        maxExclusive: true,
      }),
      testScenes: listFlag('test-scenes', args['test-scenes']),
      testFraction: numberFlag('test-fraction', args['test-fraction'], {
        min: 0,
        max: 1,
        maxExclusive: true,
      }),
      logEvery: parseOption(TRAIN_OPTIONS.logEvery, args['log-every']),
      validateEvery: parseOption(TRAIN_OPTIONS.validateEvery, args['validate-every']),
      checkpointEvery: parseOption(TRAIN_OPTIONS.checkpointEvery, args['checkpoint-every']),
      boxes: args.boxes === undefined ? undefined : args.boxes === true,
      boxLossWeight: parseOption(TRAIN_OPTIONS.boxLossWeight, args['box-loss-weight']),
    };
    if (flags.boxLossWeight !== undefined && flags.boxes !== true && !args.resume) {
      throw new CliError('usage', '--box-loss-weight needs --boxes');
    }
    exclusive({ time: flags.time, steps: flags.steps, epochs: flags.epochs });
    exclusive({ 'val-scenes': flags.validationScenes, 'val-fraction': flags.validationFraction });
    exclusive({ 'test-scenes': flags.testScenes, 'test-fraction': flags.testFraction });
    if (args.resume && flags.out === undefined) {
      throw new CliError('usage', '--resume needs --out RUN_DIR: the run to continue');
    }
    if (args.resume && args.overwrite)
      throw new CliError('usage', '--resume and --overwrite cannot be combined');
    return train(io, {
      ...flags,
      dataset: args.dataset,
      resume: args.resume === true,
      overwrite: args.overwrite === true,
      cache: args.cache !== false,
      cachePath: stringFlag('cache-path', args['cache-path']),
      datasetOptions: datasetCacheFlags(args),
      json: args.json === true,
    });
  },
});

type Flags = {
  dataset: string | undefined;
  model: string | undefined;
  backend: (typeof BACKENDS)[number] | undefined;
  workers: number | undefined;
  width: number | undefined;
  height: number | undefined;
  progressive: number | undefined;
  time: number | undefined;
  batchSize: number | undefined;
  steps: number | undefined;
  epochs: number | undefined;
  learningRate: number | undefined;
  schedule: (typeof SCHEDULES)[number] | undefined;
  warmupSteps: number | undefined;
  flip: boolean | undefined;
  recalibrateBatchNorm: number | undefined;
  bestMetric: (typeof BEST_METRICS)[number] | undefined;
  patience: number | undefined;
  colorJitter: { brightness: number; contrast: number; saturation: number; hue: number } | undefined;
  seed: number | undefined;
  out: string | undefined;
  validationScenes: string[] | undefined;
  validationFraction: number | undefined;
  testScenes: string[] | undefined;
  testFraction: number | undefined;
  logEvery: number | undefined;
  validateEvery: number | undefined;
  checkpointEvery: number | undefined;
  boxes: boolean | undefined;
  boxLossWeight: number | undefined;
  resume: boolean;
  overwrite: boolean;
  cache: boolean;
  cachePath: string | undefined;
  /** --full-hash, --skip-bad-images */
  datasetOptions: ReturnType<typeof datasetCacheFlags>;
  json: boolean;
};

/** The settings a run was started with (RUN_DIR/config.json); a resumed run keeps them unless overridden. */
interface SavedConfig {
  model?: string;
  width?: number;
  height?: number;
  batchSize?: number;
  steps?: number;
  time?: number;
  sizes?: { width: number; height: number; from: number }[];
  learningRate?: number;
  schedule?: 'constant' | 'cosine';
  warmupSteps?: number;
  flip?: boolean;
  recalibrateBatchNorm?: number;
  bestMetric?: 'loss' | 'exactMatch' | 'macroF1';
  logEvery?: number;
  validateEvery?: number;
  checkpointEvery?: number;
  seed?: number;
  boxes?: boolean;
  boxLossWeight?: number;
  dataset?: { root?: string; labelsPath?: string };
  split?: { train: number[] };
  colorJitter?: { brightness: number; contrast: number; saturation: number; hue: number };
}

/** The run's config.json, checked (a damaged one is a one-line error naming it and what to do). */
async function readRunConfig(runDir: string): Promise<SavedConfig> {
  const { readRunConfig: readChecked } = await import('@litter/trainer');
  return (await readChecked(runDir)) as SavedConfig;
}

/** How the user invoked litter, for the resume hint: through the repository's `pnpm litter` or the bin. */
function invocation(io: Io): string {
  return io.env.npm_lifecycle_event === 'litter' ? 'pnpm litter' : 'litter';
}

/** A path as the user would type it: relative to their directory when inside it. */
function shown(io: Io, file: string): string {
  const relative = path.relative(io.cwd, file);
  return relative === '' ? '.' : relative.startsWith('..') ? file : relative;
}

async function train(io: Io, flags: Flags): Promise<number> {
  const runDir = flags.out === undefined ? defaultRunDir(io) : resolvePath(io, flags.out);
  const saved: SavedConfig = flags.resume ? await readRunConfig(runDir) : {};
  const savedDataset = saved.dataset?.labelsPath ?? saved.dataset?.root;
  const dataset =
    flags.dataset !== undefined
      ? datasetPath(io, flags.dataset)
      : savedDataset !== undefined
        ? datasetPath(io, savedDataset)
        : sampleDataset();
  // The size: given, or the run's when resuming, else from the images (printed below).
  const chosenSize: ChosenSize | undefined =
    (flags.width !== undefined && flags.height !== undefined) || (flags.resume && saved.width && saved.height)
      ? undefined
      : await chooseInputSize(dataset, os.availableParallelism(), {
          width: flags.width,
          height: flags.height,
        });
  const settings = {
    model: flags.model ?? saved.model ?? TRAIN_DEFAULTS.model,
    width: flags.width ?? chosenSize?.width ?? saved.width!,
    height: flags.height ?? chosenSize?.height ?? saved.height!,
    // Progressive resizing by default only with a time budget: --steps/--epochs train at one size, as asked.
    progressive:
      flags.progressive ??
      (flags.resume
        ? (saved.sizes?.[1]?.from ?? 0)
        : flags.steps !== undefined || flags.epochs !== undefined
          ? 0
          : PROGRESSIVE_DEFAULTS.progressive),
    batchSize: flags.batchSize ?? saved.batchSize ?? TRAIN_DEFAULTS.batchSize,
    learningRate: flags.learningRate ?? saved.learningRate ?? TRAIN_DEFAULTS.learningRate,
    schedule: flags.schedule ?? saved.schedule ?? TRAIN_DEFAULTS.schedule,
    // Runs saved before these settings existed trained without them.
    warmupSteps: flags.warmupSteps ?? saved.warmupSteps ?? (flags.resume ? 0 : TRAIN_DEFAULTS.warmupSteps),
    flip: flags.flip ?? saved.flip ?? (flags.resume ? false : TRAIN_DEFAULTS.flip),
    recalibrateBatchNorm:
      flags.recalibrateBatchNorm ?? saved.recalibrateBatchNorm ?? TRAIN_DEFAULTS.recalibrateBatchNorm,
    bestMetric: flags.bestMetric ?? saved.bestMetric ?? TRAIN_DEFAULTS.bestMetric,
    seed: flags.seed ?? saved.seed ?? TRAIN_DEFAULTS.seed,
    logEvery: flags.logEvery ?? saved.logEvery ?? TRAIN_DEFAULTS.logEvery,
    checkpointEvery: flags.checkpointEvery ?? saved.checkpointEvery,
    boxes: flags.boxes ?? saved.boxes ?? false,
    boxLossWeight: flags.boxLossWeight ?? saved.boxLossWeight,
    length: lengthOf(flags, saved),
  };

  const { initBackend, resolveModel } = await import('@litter/model');
  const { defaultCachePath, loadDataset, splitDataset } = await import('@litter/dataset');
  const trainer = await import('@litter/trainer');

  await initBackend({ backend: flags.backend ?? 'auto' });
  const spec = modelSpec(io, settings.model);
  registerBuiltinModels();
  const model = await resolveModel(spec);
  const cachePath = flags.cachePath !== undefined ? resolvePath(io, flags.cachePath) : undefined;
  const data = await loadDataset(dataset, {
    width: settings.width,
    height: settings.height,
    cache: flags.cache,
    ...flags.datasetOptions,
    ...(cachePath !== undefined ? { cachePath } : {}),
  });
  // Progressive resizing: the same images at the first stage's size, in a cache of their own.
  const stages = trainer.progressiveSizes(
    { width: settings.width, height: settings.height },
    saved.sizes?.[0] && saved.width ? saved.sizes[0].width / saved.width : PROGRESSIVE_DEFAULTS.smallScale,
    settings.progressive,
  );
  const small =
    stages.length > 1
      ? await loadDataset(dataset, {
          width: stages[0]!.width,
          height: stages[0]!.height,
          ...flags.datasetOptions,
          cache: flags.cache,
          cachePath: sizedCachePath(cachePath ?? defaultCachePath(data.labelsPath), stages[0]!),
        })
      : undefined;
  // A resumed run keeps the split it was started with (the trainer reads it from config.json).
  const chosen = flags.resume
    ? undefined
    : chooseSplit(splitDataset, data, {
        seed: settings.seed,
        ...(flags.validationScenes ? { validationScenes: flags.validationScenes } : {}),
        ...(flags.validationFraction !== undefined ? { validationFraction: flags.validationFraction } : {}),
        ...(flags.testScenes ? { testScenes: flags.testScenes } : {}),
        ...(flags.testFraction !== undefined ? { testFraction: flags.testFraction } : {}),
      });
  if (chosen && flags.json) {
    writeJson(io, {
      event: 'split',
      ...chosen.scenes,
      splitSeed: chosen.splitSeed,
      balanced: chosen.balanced,
    });
  } else if (chosen) {
    const validation = chosen.scenes.validation.join(', ') || 'none';
    const note =
      chosen.split.validation.length === 0
        ? ' (no validation: nothing will be reported)'
        : chosen.balanced
          ? ''
          : ' (some class is always or never visible in it: its metrics mean little; see --val-scenes)';
    const test =
      chosen.scenes.test.length > 0
        ? `; test ${chosen.scenes.test.join(', ')} (thresholds tuned on validation, final figures on test)`
        : '';
    writeLine(
      io.stdout,
      `scenes: training ${chosen.scenes.train.join(', ')}; validation ${validation}${note}${test}`,
    );
  }
  const split = chosen?.split;
  const colorJitter = flags.colorJitter ?? saved.colorJitter;
  const trainImages = split?.train.length ?? saved.split?.train.length ?? data.size;
  const length = settings.length ?? { time: defaultTime(trainImages) };
  // A time budget validates 10 times a run (by time) unless told otherwise.
  const validateEvery =
    flags.validateEvery ??
    ('time' in length ? undefined : (saved.validateEvery ?? TRAIN_DEFAULTS.validateEvery));
  describeSetup(io, flags.json, {
    size: { width: settings.width, height: settings.height },
    chosen: chosenSize,
    stages,
    length,
    defaulted: settings.length === undefined,
    trainImages,
  });

  const renderer = new ProgressRenderer(io, progressMode(io, flags.json));
  const controller = new AbortController();
  let signal: 'SIGINT' | 'SIGTERM' | undefined;
  const stop = (name: 'SIGINT' | 'SIGTERM') => () => {
    if (signal !== undefined) {
      // A second signal means "now": the last checkpoint on disk is still whole (saves are atomic).
      process.exit(name === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm);
    }
    signal = name;
    controller.abort(name);
    renderer.stop();
    io.stderr.write(
      `@litter/cli: ${name}: finishing the step and saving a checkpoint (again to quit at once)\n`,
    );
  };
  const onInt = stop('SIGINT');
  const onTerm = stop('SIGTERM');
  io.signals?.on('SIGINT', onInt);
  io.signals?.on('SIGTERM', onTerm);

  let result: Awaited<ReturnType<typeof trainer.train>>;
  try {
    result = await trainer.train({
      dataset: data,
      model,
      modelSpec: spec,
      ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
      runDir,
      resume: flags.resume,
      overwrite: flags.overwrite,
      ...(split ? { split } : {}),
      batchSize: settings.batchSize,
      ...length,
      ...(small ? { progressive: { dataset: small, until: settings.progressive } } : {}),
      learningRate: settings.learningRate,
      schedule: settings.schedule,
      warmupSteps: settings.warmupSteps,
      flip: settings.flip,
      recalibrateBatchNorm: settings.recalibrateBatchNorm,
      ...(colorJitter ? { colorJitter } : {}),
      bestMetric: settings.bestMetric,
      logEvery: settings.logEvery,
      ...(validateEvery !== undefined ? { validateEvery } : {}),
      ...(settings.checkpointEvery !== undefined ? { checkpointEvery: settings.checkpointEvery } : {}),
      seed: settings.seed,
      boxes: settings.boxes,
      ...(settings.boxLossWeight !== undefined ? { boxLossWeight: settings.boxLossWeight } : {}),
      signal: controller.signal,
      callbacks: [
        renderer.callbacks,
        ...(flags.patience !== undefined ? [trainer.earlyStopping({ patience: flags.patience })] : []),
      ],
    });
  } finally {
    renderer.stop();
    io.signals?.off('SIGINT', onInt);
    io.signals?.off('SIGTERM', onTerm);
  }
  result.model.dispose();

  const evaluation = result.evaluation;
  if (flags.json) {
    // The figures at the top are the test split's when there is one (thresholds tuned on validation), else
    // validation's; `split` says which, and each split's own figures follow.
    const headline = result.testEvaluation ?? evaluation;
    writeJson(io, {
      event: 'end',
      runDir: result.runDir,
      step: result.step,
      stopped: result.stopped,
      split: result.testEvaluation ? 'test' : evaluation ? 'validation' : null,
      ...figures(headline),
      validation: evaluation ? figures(evaluation) : null,
      test: result.testEvaluation ? figures(result.testEvaluation) : null,
      thresholds: result.thresholds,
      thresholdsTunedOn: evaluation ? 'validation' : null,
      report: result.reportPath ?? null,
    });
  } else if (result.stopped === 'done') {
    writeLine(io.stdout);
    writeLine(
      io.stdout,
      evaluation
        ? trainer.formatEvaluation(evaluation, { title: 'Validation split', tunedHere: true }).trimEnd()
        : 'No validation split: nothing to report (see --val-scenes, --val-fraction).',
    );
    if (result.testEvaluation) {
      writeLine(io.stdout);
      writeLine(
        io.stdout,
        trainer.formatEvaluation(result.testEvaluation, { title: 'Test split' }).trimEnd(),
      );
    }
    writeLine(io.stdout);
    writeLine(io.stdout, `run directory: ${shown(io, result.runDir)}`);
    if (result.reportPath) writeLine(io.stdout, `report: ${shown(io, result.reportPath)}`);
  }
  if (result.reportError) io.stderr.write(`${printable(result.reportError)}\n`);
  if (result.stopped === 'signal') {
    const datasetPart = flags.dataset === undefined ? '' : ` ${shown(io, dataset)}`;
    const how = `${invocation(io)} train${datasetPart} --resume --out ${shown(io, runDir)}`;
    io.stderr.write(
      `@litter/cli: stopped by ${signal ?? 'a signal'} at step ${result.step}; checkpoint saved. Resume with: ${how}\n`,
    );
    return signal === 'SIGTERM' ? ExitCode.sigterm : ExitCode.sigint;
  }
  if (result.stopped === 'nan') {
    throw new CliError(
      'non-finite-loss',
      result.message ??
        `the loss became NaN or infinite; the last good checkpoint is in ${runDir}/checkpoints/last. Try a lower --lr`,
    );
  }
  return ExitCode.ok;
}

/** The figures of one split's evaluation in the `end` event. */
function figures(evaluation: Evaluation | undefined) {
  return {
    exactMatch: evaluation?.fixed.exactMatch ?? null,
    macroF1: evaluation?.fixed.macroF1 ?? null,
    microF1: evaluation?.fixed.microF1 ?? null,
    hammingLoss: evaluation?.fixed.hammingLoss ?? null,
    meanAveragePrecision: evaluation?.meanAveragePrecision ?? null,
    tunedExactMatch: evaluation?.tuned?.exactMatch ?? null,
    tunedMacroF1: evaluation?.tuned?.macroF1 ?? null,
    meanIoU: evaluation?.fixed.box?.meanIoU ?? null,
  };
}

/** `--color-jitter B,C,S,H`: four numbers in [0, 1). */
function jitterFlag(value: string | undefined) {
  const text = stringFlag('color-jitter', value);
  if (text === undefined) return undefined;
  const parts = text.split(',').map((part) => Number(part.trim()));
  if (parts.length !== 4 || parts.some((v) => !(v >= 0 && v < 1))) {
    throw new CliError(
      'usage',
      `--color-jitter must be four numbers in [0, 1): brightness,contrast,saturation,hue, got "${text}"`,
    );
  }
  const [brightness, contrast, saturation, hue] = parts as [number, number, number, number];
  return { brightness, contrast, saturation, hue };
}

type Length = { time: number } | { steps: number } | { epochs: number };

/** The length flags, else the resumed run's; undefined: the default (a time budget from the training images). */
function lengthOf(flags: Flags, saved: SavedConfig): Length | undefined {
  if (flags.time !== undefined) return { time: flags.time };
  if (flags.epochs !== undefined) return { epochs: flags.epochs };
  if (flags.steps !== undefined) return { steps: flags.steps };
  if (saved.time !== undefined) return { time: saved.time };
  if (saved.steps !== undefined) return { steps: saved.steps };
  return undefined;
}

/** `labels.litter-cache` -> `labels-80x60.litter-cache`: the cache of another size, next to the first. */
function sizedCachePath(cachePath: string, size: { width: number; height: number }): string {
  const { dir, name, ext } = path.parse(cachePath);
  return path.join(dir, `${name}-${size.width}x${size.height}${ext}`);
}

/** The first lines of a run: the image size and where it comes from, the stages, the length. */
function describeSetup(
  io: Io,
  json: boolean,
  setup: {
    size: { width: number; height: number };
    chosen: ChosenSize | undefined;
    stages: { width: number; height: number; from: number }[];
    length: Length;
    defaulted: boolean;
    trainImages: number;
  },
): void {
  const { size, chosen, stages, length } = setup;
  if (json) {
    writeJson(io, {
      event: 'setup',
      width: size.width,
      height: size.height,
      native: chosen?.native ?? null,
      pixelBudget: chosen?.pixels ?? null,
      sizes: stages,
      ...length,
    });
    return;
  }
  const source = chosen
    ? ` (the images are ${chosen.native.width}x${chosen.native.height}: their aspect ratio in ${chosen.pixels.toLocaleString('en-US')} pixels for ${chosen.cores} core${chosen.cores === 1 ? '' : 's'}; --width/--height to change)`
    : '';
  const first = stages[0]!;
  const resize =
    stages.length > 1
      ? `; ${first.width}x${first.height} for the first ${Math.round(stages[1]!.from * 100)}% of the run (--progressive)`
      : '';
  writeLine(io.stdout, `input: ${size.width}x${size.height}${source}${resize}`);
  const text =
    'time' in length
      ? `${duration(length.time)} of training${setup.defaulted ? ` (the default for ${setup.trainImages} training images: 1 s per 8; --time to change)` : ''}`
      : 'steps' in length
        ? `${length.steps} steps`
        : `${length.epochs} epochs`;
  writeLine(io.stdout, `length: ${text}`);
}

/** A model given as a path is relative to the user's directory (`pnpm litter` runs in the repository root). */
function modelSpec(io: Io, spec: string): string {
  return spec.startsWith('./') || spec.startsWith('../') ? resolvePath(io, spec) : spec;
}
