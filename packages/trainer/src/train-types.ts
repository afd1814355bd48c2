/*
 * The public types of train(): its options, its events and callbacks, and its result. Apart from the loop
 * (train.ts), so that the loop's private modules and callbacks.ts use them without importing the loop.
 */
import type { Dataset } from '@litter/dataset';
import type { ModelFactory } from '@litter/model';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { HistoryRow, ValidationFigures } from './history.js';
import type { Evaluation } from './metrics.js';
import type { CheckpointKind, StopReason, TrainSettings } from './options.js';
import type { SizeStage } from './schedule.js';

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
  /**
   * Validations since the last new best in the run's recorded history (0 for a new run), so that a callback
   * counting them (early stopping) carries its count across a resume.
   */
  validationsSinceBest: number;
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

export interface ValidationEvent extends ValidationFigures {
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
