import os from 'node:os';
import { join } from 'node:path';
import { createBatcher, type Dataset, EpochSampler, splitDataset } from '@litter/dataset';
import { type BoxHead, loadModel, type ModelFactory } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { flipHalf } from './_augment.js';
import { batchNormLayers, evenlySpaced, recalibrateBatchNorm } from './_batchnorm.js';
import {
  type OptimizerSnapshot,
  readOptimizer,
  restoreOptimizer,
  saveCheckpoint,
  snapshotOptimizer,
} from './_checkpoint.js';
import { type HistoryRow, MetricsLog, type StepRow, type ValidationRow } from './_history.js';
import { exists } from './_io.js';
import { batchLoss } from './_loss.js';
import { type ColorJitter, jitterColors } from './_photometric.js';
import { boxHeadFor, checkInputShape } from './_predict.js';
import { restoreRandom, runRandom, saveRandom, withRandom } from './_random.js';
import { TrainerError } from './errors.js';
import { type DatasetPredictions, evaluatePredictions, predictDataset } from './evaluate.js';
import { formatEvaluation } from './format.js';
import { type Evaluation, tuneThresholds } from './metrics.js';
import {
  type CheckpointKind,
  isParallelBackend,
  resolveSettings,
  resumeProblems,
  type StopReason,
  type TrainSettings,
} from './options.js';
import { createParallelTrainer, type ParallelTrainer } from './parallel/index.js';
import { writeReportOf } from './report.js';
import { claimRunDir, type RunClaim } from './run-claim.js';
import {
  type BestRecord,
  CHECKPOINT_FILES,
  type CheckpointState,
  type RunConfig,
  readResumePoint,
  runPaths,
  writeRunConfig,
  writeRunEvaluation,
} from './run-dir.js';
import {
  describeScheduleChange,
  finished,
  formatSeconds,
  learningRateAt,
  progressOf,
  type SizeStage,
  stageAt,
  type TrainingLength,
  type TrainingSchedule,
} from './schedule.js';

/** The box figures of a validation row and event (none without a box head). */
function detectionFigures(
  evaluation: Evaluation,
): Pick<ValidationRow, 'meanIoU' | 'shareIoU50' | 'ap50' | 'ap'> {
  const box = evaluation.fixed.box;
  const detection = evaluation.detection;
  if (!box || !detection) return {};
  return { meanIoU: box.meanIoU, shareIoU50: box.shareIoU50, ap50: detection.ap50, ap: detection.ap };
}

/** Indices into the dataset of the images of each split. */
export interface TrainSplit {
  train: number[];
  validation: number[];
  test?: number[];
}

/**
 * Options of {@link train}: the run's inputs, and the training options of `TRAIN_OPTIONS` (`options.ts`: each
 * documented there once, with its default).
 */
export interface TrainOptions extends Partial<TrainSettings> {
  /** The dataset, loaded at the training image size (`dataset.width` x `dataset.height`). */
  dataset: Dataset;
  /** The model to train, e.g. from `resolveModel('seed-cnn')`. */
  model: ModelFactory;
  /** Where config, metrics, checkpoints and the evaluation go; created if missing. */
  runDir: string;
  /**
   * Continue from `runDir/checkpoints/last` exactly where it stopped (same split, sampler position, random state,
   * optimizer moments). `steps`/`epochs` may be raised to train longer.
   * @default false
   */
  resume?: boolean;
  /**
   * Start over in a `runDir` that already holds a run (its checkpoints, metrics and evaluation are deleted).
   * Without it, such a `runDir` is an error unless `resume` is set.
   * @default false
   */
  overwrite?: boolean;
  /** Image indices of each split. @default splitDataset(dataset, { seed }) (by scene) */
  split?: TrainSplit;
  /**
   * Progressive resizing: train on `dataset` (the same images at a smaller size, e.g. 2/3 of each side) for the
   * first `until` of the run (a fraction), then on `TrainOptions.dataset`. The model is fully convolutional:
   * weights and optimizer moments carry over. Validations use the size of the moment; the best checkpoint is
   * chosen among those at the final size once the run has reached it.
   */
  progressive?: { dataset: Dataset; until: number };
  /**
   * Photometric augmentation: each training image gets a random brightness, contrast and saturation (factors
   * in `[1 - x, 1 + x]`) and hue rotation (`[-hue, hue]` of a turn), drawn from the run's seeded generator.
   * Off by default (BENCHMARKS.md, "litter train's defaults", has what was measured). @default undefined (off)
   */
  colorJitter?: ColorJitter;
  /**
   * When the run is done, write `report.html` and `charts/*.png` into `runDir` (@litter/report): loss curves,
   * precision-recall per class and the validation images with their boxes. Once, at the end.
   * @default true
   */
  report?: boolean;
  /**
   * How the worker threads load the model, as `resolveModel` takes it (`seed-cnn`, a package name, a path).
   * Give it when `model` is not one `resolveModel(model.name)` finds.
   * @default model.name
   */
  modelSpec?: string;
  /** On abort, the current step finishes, `checkpoints/last` is saved and `train` returns `stopped: 'signal'`. */
  signal?: AbortSignal;
  /** Event hooks; all optional, may be async (awaited), do nothing by default. */
  callbacks?: TrainerCallbacks | TrainerCallbacks[];
}

export interface TrainBeginEvent {
  runDir: string;
  /** Steps already done (more than 0 when resuming). */
  step: number;
  /** The run's steps; with a time budget an estimate from the speed so far (the steps done, at the start). */
  totalSteps: number;
  /** The time budget in seconds, for a time-budgeted run. */
  totalSeconds: number | undefined;
  /** Seconds of training already done (recorded across resumes). */
  seconds: number;
  /** Image size of each stage of the run (one: no progressive resizing), with the run fraction it starts at. */
  sizes: SizeStage[];
  /** For a resume with another length: how the schedule changes, in one sentence. */
  scheduleChange: string | undefined;
  /** The TensorFlow.js backend in use, e.g. `cpu`. */
  backend: string;
  /** The model factory's name. */
  model: string;
  /** Worker threads training data-parallel (1: in this thread). */
  workers: number;
  /** Trainable and non-trainable parameters of the model. */
  parameters: number;
  batchSize: number;
  trainSize: number;
  validationSize: number;
  testSize: number;
  resumed: boolean;
}

export interface StepEndEvent {
  step: number;
  /** The run's steps; with a time budget an estimate from the speed so far. */
  totalSteps: number;
  /** Fraction of the run done, in [0, 1]. */
  progress: number;
  /** Epochs done, fractional (step / batches per epoch). */
  epoch: number;
  /** This step's loss. */
  loss: number;
  imagesPerSecond: number;
  learningRate: number;
  /** Whether this step was written to the metrics (every `logEvery` steps). */
  logged: boolean;
  /** Seconds spent in training steps so far. */
  elapsedSeconds: number;
  /** Seconds of training so far, validations and checkpoints included (the clock of a time budget). */
  seconds: number;
}

export interface ValidationEvent {
  step: number;
  /** Validation loss (mean sigmoid cross entropy). */
  loss: number;
  /** At threshold 0.5. */
  exactMatch: number;
  macroF1: number;
  microF1: number;
  hammingLoss: number;
  meanAveragePrecision: number;
  /** With a box head, at 0.5: mean IoU and share with IoU >= 0.5 of the correctly detected objects. */
  meanIoU?: number;
  shareIoU50?: number;
  /** With a box head: COCO's mean AP at IoU 0.5 and over 0.5:0.95. */
  ap50?: number;
  ap?: number;
  /** Whether this validation is the best so far (a `best` checkpoint follows). */
  best: boolean;
  /** Seconds of training when validated (the clock of a time budget), and the image size validated at. */
  seconds: number;
  width: number;
  height: number;
  /**
   * Ends the run after this validation as if its length were reached (final validation, checkpoint, report),
   * with `reason` as the result's message: what early stopping calls.
   */
  stop(reason: string): void;
}

export interface CheckpointEvent {
  step: number;
  dir: string;
  kind: CheckpointKind;
}

export interface TrainEndEvent {
  runDir: string;
  step: number;
  stopped: StopReason;
  /** Final evaluation on the validation split (only when `stopped` is `done` and there is one). */
  evaluation: Evaluation | undefined;
  /** Final evaluation on the test split, with the tuned thresholds, when there is one. */
  testEvaluation: Evaluation | undefined;
  /** For `signal` and `nan`: what happened and how to go on, in one sentence. */
  message: string | undefined;
  /** `RUN_DIR/report.html`, written when the run is `done` (unless `report: false`). */
  reportPath: string | undefined;
  /** Why the report could not be written (the run itself is saved). */
  reportError: string | undefined;
}

/** Training events, in the style of tfjs-layers callbacks: every hook optional, may be async, awaited in order. */
export interface TrainerCallbacks {
  onTrainBegin?(event: TrainBeginEvent): void | Promise<void>;
  onStepEnd?(event: StepEndEvent): void | Promise<void>;
  onValidation?(event: ValidationEvent): void | Promise<void>;
  onCheckpoint?(event: CheckpointEvent): void | Promise<void>;
  onTrainEnd?(event: TrainEndEvent): void | Promise<void>;
}

/** What {@link train} returns. */
export interface TrainResult {
  /** The best checkpoint's model (the last one's without validation). The caller disposes it. */
  model: tfl.LayersModel;
  runDir: string;
  /** Every row of `metrics.jsonl`, including those before a resume. */
  history: HistoryRow[];
  /** Final evaluation on the validation split, at 0.5 and at the tuned thresholds. */
  evaluation?: Evaluation;
  /** Final evaluation on the test split, when there is one. */
  testEvaluation?: Evaluation;
  /** Per-class thresholds tuned on validation (0.5 each without validation); in `thresholds.json`. */
  thresholds: number[];
  stopped: StopReason;
  /** Steps done. */
  step: number;
  /** For `signal` and `nan`: what happened and how to go on. */
  message?: string;
  /** `RUN_DIR/report.html`, when the run is `done` and the report was written. */
  reportPath?: string;
  /** Why the report could not be written (the run itself is saved). */
  reportError?: string;
}

function sameIndices(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function checkSplit(
  split: TrainSplit,
  size: number,
): { train: number[]; validation: number[]; test: number[] } {
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
function stagesOf(
  dataset: Dataset,
  progressive: TrainOptions['progressive'],
): { dataset: Dataset; from: number }[] {
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

/** Sliding-window throughput, so one slow step (GC, a checkpoint) does not swing the figure. */
class Throughput {
  private readonly window: { images: number; ms: number }[] = [];
  add(images: number, ms: number): number {
    this.window.push({ images, ms });
    if (this.window.length > 20) this.window.shift();
    const total = this.window.reduce(
      (sum, entry) => ({ images: sum.images + entry.images, ms: sum.ms + entry.ms }),
      {
        images: 0,
        ms: 0,
      },
    );
    return total.ms > 0 ? (total.images * 1000) / total.ms : 0;
  }
}

/**
 * Starts the data-parallel workers from `model`'s current weights, and checks that they built the same model
 * (a `modelSpec` that resolves to another model would otherwise train something else).
 */
async function startParallel(
  model: tfl.LayersModel,
  options: {
    modelSpec: string;
    backend: 'wasm' | 'cpu';
    workers: number;
    classes: number;
    boxes: boolean;
    boxLossWeight: number;
    learningRate: number;
    seed: number;
  },
): Promise<ParallelTrainer> {
  const [, height, width] = model.inputs[0]!.shape as number[];
  const shapes = model.weights.map((w) => w.shape as number[]);
  const initialWeights = model.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
  let parallel: ParallelTrainer;
  try {
    parallel = await createParallelTrainer({ ...options, inputShape: [height!, width!, 3] });
  } catch (error) {
    if (!(error instanceof TrainerError) || error.code !== 'worker-failed') throw error;
    throw new TrainerError(
      'worker-failed',
      `${error.message}. The workers load the model with resolveModel('${options.modelSpec}'): give modelSpec ` +
        '(--model) as the model package or path, or train in one thread (workers: 1, --workers 1)',
      { cause: error },
    );
  }
  if (JSON.stringify(parallel.weightShapes) !== JSON.stringify(shapes)) {
    await parallel.dispose();
    throw new TrainerError(
      'model-mismatch',
      `the workers' model (resolveModel('${options.modelSpec}')) has other weights than the model being trained: ` +
        'give modelSpec as the spec that created it, or train in one thread (workers: 1)',
    );
  }
  try {
    await parallel.setWeights(initialWeights);
  } catch (error) {
    await parallel.dispose();
    throw error;
  }
  return parallel;
}

/**
 * Trains a model on a dataset with a custom loop (sigmoid cross entropy on logits, Adam), validating,
 * checkpointing and logging into `runDir`, and ends with an evaluation on the validation (and test) split.
 *
 * The backend must be set up before (`initBackend` from `@litter/model`).
 *
 * @example
 * await initBackend({ backend: 'cpu' });
 * const dataset = await loadDataset('examples/blender-cube-sphere', { width: 32, height: 32 });
 * const result = await train({ dataset, model: await resolveModel('model-lite'), runDir: 'runs/a', steps: 300,
 *   callbacks: { onStepEnd: (e) => { if (e.logged) console.log(e.step, e.loss); } } });
 * console.log(formatEvaluation(result.evaluation!));
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  // The run directory's lock, taken once the options are checked (claimRunDir), released however training ends.
  const claims: RunClaim[] = [];
  try {
    return await trainClaimed(options, claims);
  } finally {
    for (const claim of claims) await claim.release();
  }
}

async function trainClaimed(options: TrainOptions, claims: RunClaim[]): Promise<TrainResult> {
  const { dataset, model: factory, runDir } = options;
  const callbacks = options.callbacks === undefined ? [] : [options.callbacks].flat();
  const emit = async <K extends keyof TrainerCallbacks>(
    name: K,
    event: Parameters<NonNullable<TrainerCallbacks[K]>>[0],
  ): Promise<void> => {
    for (const hooks of callbacks) {
      await (hooks[name] as ((e: typeof event) => void | Promise<void>) | undefined)?.call(hooks, event);
    }
  };

  const classes = dataset.vocabulary.length;
  const vocabulary = [...dataset.vocabulary];
  const backendName = tf.getBackend();
  const settings = resolveSettings(options, { backend: backendName, cores: os.availableParallelism() });
  const { batchSize, logEvery, validateEvery, checkpointEvery, learningRate, schedule, warmupSteps, flip } =
    settings;
  const { bestMetric, seed, boxes, boxLossWeight, workers } = settings;
  const recalibrate = settings.recalibrateBatchNorm;
  const parallelBackend = isParallelBackend(backendName) ? backendName : undefined;
  const time = settings.time;
  // With a time budget and no step count: 10 validations a run, evenly by time.
  const validateEverySeconds =
    time !== undefined && options.validateEvery === undefined ? time / 10 : undefined;
  const stages = stagesOf(dataset, options.progressive);
  const writeReport = options.report ?? true;
  const colorJitter = options.colorJitter;
  if (boxes && !factory.supportsBoxes) {
    throw new TrainerError(
      'invalid-options',
      `model ${factory.name} has no box head: train without boxes or pick a model that supports them`,
    );
  }
  if (classes === 0 || dataset.size === 0) {
    throw new TrainerError('invalid-options', `the dataset at ${dataset.root} has no images or no classes`);
  }

  const resume = options.resume ?? false;
  // Creates it, or refuses a folder litter did not create; one writer at a time; a new run clears only an old one.
  claims.push(await claimRunDir(runDir, { resume, overwrite: options.overwrite ?? false }));
  const { last: lastDir, best: bestDir } = runPaths(runDir);

  let split: { train: number[]; validation: number[]; test: number[] };
  let resumeState: CheckpointState | undefined;
  let savedConfig: RunConfig | undefined;
  let createdAt = new Date().toISOString();
  if (resume) {
    const point = await readResumePoint(runDir);
    const saved = point.config;
    resumeState = point.state;
    savedConfig = saved;
    const problems: string[] = [];
    if (saved.model !== factory.name) problems.push(`model ${saved.model}, now ${factory.name}`);
    if (saved.width !== dataset.width || saved.height !== dataset.height) {
      problems.push(`image size ${saved.width}x${saved.height}, now ${dataset.width}x${dataset.height}`);
    }
    if (JSON.stringify(saved.vocabulary) !== JSON.stringify(vocabulary)) {
      problems.push(`classes ${saved.vocabulary.join(', ')}, now ${vocabulary.join(', ')}`);
    }
    problems.push(...resumeProblems(saved, settings));
    if (
      options.split &&
      !(
        sameIndices(options.split.train, saved.split.train) &&
        sameIndices(options.split.validation, saved.split.validation) &&
        sameIndices(options.split.test, saved.split.test)
      )
    ) {
      problems.push('a different split');
    }
    if (problems.length > 0) {
      throw new TrainerError(
        'resume-mismatch',
        `cannot resume ${runDir}: it was trained with ${problems.join('; ')}. Resume with the same settings, ` +
          'or start a new run directory',
      );
    }
    split = checkSplit(saved.split, dataset.size);
    createdAt = saved.createdAt;
  } else {
    split = checkSplit(options.split ?? splitDataset(dataset, { seed }), dataset.size);
  }

  const stepsPerEpoch = Math.ceil(split.train.length / batchSize); // EpochSampler without dropLast
  const length: TrainingLength =
    time !== undefined
      ? { seconds: time }
      : {
          steps: settings.epochs !== undefined ? settings.epochs * stepsPerEpoch : settings.steps!,
        };
  const sizes: SizeStage[] = stages.map(({ dataset: d, from }) => ({
    width: d.width,
    height: d.height,
    from,
  }));
  const trainingSchedule: TrainingSchedule = { length, learningRate, schedule, warmupSteps, sizes };

  const config: RunConfig = {
    ...(colorJitter ? { colorJitter } : {}),
    format: 1,
    model: factory.name,
    backend: backendName,
    width: dataset.width,
    height: dataset.height,
    channels: 3,
    vocabulary,
    ...settings,
    steps: 'steps' in length ? length.steps : undefined,
    sizes,
    dataset: {
      root: dataset.root,
      labelsPath: dataset.labelsPath,
      size: dataset.size,
      fingerprint: dataset.fingerprint,
    },
    split,
    createdAt,
  };
  await writeRunConfig(runDir, config);

  // The stage a resumed run was in is the one of its checkpoint's image size.
  let stage = resumeState
    ? Math.max(
        0,
        stages.findIndex(
          (s) => s.dataset.width === resumeState.width && s.dataset.height === resumeState.height,
        ),
      )
    : 0;
  const scheduleChange =
    resumeState && savedConfig
      ? describeScheduleChange(
          savedSchedule(savedConfig, trainingSchedule),
          trainingSchedule,
          { step: resumeState.step, seconds: resumeState.seconds ?? resumeState.elapsedSeconds },
          stage,
        )
      : undefined;
  let data = stages[stage]!.dataset;
  let model: tfl.LayersModel = resumeState
    ? await loadModel(lastDir)
    : factory.create({ inputShape: [data.height, data.width, 3], classes, boxes, seed });
  const optimizer = tf.train.adam(learningRate);
  const samplerOptions = { indices: split.train, batchSize, seed, dropLast: false, shuffle: true };
  const rng = resumeState ? restoreRandom(resumeState.rng) : runRandom(seed);
  let batcher = createBatcher(data, { sampler: new EpochSampler(samplerOptions), format: 'float32' });
  let log: MetricsLog;
  let parallel: ParallelTrainer | undefined;
  let head: BoxHead | undefined;
  const parallelOptions = {
    modelSpec: options.modelSpec ?? factory.name,
    backend: (parallelBackend ?? 'cpu') as 'wasm' | 'cpu',
    workers,
    classes,
    boxes,
    boxLossWeight,
    learningRate,
    seed,
  };
  try {
    head = boxHeadFor(model, classes, [factory.boxHead]);
    if ((head !== undefined) !== boxes) {
      throw new TrainerError(
        'model-mismatch',
        `model ${factory.name} ${boxes ? 'has no box head although boxes were asked for' : 'has a box head although boxes were not asked for'}`,
      );
    }
    checkInputShape(model, data.height, data.width);
    const savedOptimizer = resumeState ? await readOptimizer(lastDir, optimizer.getClassName()) : undefined;
    if (workers > 1) {
      parallel = await startParallel(model, parallelOptions);
      if (savedOptimizer) await parallel.setOptimizerState(savedOptimizer.weights);
    } else if (savedOptimizer) {
      await restoreOptimizer(optimizer, savedOptimizer);
    }
    if (resumeState) batcher.restore(resumeState.sampler);
    log = await MetricsLog.open(runDir, resumeState?.step);
  } catch (error) {
    await parallel?.dispose();
    model.dispose();
    optimizer.dispose();
    throw error;
  }

  let step = resumeState?.step ?? 0;
  let best: BestRecord | undefined = resumeState?.best;
  let thresholds: number[] = resumeState?.thresholds ?? vocabulary.map(() => 0.5);
  let elapsedMs = (resumeState?.elapsedSeconds ?? 0) * 1000;
  /** The clock of the schedule: seconds of training loop (validations, checkpoints) across resumes. */
  let seconds = resumeState?.seconds ?? resumeState?.elapsedSeconds ?? 0;
  const progress = () => ({ step, seconds });
  let lastSavedStep = resumeState ? step : -1;
  const epochOf = (s: number) => s / stepsPerEpoch;
  let pixels = data.height * data.width * 3;
  let variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const throughput = new Throughput();
  let shape = { height: data.height, width: data.width, classes };
  const calibration =
    recalibrate > 0 && batchNormLayers(model).length > 0 ? evenlySpaced(split.train, recalibrate) : [];
  let recalibratedStep = -1;
  /** Before the model is read for validation or saved as the run's result: see `recalibrateBatchNorm`. */
  const recalibrateOnce = () => {
    if (calibration.length === 0 || recalibratedStep === step) return;
    recalibrateBatchNorm(model, data, calibration, batchSize);
    recalibratedStep = step;
  };
  /** Progressive resizing: the same weights and optimizer moments in a model (and workers) at the next size. */
  const enterStage = async (next: number) => {
    await syncWeights();
    const moments = parallel ? await parallel.getOptimizerState() : undefined;
    const samplerState = batcher.state();
    data = stages[next]!.dataset;
    const resized = factory.create({ inputShape: [data.height, data.width, 3], classes, boxes, seed });
    resized.setWeights(model.getWeights());
    model.dispose();
    model = resized;
    head = boxHeadFor(model, classes, [factory.boxHead]);
    // Adam keeps its moments by position: the new variables take the old ones' places.
    variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
    if (parallel) {
      await parallel.dispose();
      parallel = undefined;
      parallel = await startParallel(model, parallelOptions);
      await parallel.setOptimizerState(moments!);
    }
    batcher = createBatcher(data, { sampler: new EpochSampler(samplerOptions), format: 'float32' });
    batcher.restore(samplerState);
    pixels = data.height * data.width * 3;
    shape = { height: data.height, width: data.width, classes };
    recalibratedStep = -1;
    stage = next;
    // The best checkpoint is one at the final size: validations at a smaller one score lower anyway.
    if (stage === stages.length - 1) best = undefined;
  };
  /** Whether the step just done is the run's last: the length is reached, or a time budget's end is near. */
  let finishSeconds = 0;
  // One more step would end past the budget: the step's own time (the last one's, as an estimate) counts too.
  let stepSeconds = 0;
  const lastStep = () =>
    finished(length, progress()) || (time !== undefined && seconds + stepSeconds + finishSeconds >= time);
  let nextValidationSeconds =
    validateEverySeconds === undefined
      ? Infinity
      : (Math.floor(seconds / validateEverySeconds) + 1) * validateEverySeconds;
  const estimatedTotalSteps = () => {
    if ('steps' in length) return length.steps;
    const p = progressOf(length, progress());
    return p > 0 ? Math.max(step, Math.round(step / p)) : step;
  };

  const stateAt = (): CheckpointState => ({
    format: 1,
    step,
    epoch: epochOf(step),
    sampler: batcher.state(),
    rng: saveRandom(rng),
    best,
    model: factory.name,
    width: data.width,
    height: data.height,
    boxes,
    vocabulary,
    thresholds,
    elapsedSeconds: elapsedMs / 1000,
    seconds,
    savedAt: new Date().toISOString(),
  });
  // Data-parallel: the workers hold the current weights; the model here gets them before it is read.
  let weightsStale = false;
  const syncWeights = async () => {
    if (!parallel || !weightsStale) return;
    const values = await parallel.getWeights();
    const tensors = values.map((v, i) => tf.tensor(v, model.weights[i]!.shape as number[]));
    try {
      model.setWeights(tensors);
    } finally {
      tf.dispose(tensors);
    }
    weightsStale = false;
  };
  const optimizerState = async (): Promise<OptimizerSnapshot> =>
    parallel
      ? {
          className: optimizer.getClassName(),
          config: optimizer.getConfig(),
          weights: await parallel.getOptimizerState(),
        }
      : snapshotOptimizer(optimizer);
  const checkpoint = async (kind: CheckpointKind) => {
    const dir = kind === 'last' ? lastDir : bestDir;
    await syncWeights();
    await saveCheckpoint(dir, model, await optimizerState(), stateAt());
    if (kind === 'last') lastSavedStep = step;
    await emit('onCheckpoint', { step, dir, kind });
  };

  await emit('onTrainBegin', {
    runDir,
    step,
    totalSteps: estimatedTotalSteps(),
    totalSeconds: time,
    seconds,
    sizes,
    scheduleChange,
    backend: backendName,
    model: factory.name,
    workers,
    parameters: model.countParams(),
    batchSize,
    trainSize: split.train.length,
    validationSize: split.validation.length,
    testSize: split.test.length,
    resumed: resumeState !== undefined,
  });

  let stopped: StopReason = 'done';
  let stopRequested: string | undefined;
  let message: string | undefined;
  try {
    while (!finished(length, progress())) {
      const iterationStarted = performance.now();
      const secondsBefore = seconds;
      const tick = () => {
        seconds = secondsBefore + (performance.now() - iterationStarted) / 1000;
      };
      if (options.signal) {
        // Let a pending abort (SIGINT handler, timer) run: the steps themselves never yield to the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        if (options.signal.aborted) {
          stopped = 'signal';
          break;
        }
      }
      const wanted = stageAt(trainingSchedule, progress(), stage);
      if (wanted !== stage) await enterStage(wanted);
      const rate = learningRateAt(trainingSchedule, progress());
      // Adam reads its learning rate on every update; tfjs declares the field protected.
      (optimizer as unknown as { learningRate: number }).learningRate = rate;
      const batch = batcher.next();
      const n = batch.size;
      const started = performance.now();
      if (flip) flipHalf(batch.images, boxes ? batch.boxes : undefined, n, shape, rng);
      if (colorJitter) jitterColors(batch.images as Float32Array, n, shape, colorJitter, rng);
      let loss: number;
      if (parallel) {
        loss = await parallel.step(batch.images as Float32Array, batch.labels, n, {
          learningRate: rate,
          ...(boxes ? { boxes: batch.boxes, boxMask: batch.boxMask } : {}),
        });
        weightsStale = true;
      } else
        loss = withRandom(rng, () =>
          tf.tidy(() => {
            // Copies: the batcher reuses its buffers, and a backend may keep a reference to a tensor's source array.
            const images = tf.tensor4d(batch.images.slice(0, n * pixels), [n, data.height, data.width, 3]);
            const labels = tf.tensor2d(batch.labels.slice(0, n * classes), [n, classes]);
            const box = head
              ? {
                  head,
                  targets: tf.tensor2d(batch.boxes.slice(0, n * classes * 4), [n, classes * 4]),
                  mask: tf.tensor2d(batch.boxMask.slice(0, n * classes), [n, classes]),
                  weight: boxLossWeight,
                }
              : undefined;
            const { value, grads } = tf.variableGrads(() => batchLoss(model, images, labels, box), variables);
            const lossValue = value.dataSync()[0]!;
            // Check before applying: a non-finite loss must not reach the weights.
            if (Number.isFinite(lossValue)) {
              optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name]! })));
            }
            return lossValue;
          }),
        );
      const ms = performance.now() - started;
      if (!Number.isFinite(loss)) {
        stopped = 'nan';
        message =
          `@litter/trainer: the training loss became ${loss} at step ${step + 1}; training stopped and the last ` +
          `good checkpoint (step ${lastSavedStep < 0 ? 'none saved yet' : lastSavedStep}) is kept in ${lastDir}. ` +
          'Lower the learning rate (--lr) and train again or resume.';
        break;
      }
      step++;
      elapsedMs += ms;
      tick();
      stepSeconds = seconds - secondsBefore;
      let last = lastStep();
      const imagesPerSecond = throughput.add(n, ms);
      const logged = step % logEvery === 0 || last;
      const stepRow: StepRow = {
        event: 'step',
        step,
        epoch: epochOf(step),
        loss,
        learningRate: rate,
        imagesPerSecond,
        elapsedSeconds: elapsedMs / 1000,
        seconds,
      };
      if (logged) await log.append(stepRow);
      await emit('onStepEnd', {
        step,
        totalSteps: last ? step : estimatedTotalSteps(),
        progress: last ? 1 : progressOf(length, progress()),
        epoch: stepRow.epoch,
        loss,
        imagesPerSecond,
        learningRate: rate,
        logged,
        elapsedSeconds: stepRow.elapsedSeconds,
        seconds,
      });

      let improved = false;
      const validating =
        split.validation.length > 0 &&
        (last ||
          (validateEverySeconds === undefined
            ? step % validateEvery === 0
            : seconds >= nextValidationSeconds));
      if (validating) {
        const validationStarted = performance.now();
        await syncWeights();
        recalibrateOnce();
        const predictions = predictDataset(model, data, split.validation, batchSize);
        thresholds = tuneThresholds(predictions.probabilities, predictions.labels, classes);
        const evaluation = evaluatePredictions(predictions, vocabulary);
        const value = bestMetric === 'loss' ? predictions.loss : evaluation.fixed[bestMetric];
        improved = best === undefined || (bestMetric === 'loss' ? value < best.value : value > best.value);
        if (improved) best = { metric: bestMetric, value, step };
        const row: ValidationRow = {
          event: 'validation',
          step,
          epoch: epochOf(step),
          loss: predictions.loss,
          exactMatch: evaluation.fixed.exactMatch,
          macroF1: evaluation.fixed.macroF1,
          microF1: evaluation.fixed.microF1,
          hammingLoss: evaluation.fixed.hammingLoss,
          meanAveragePrecision: evaluation.meanAveragePrecision,
          ...detectionFigures(evaluation),
          elapsedSeconds: elapsedMs / 1000,
          seconds,
          width: data.width,
          height: data.height,
        };
        await log.append(row);
        await emit('onValidation', {
          step,
          loss: row.loss,
          exactMatch: row.exactMatch,
          macroF1: row.macroF1,
          microF1: row.microF1,
          hammingLoss: row.hammingLoss,
          meanAveragePrecision: row.meanAveragePrecision,
          ...detectionFigures(evaluation),
          best: improved,
          seconds,
          width: data.width,
          height: data.height,
          stop: (reason) => {
            stopRequested = reason;
          },
        });
        if (stopRequested !== undefined) {
          last = true;
          message = `@litter/trainer: stopped early at step ${step}: ${stopRequested}`;
        }
        const validationSeconds = (performance.now() - validationStarted) / 1000;
        // What the end of a time budget must leave room for: this validation again, the test split, the report.
        finishSeconds = 2.5 * validationSeconds + (writeReport ? 1 : 0);
        // Validations take at most a sixth of a time budget's clock, however slow they are here.
        if (validateEverySeconds !== undefined) {
          tick();
          nextValidationSeconds = seconds + Math.max(validateEverySeconds, 5 * validationSeconds);
        }
      }
      if (last) {
        await syncWeights();
        recalibrateOnce();
      }
      // best before last: the state saved in last records this step as the best one.
      if (improved) await checkpoint('best');
      const checkpointDue =
        validateEverySeconds !== undefined && options.checkpointEvery === undefined
          ? validating
          : step % checkpointEvery === 0;
      tick();
      if (checkpointDue || last) await checkpoint('last');
      tick();
      if (last) break;
    }
    if (stopped === 'signal' && lastSavedStep !== step) await checkpoint('last');
    // A time budget can end the loop after a step that was not planned as the last: save it while the optimizer
    // (and the workers) are still there.
    if (stopped === 'done' && step > lastSavedStep) await checkpoint('last');
    await syncWeights();
    if (stopped === 'signal') {
      message =
        `@litter/trainer: stopped at step ${step} of ${'steps' in length ? length.steps : `about ${estimatedTotalSteps()} (${formatSeconds(seconds)} of ${formatSeconds(length.seconds)})`}; the checkpoint is in ${lastDir}. ` +
        'Resume with the same options and resume: true (litter train --resume --out RUN_DIR).';
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    optimizer.dispose();
    await parallel?.dispose();
  }

  let evaluation: Evaluation | undefined;
  let testEvaluation: Evaluation | undefined;
  let reportPath: string | undefined;
  let reportError: string | undefined;
  if (stopped === 'done') {
    if (step > lastSavedStep) await checkpoint('last'); // nothing trained in this call (resumed at the end)
    if (best && best.step !== step && (await exists(join(bestDir, CHECKPOINT_FILES.model)))) {
      // Hand back and evaluate the model that validation picked: the one `loadRun` and `litter predict` use.
      const bestModel = await loadModel(bestDir);
      model.dispose();
      model = bestModel;
    }
    let validationPredictions: DatasetPredictions | undefined;
    let testPredictions: DatasetPredictions | undefined;
    if (split.validation.length > 0) {
      const predictions = predictDataset(model, data, split.validation, batchSize);
      validationPredictions = predictions;
      thresholds = tuneThresholds(predictions.probabilities, predictions.labels, classes);
      evaluation = evaluatePredictions(predictions, vocabulary, thresholds);
    }
    if (split.test.length > 0) {
      const predictions = predictDataset(model, data, split.test, batchSize);
      testPredictions = predictions;
      testEvaluation = evaluatePredictions(predictions, vocabulary, thresholds);
    }
    const text = [
      evaluation
        ? formatEvaluation(evaluation, { title: 'Validation split', tunedHere: true })
        : 'No validation split.\n',
      testEvaluation ? formatEvaluation(testEvaluation, { title: 'Test split' }) : undefined,
    ]
      .filter((part) => part !== undefined)
      .join('\n');
    const evaluated = { step: best && split.validation.length > 0 ? best.step : step };
    await writeRunEvaluation(
      runDir,
      {
        ...evaluated,
        ...(evaluation ? { validation: evaluation } : {}),
        ...(testEvaluation ? { test: testEvaluation } : {}),
      },
      thresholds,
      text,
    );

    if (writeReport) {
      // The predictions just made are the report's: drawing it costs no forward pass.
      const samples = validationPredictions
        ? {
            splitName: 'validation' as const,
            indices: split.validation,
            predictions: validationPredictions,
            evaluation,
          }
        : testPredictions
          ? {
              splitName: 'test' as const,
              indices: split.test,
              predictions: testPredictions,
              evaluation: testEvaluation,
            }
          : {
              splitName: 'validation' as const,
              indices: [],
              predictions: predictDataset(model, data, [], batchSize),
              evaluation: undefined,
            };
      try {
        const report = await writeReportOf({
          runDir,
          config,
          history: log.rows,
          dataset: data,
          ...samples,
          thresholds,
          step: best && split.validation.length > 0 ? best.step : step,
        });
        reportPath = report.htmlPath;
      } catch (error) {
        // The run is saved; a report that cannot be drawn must not turn it into a failure.
        reportError =
          `@litter/trainer: the run is saved, but its report could not be written (${(error as Error).message}); ` +
          `try again with \`litter report ${runDir}\``;
      }
    }
  }

  await emit('onTrainEnd', {
    runDir,
    step,
    stopped,
    evaluation,
    testEvaluation,
    message,
    reportPath,
    reportError,
  });
  const result: TrainResult = { model, runDir, history: log.rows, thresholds, stopped, step };
  if (evaluation) result.evaluation = evaluation;
  if (testEvaluation) result.testEvaluation = testEvaluation;
  if (message) result.message = message;
  if (reportPath) result.reportPath = reportPath;
  if (reportError) result.reportError = reportError;
  return result;
}
