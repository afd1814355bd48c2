/*
 * A training run in progress: the state the loop and its callbacks share (step, clock, best validation,
 * thresholds, image-size stage, batches, the run's generator) and what changes it: counting a step, entering the
 * next stage, readying the model to be read, saving a checkpoint.
 */
import {
  type Batch,
  type Batcher,
  createBatcher,
  type Dataset,
  EpochSampler,
  type SeededRandom,
} from '@litter/dataset';
import { loadModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { flipHalf } from './_augment.js';
import { batchNormLayers, evenlySpaced } from './_batchnorm.js';
import { readOptimizer, restoreOptimizer, saveCheckpoint } from './_checkpoint.js';
import type { Emit } from './_events.js';
import { MetricsLog } from './_history.js';
import { startParallelEngine } from './_parallel-engine.js';
import { jitterColors } from './_photometric.js';
import { checkInputShape, imagesOf, predictionSettings } from './_predict.js';
import { restoreRandom, runRandom, saveRandom } from './_random.js';
import type { RunPlan } from './_run-setup.js';
import { LocalEngine, type StepEngine, type StepEngineOptions, trainedHead } from './_step-engine.js';
import { type DatasetPredictions, datasetPredictions } from './evaluate.js';
import { augmentGeometry } from './geometry.js';
import type { Evaluation } from './metrics.js';
import { type CheckpointKind, isParallelBackend } from './options.js';
import type { BestRecord, CheckpointState } from './run-dir.js';
import { finished, type Progress, progressOf } from './schedule.js';

/**
 * The engine for `model`: in this thread with `workers: 1`, else on worker threads started from its weights; a
 * resume restores the optimizer's state from `resumeFrom`.
 * @throws {TrainerError} `model-mismatch` for a model without the box head asked for (or with one not asked
 *   for) or of another input size; `worker-failed` when the workers cannot start.
 */
export async function startEngine(model: tfl.LayersModel, options: StepEngineOptions): Promise<StepEngine> {
  trainedHead(model, options);
  checkInputShape(model, options.height, options.width);
  const optimizer = tf.train.adam(options.learningRate);
  try {
    const saved = options.resumeFrom
      ? await readOptimizer(options.resumeFrom, optimizer.getClassName())
      : undefined;
    if (options.workers > 1) return await startParallelEngine(model, optimizer, options, saved);
    if (saved) await restoreOptimizer(optimizer, saved);
    return new LocalEngine(model, optimizer, options);
  } catch (error) {
    optimizer.dispose();
    throw error;
  }
}

/** Sliding-window throughput, so one slow step (GC, a checkpoint) does not swing the figure. */
export class Throughput {
  private readonly window: { images: number; ms: number }[] = [];
  add(images: number, ms: number): number {
    this.window.push({ images, ms });
    if (this.window.length > 20) this.window.shift();
    const total = this.window.reduce(
      (sum, entry) => ({ images: sum.images + entry.images, ms: sum.ms + entry.ms }),
      { images: 0, ms: 0 },
    );
    return total.ms > 0 ? (total.images * 1000) / total.ms : 0;
  }
}

const batcherOf = (plan: RunPlan, data: Dataset): Batcher =>
  createBatcher(data, {
    sampler: new EpochSampler({
      indices: plan.split.train,
      batchSize: plan.settings.batchSize,
      seed: plan.settings.seed,
      dropLast: false,
      shuffle: true,
    }),
    format: 'float32',
  });

/** The training state of a run, from its first step (or its checkpoint) to the end of its loop. */
export class TrainingSession {
  /** Optimizer steps done. */
  step: number;
  /** The clock of the schedule: seconds of training loop (validations, checkpoints) across resumes. */
  seconds: number;
  /** Milliseconds spent in training steps, across resumes. */
  elapsedMs: number;
  best: BestRecord | undefined;
  /**
   * The validation predictions of {@link best}'s model, when this call of train() made them: the final
   * evaluation reads them instead of predicting the validation split again (the best checkpoint holds the
   * same weights and batch-norm statistics).
   */
  bestPredictions: DatasetPredictions | undefined;
  /** Per-class thresholds, tuned at the last validation (0.5 before). */
  thresholds: number[];
  /** The step `checkpoints/last` holds (-1: none saved by this run yet). */
  lastSavedStep: number;
  /** The image-size stage (progressive resizing) and its dataset and batches. */
  stage: number;
  data: Dataset;
  batcher: Batcher;
  readonly throughput = new Throughput();
  private recalibratedStep = -1;
  private readonly calibration: number[];
  /** What the end of a time budget must leave room for: the last validation again, the test split, the report. */
  private finishSeconds = 0;
  /** The last step's own seconds: one more step must fit in a time budget too. */
  private stepSeconds = 0;
  /** A time budget's clock at the last validation (at a resume: the last multiple of the spacing). */
  private lastValidationSeconds: number;
  /**
   * A time budget's least gap between validations at the final size: its share of the clock, or 9 validations'
   * time if longer (see {@link validationSpacing}).
   */
  private baseValidationSpacing: number;
  private iteration = { started: 0, secondsBefore: 0 };

  private constructor(
    readonly plan: RunPlan,
    readonly engine: StepEngine,
    readonly log: MetricsLog,
    readonly rng: SeededRandom,
    private readonly emit: Emit,
    batcher: Batcher,
  ) {
    const state = plan.resumeState;
    this.step = state?.step ?? 0;
    this.best = state?.best;
    this.thresholds = state?.thresholds ?? plan.vocabulary.map(() => 0.5);
    this.elapsedMs = (state?.elapsedSeconds ?? 0) * 1000;
    this.seconds = state?.seconds ?? state?.elapsedSeconds ?? 0;
    this.lastSavedStep = state ? this.step : -1;
    this.stage = plan.stage;
    this.data = plan.stages[plan.stage]!.dataset;
    this.batcher = batcher;
    const { recalibrateBatchNorm: count } = plan.settings;
    this.calibration =
      count > 0 && batchNormLayers(engine.model).length > 0 ? evenlySpaced(plan.split.train, count) : [];
    const every = plan.validateEverySeconds;
    this.baseValidationSpacing = every ?? Infinity;
    this.lastValidationSeconds =
      every === undefined
        ? 0
        : Math.floor(this.seconds / this.validationSpacing()) * this.validationSpacing();
  }

  /** Creates (or, resuming, loads) the model, starts its engine, restores the batches and opens the metrics. */
  static async open(plan: RunPlan, emit: Emit): Promise<TrainingSession> {
    const { settings, resumeState, paths } = plan;
    const data = plan.stages[plan.stage]!.dataset;
    const rng = resumeState ? restoreRandom(resumeState.rng) : runRandom(settings.seed);
    const model = resumeState ? await loadModel(paths.last) : createModel(plan, data);
    let engine: StepEngine | undefined;
    try {
      engine = await startEngine(model, engineOptions(plan, rng, data));
      const batcher = batcherOf(plan, data);
      if (resumeState) batcher.restore(resumeState.sampler);
      const log = await MetricsLog.open(plan.options.runDir, resumeState?.step);
      return new TrainingSession(plan, engine, log, rng, emit, batcher);
    } catch (error) {
      await engine?.dispose();
      model.dispose();
      throw error;
    }
  }

  progress(): Progress {
    return { step: this.step, seconds: this.seconds };
  }

  epochOf(step: number): number {
    return step / this.plan.stepsPerEpoch;
  }

  /** Whether the run's length is reached. */
  isFinished(): boolean {
    return finished(this.plan.schedule.length, this.progress());
  }

  /** Fraction of the run done. */
  progressFraction(): number {
    return progressOf(this.plan.schedule.length, this.progress());
  }

  /** The run's steps; with a time budget an estimate from the speed so far. */
  estimatedTotalSteps(): number {
    const { length } = this.plan.schedule;
    if ('steps' in length) return length.steps;
    const p = this.progressFraction();
    return p > 0 ? Math.max(this.step, Math.round(this.step / p)) : this.step;
  }

  /** Whether the step just done is the run's last: the length is reached, or a time budget's end is near. */
  isLastStep(): boolean {
    const time = this.plan.settings.time;
    return (
      this.isFinished() ||
      (time !== undefined && this.seconds + this.stepSeconds + this.finishSeconds >= time)
    );
  }

  /** Starts the clock of one iteration of the loop ({@link tick} brings `seconds` up to now). */
  beginIteration(): void {
    this.iteration = { started: performance.now(), secondsBefore: this.seconds };
  }

  tick(): void {
    this.seconds = this.iteration.secondsBefore + (performance.now() - this.iteration.started) / 1000;
  }

  /** Counts the step just made, `ms` of it spent training. */
  countStep(ms: number): void {
    this.step++;
    this.elapsedMs += ms;
    this.tick();
    this.stepSeconds = this.seconds - this.iteration.secondsBefore;
  }

  /** The training augmentations, in place, drawing from the run's generator: zoom, shift and stretch, flips, colour jitter. */
  augment(batch: Batch): void {
    const { settings, classes } = this.plan;
    const shape = { height: this.data.height, width: this.data.width, classes };
    if (settings.zoomOut > 0 || settings.shift > 0 || settings.stretch > 0)
      augmentGeometry(batch, batch.size, shape, this.rng, {
        scale: [1 - settings.zoomOut, 1],
        translate: settings.shift,
        stretch: settings.stretch,
        flip: false, // flips are `flip`'s, drawn apart so that runs without this draw as before
      });
    if (settings.flip)
      flipHalf(batch.images, settings.boxes ? batch.boxes : undefined, batch.size, shape, this.rng);
    if (settings.colorJitter)
      jitterColors(batch.images as Float32Array, batch.size, shape, settings.colorJitter, this.rng);
  }

  /** Whether to validate after the step just done (`last`: the run's last step). */
  validationDue(last: boolean): boolean {
    const every = this.plan.validateEverySeconds;
    return (
      this.plan.split.validation.length > 0 &&
      (last ||
        (every === undefined
          ? this.step % this.plan.settings.validateEvery === 0
          : this.seconds >= this.lastValidationSeconds + this.validationSpacing() &&
            !this.endWithin(this.baseValidationSpacing / 2)))
    );
  }

  /**
   * The least gap between a time budget's validations now: twice the base before the final stage of progressive
   * resizing, whose validations only report progress (the best checkpoint is one at the final size), so that
   * the budget trains instead.
   */
  private validationSpacing(): number {
    return this.baseValidationSpacing * (this.stage < this.plan.stages.length - 1 ? 2 : 1);
  }

  /**
   * Whether a time budget's last step comes within `seconds`: a timed validation closer to it than half the
   * spacing is left to the last step's own, which would otherwise follow it with nearly the same weights.
   */
  private endWithin(seconds: number): boolean {
    const time = this.plan.settings.time;
    return time !== undefined && this.seconds + seconds + this.finishSeconds >= time;
  }

  /** Records a validation's figures: whether it is the best so far (then kept as {@link best}). */
  recordBest(predictions: DatasetPredictions, evaluation: Evaluation): boolean {
    const metric = this.plan.settings.bestMetric;
    const value = metric === 'loss' ? predictions.loss : evaluation.fixed[metric];
    const improved =
      this.best === undefined || (metric === 'loss' ? value < this.best.value : value > this.best.value);
    if (improved) {
      this.best = { metric, value, step: this.step };
      this.bestPredictions = predictions;
    }
    return improved;
  }

  /** After a validation that took `validationSeconds`: when the next one is, and what the end must leave room for. */
  validated(validationSeconds: number): void {
    // The end: the last step's validation, the test split (predicted at the validation's speed per image), the
    // report; the validation split is not predicted again (see bestPredictions).
    const { validation, test } = this.plan.split;
    const testSeconds = (validationSeconds * test.length) / Math.max(1, validation.length);
    this.finishSeconds = 1.2 * (validationSeconds + testSeconds) + (this.plan.report ? 1 : 0);
    const every = this.plan.validateEverySeconds;
    // Validations take at most a tenth of a time budget's clock, however slow they are here: the steps between
    // them are what the budget is for.
    if (every !== undefined) {
      this.tick();
      this.baseValidationSpacing = Math.max(every, 9 * validationSeconds);
      this.lastValidationSeconds = this.seconds;
    }
  }

  /** Progressive resizing: the same weights and optimizer moments in a model (and workers) at stage `next`. */
  async enterStage(next: number): Promise<void> {
    if (next === this.stage) return;
    await this.engine.sync();
    const samplerState = this.batcher.state();
    this.data = this.plan.stages[next]!.dataset;
    const resized = createModel(this.plan, this.data);
    resized.setWeights(this.engine.model.getWeights());
    await this.engine.replaceModel(resized);
    this.batcher = batcherOf(this.plan, this.data);
    this.batcher.restore(samplerState);
    this.recalibratedStep = -1;
    this.stage = next;
    // With boxes, the first validation at the new size waits a spacing: right after the switch the box head has
    // not adapted to the new size yet (BENCHMARKS.md, session 9: mean IoU 0.52-0.61 at a validation right after
    // it, 0.75-0.82 later in the same runs), and a best checkpoint there would keep its poor boxes.
    if (this.plan.settings.boxes) this.lastValidationSeconds = this.seconds;
    // The best checkpoint is one at the final size: validations at a smaller one score lower anyway.
    if (next === this.plan.stages.length - 1) {
      this.best = undefined;
      this.bestPredictions = undefined;
    }
  }

  /**
   * The model as validations and the run's result read it: the trained weights, the batch-norm statistics
   * re-estimated once per step (see `recalibrateBatchNorm`).
   */
  async readModel(): Promise<tfl.LayersModel> {
    await this.engine.sync();
    if (this.calibration.length > 0 && this.recalibratedStep !== this.step) {
      await this.engine.recalibrate(imagesOf(this.data, this.calibration), this.plan.settings.batchSize);
      this.recalibratedStep = this.step;
    }
    return this.engine.model;
  }

  /** The validation split's predictions by the model as {@link readModel} gives it (made by the engine). */
  async predictValidation(): Promise<DatasetPredictions> {
    await this.readModel();
    const { validation } = this.plan.split;
    const raw = await this.engine.predict(
      imagesOf(this.data, validation),
      predictionSettings(this.plan.settings),
    );
    return datasetPredictions(raw, this.data, validation);
  }

  /** What `state.json` of a checkpoint taken now holds. */
  checkpointState(): CheckpointState {
    const { plan } = this;
    return {
      format: 1,
      step: this.step,
      epoch: this.epochOf(this.step),
      sampler: this.batcher.state(),
      rng: saveRandom(this.rng),
      best: this.best,
      model: plan.options.model.name,
      width: this.data.width,
      height: this.data.height,
      boxes: plan.settings.boxes,
      vocabulary: plan.vocabulary,
      thresholds: this.thresholds,
      elapsedSeconds: this.elapsedMs / 1000,
      seconds: this.seconds,
      savedAt: new Date().toISOString(),
    };
  }

  /** Saves `checkpoints/<kind>` (model, optimizer, state with the clock of now) and emits `onCheckpoint`. */
  async checkpoint(kind: CheckpointKind): Promise<void> {
    const dir = kind === 'last' ? this.plan.paths.last : this.plan.paths.best;
    await this.engine.sync();
    this.tick();
    await saveCheckpoint(dir, this.engine.model, await this.engine.optimizerState(), this.checkpointState());
    if (kind === 'last') this.lastSavedStep = this.step;
    await this.emit('onCheckpoint', { step: this.step, dir, kind });
  }
}

/** A new model of the run at `data`'s image size (seeded: the same initial weights every time). */
function createModel(plan: RunPlan, data: Dataset): tfl.LayersModel {
  const { boxes, seed } = plan.settings;
  return plan.options.model.create({
    inputShape: [data.height, data.width, 3],
    classes: plan.classes,
    boxes,
    seed,
  });
}

function engineOptions(plan: RunPlan, rng: SeededRandom, data: Dataset): StepEngineOptions {
  const { settings, options } = plan;
  return {
    factory: options.model,
    classes: plan.classes,
    boxes: settings.boxes,
    boxLossWeight: settings.boxLossWeight,
    positiveWeight: settings.positiveWeight,
    learningRate: settings.learningRate,
    seed: settings.seed,
    workers: settings.workers,
    backend: isParallelBackend(plan.backend) ? plan.backend : 'cpu',
    modelSpec: options.modelSpec ?? options.model.name,
    rng,
    height: data.height,
    width: data.width,
    ...(plan.resumeState ? { resumeFrom: plan.paths.last } : {}),
  };
}
