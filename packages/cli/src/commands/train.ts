import os from 'node:os';
import path from 'node:path';
import type { Dataset } from '@litter/dataset';
import type { Evaluation, RunConfig, TrainOptions, TrainResult } from '@litter/trainer';
import type { TrainSettings } from '@litter/trainer/options';
import { defineCommand } from 'citty';
import { commonArgs, datasetCacheArgs, datasetCacheFlags, exclusive } from '../_args.js';
import { defaultTime, PROGRESSIVE_DEFAULTS, TRAIN_DEFAULTS } from '../_defaults.js';
import { type ChosenSize, chooseInputSize } from '../_input-size.js';
import { type Io, ioOf, printable, resolvePath, writeJson, writeLine } from '../_io.js';
import { registerBuiltinModels } from '../_models.js';
import { datasetPath, defaultRunDir, sampleDataset } from '../_paths.js';
import { duration, ProgressRenderer, progressMode } from '../_progress.js';
import { type ChosenSplit, chooseSplit } from '../_split.js';
import { mergeTrainOptions, parseTrainFlags, type TrainFlags, trainArgs } from '../_train-options.js';
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
    // Every option's flag and --help line, from the option tables (`_train-options.ts`).
    ...trainArgs(),
    ...datasetCacheArgs,
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    // Every flag is checked before anything heavy loads: a usage error costs no TensorFlow.js start-up.
    const flags = parseTrainFlags(args);
    checkCombinations(flags);
    return train(io, {
      ...flags,
      dataset: args.dataset as string | undefined,
      datasetOptions: datasetCacheFlags(args),
    });
  },
});

/** Flags that need or exclude others. */
function checkCombinations(flags: TrainFlags): void {
  if (flags.boxLossWeight !== undefined && flags.boxes !== true && !flags.resume) {
    throw new CliError('usage', '--box-loss-weight needs --boxes');
  }
  exclusive({ time: flags.time, steps: flags.steps, epochs: flags.epochs });
  exclusive({ 'val-scenes': flags.validationScenes, 'val-fraction': flags.validationFraction });
  exclusive({ 'test-scenes': flags.testScenes, 'test-fraction': flags.testFraction });
  if (flags.resume && flags.out === undefined) {
    throw new CliError('usage', '--resume needs --out RUN_DIR: the run to continue');
  }
  if (flags.resume && flags.overwrite)
    throw new CliError('usage', '--resume and --overwrite cannot be combined');
}

type Flags = TrainFlags & {
  dataset: string | undefined;
  /** --full-hash, --skip-bad-images */
  datasetOptions: ReturnType<typeof datasetCacheFlags>;
};

/** The run's config.json, checked (a damaged one is a one-line error naming it and what to do). */
async function readRunConfig(runDir: string): Promise<RunConfig> {
  const { readRunConfig: readChecked } = await import('@litter/trainer');
  return readChecked(runDir);
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

/** What a run is started or resumed with: each setting from its flag, else the run's config.json, else the default. */
interface Plan {
  runDir: string;
  /** The resumed run's config.json (undefined for a new run). */
  saved: RunConfig | undefined;
  /** The dataset folder or labels file. */
  dataset: string;
  /** The size chosen from the images, when neither given nor the resumed run's. */
  chosenSize: ChosenSize | undefined;
  model: string;
  width: number;
  height: number;
  /** Fraction of the run at the small size (0: one size). */
  progressive: number;
  /** The training options but the length (`mergeTrainOptions`). */
  options: Partial<TrainSettings>;
  /** The length given or the resumed run's; undefined: the default, a time budget from the training images. */
  length: Length | undefined;
}

async function plan(io: Io, flags: Flags): Promise<Plan> {
  const runDir = flags.out === undefined ? defaultRunDir(io) : resolvePath(io, flags.out);
  const saved = flags.resume ? await readRunConfig(runDir) : undefined;
  const savedDataset = saved?.dataset?.labelsPath ?? saved?.dataset?.root;
  const dataset =
    flags.dataset !== undefined
      ? datasetPath(io, flags.dataset)
      : savedDataset !== undefined
        ? datasetPath(io, savedDataset)
        : sampleDataset();
  // The size: given, or the run's when resuming, else from the images (printed by describeSetup).
  const chosenSize: ChosenSize | undefined =
    (flags.width !== undefined && flags.height !== undefined) || (saved?.width && saved.height)
      ? undefined
      : await chooseInputSize(dataset, os.availableParallelism(), {
          width: flags.width,
          height: flags.height,
        });
  return {
    runDir,
    saved,
    dataset,
    chosenSize,
    model: flags.model ?? saved?.model ?? TRAIN_DEFAULTS.model,
    width: flags.width ?? chosenSize?.width ?? saved!.width,
    height: flags.height ?? chosenSize?.height ?? saved!.height,
    // Progressive resizing by default only with a time budget: --steps/--epochs train at one size, as asked.
    progressive:
      flags.progressive ??
      (saved
        ? (saved.sizes?.[1]?.from ?? 0)
        : flags.steps !== undefined || flags.epochs !== undefined
          ? 0
          : PROGRESSIVE_DEFAULTS.progressive),
    options: mergeTrainOptions(flags, saved),
    length: lengthOf(flags, saved),
  };
}

/** The backend, the model and the dataset at the training size (and at the first stage's, resizing progressively). */
async function load(io: Io, flags: Flags, run: Plan) {
  const { initBackend, resolveModel } = await import('@litter/model');
  const { defaultCachePath, loadDataset } = await import('@litter/dataset');
  const { progressiveSizes } = await import('@litter/trainer');
  await initBackend({ backend: flags.backend ?? 'auto' });
  const spec = modelSpec(io, run.model);
  registerBuiltinModels();
  const model = await resolveModel(spec);
  const cachePath = flags.cachePath !== undefined ? resolvePath(io, flags.cachePath) : undefined;
  const cache = flags.cache !== false;
  const data = await loadDataset(run.dataset, {
    width: run.width,
    height: run.height,
    cache,
    ...flags.datasetOptions,
    ...(cachePath !== undefined ? { cachePath } : {}),
  });
  // Progressive resizing: the same images at the first stage's size, in a cache of their own.
  const { saved } = run;
  const stages = progressiveSizes(
    { width: run.width, height: run.height },
    saved?.sizes?.[0] && saved.width ? saved.sizes[0].width / saved.width : PROGRESSIVE_DEFAULTS.smallScale,
    run.progressive,
  );
  const small =
    stages.length > 1
      ? await loadDataset(run.dataset, {
          width: stages[0]!.width,
          height: stages[0]!.height,
          ...flags.datasetOptions,
          cache,
          cachePath: sizedCachePath(cachePath ?? defaultCachePath(data.labelsPath), stages[0]!),
        })
      : undefined;
  return { spec, model, data, small, stages };
}

/** A new run's split by scene (a resumed run keeps its own: the trainer reads it from config.json), printed. */
async function split(io: Io, flags: Flags, data: Dataset, seed: number): Promise<ChosenSplit> {
  const { splitDataset } = await import('@litter/dataset');
  const chosen = chooseSplit(splitDataset, data, {
    seed,
    ...(flags.validationScenes ? { validationScenes: flags.validationScenes } : {}),
    ...(flags.validationFraction !== undefined ? { validationFraction: flags.validationFraction } : {}),
    ...(flags.testScenes ? { testScenes: flags.testScenes } : {}),
    ...(flags.testFraction !== undefined ? { testFraction: flags.testFraction } : {}),
  });
  if (flags.json) {
    writeJson(io, {
      event: 'split',
      ...chosen.scenes,
      splitSeed: chosen.splitSeed,
      balanced: chosen.balanced,
    });
    return chosen;
  }
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
  return chosen;
}

async function train(io: Io, flags: Flags): Promise<number> {
  const run = await plan(io, flags);
  const { spec, model, data, small, stages } = await load(io, flags, run);
  const seed = run.options.seed ?? TRAIN_DEFAULTS.seed;
  const chosen = run.saved ? undefined : await split(io, flags, data, seed);
  const trainImages = chosen?.split.train.length ?? run.saved?.split.train.length ?? data.size;
  const length = run.length ?? { time: defaultTime(trainImages) };
  const options = { ...run.options };
  // A time budget validates 10 times a run (by time) unless told otherwise.
  if ('time' in length && flags.validateEvery === undefined) delete options.validateEvery;
  describeSetup(io, flags.json === true, {
    size: { width: run.width, height: run.height },
    chosen: run.chosenSize,
    stages,
    length,
    defaulted: run.length === undefined,
    trainImages,
  });
  const { earlyStopping } = await import('@litter/trainer');
  const { result, signal } = await withSignals(io, flags.json === true, (signal, callbacks) => ({
    dataset: data,
    model,
    modelSpec: spec,
    runDir: run.runDir,
    resume: flags.resume === true,
    overwrite: flags.overwrite === true,
    ...(chosen ? { split: chosen.split } : {}),
    ...options,
    ...length,
    ...(small ? { progressive: { dataset: small, until: run.progressive } } : {}),
    signal,
    callbacks: [
      callbacks,
      ...(flags.patience !== undefined ? [earlyStopping({ patience: flags.patience })] : []),
    ],
  }));
  result.model.dispose();
  await printResult(io, flags.json === true, result);
  if (result.stopped === 'signal') {
    const datasetPart = flags.dataset === undefined ? '' : ` ${shown(io, run.dataset)}`;
    const how = `${invocation(io)} train${datasetPart} --resume --out ${shown(io, run.runDir)}`;
    io.stderr.write(
      `@litter/cli: stopped by ${signal ?? 'a signal'} at step ${result.step}; checkpoint saved. Resume with: ${how}\n`,
    );
    return signal === 'SIGTERM' ? ExitCode.sigterm : ExitCode.sigint;
  }
  if (result.stopped === 'nan') {
    throw new CliError(
      'non-finite-loss',
      result.message ??
        `the loss became NaN or infinite; the last good checkpoint is in ${run.runDir}/checkpoints/last. Try a lower --lr`,
    );
  }
  return ExitCode.ok;
}

type Signal = 'SIGINT' | 'SIGTERM';

/**
 * Trains with the options `optionsOf` makes from the abort signal and the progress callbacks: the first SIGINT
 * or SIGTERM finishes the step and saves a checkpoint, a second one exits at once.
 */
async function withSignals(
  io: Io,
  json: boolean,
  optionsOf: (signal: AbortSignal, callbacks: ProgressRenderer['callbacks']) => TrainOptions,
): Promise<{ result: TrainResult; signal: Signal | undefined }> {
  const trainer = await import('@litter/trainer');
  const renderer = new ProgressRenderer(io, progressMode(io, json));
  const controller = new AbortController();
  let signal: Signal | undefined;
  const stop = (name: Signal) => () => {
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
  try {
    const result = await trainer.train(optionsOf(controller.signal, renderer.callbacks));
    return { result, signal };
  } finally {
    renderer.stop();
    io.signals?.off('SIGINT', onInt);
    io.signals?.off('SIGTERM', onTerm);
  }
}

/** The end of a run: the `end` event, or the evaluation tables, the run directory and the report. */
async function printResult(io: Io, json: boolean, result: TrainResult): Promise<void> {
  const evaluation = result.evaluation;
  if (json) {
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
    const { formatEvaluation } = await import('@litter/trainer');
    writeLine(io.stdout);
    writeLine(
      io.stdout,
      evaluation
        ? formatEvaluation(evaluation, { title: 'Validation split', tunedHere: true }).trimEnd()
        : 'No validation split: nothing to report (see --val-scenes, --val-fraction).',
    );
    if (result.testEvaluation) {
      writeLine(io.stdout);
      writeLine(io.stdout, formatEvaluation(result.testEvaluation, { title: 'Test split' }).trimEnd());
    }
    writeLine(io.stdout);
    writeLine(io.stdout, `run directory: ${shown(io, result.runDir)}`);
    if (result.reportPath) writeLine(io.stdout, `report: ${shown(io, result.reportPath)}`);
  }
  if (result.reportError) io.stderr.write(`${printable(result.reportError)}\n`);
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

type Length = { time: number } | { steps: number } | { epochs: number };

/** The length flags, else the resumed run's; undefined: the default (a time budget from the training images). */
function lengthOf(flags: Flags, saved: RunConfig | undefined): Length | undefined {
  if (flags.time !== undefined) return { time: flags.time };
  if (flags.epochs !== undefined) return { epochs: flags.epochs };
  if (flags.steps !== undefined) return { steps: flags.steps };
  if (saved?.time !== undefined) return { time: saved.time };
  if (saved?.steps !== undefined) return { steps: saved.steps };
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
