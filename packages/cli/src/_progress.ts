import type {
  StepEndEvent,
  TrainBeginEvent,
  CheckpointEvent as TrainerCheckpointEvent,
  ValidationEvent as TrainerValidationEvent,
} from '@litter/trainer';
import cliProgress from 'cli-progress';
import { type Io, writeJson, writeLine } from './_io.js';

/**
 * The fields of the trainer's events (TrainerCallbacks of @litter/trainer) that the CLI renders: picked from the
 * trainer's own types, so a change there shows up here at compile time. Type-only: nothing is loaded at run time.
 */
export type BeginEvent = Pick<
  TrainBeginEvent,
  'runDir' | 'step' | 'totalSteps' | 'backend' | 'model' | 'trainSize' | 'validationSize' | 'resumed'
> &
  Partial<Pick<TrainBeginEvent, 'workers' | 'totalSeconds' | 'seconds' | 'scheduleChange'>>;
export type StepEvent = Pick<
  StepEndEvent,
  'step' | 'totalSteps' | 'epoch' | 'loss' | 'imagesPerSecond' | 'learningRate' | 'logged'
> &
  Partial<Pick<StepEndEvent, 'progress' | 'seconds'>>;
export type ValidationEvent = Pick<
  TrainerValidationEvent,
  'step' | 'loss' | 'exactMatch' | 'macroF1' | 'microF1' | 'hammingLoss'
> &
  Partial<
    Pick<TrainerValidationEvent, 'seconds' | 'width' | 'height' | 'meanIoU' | 'shareIoU50' | 'ap50' | 'ap'>
  >;
export type CheckpointEvent = Pick<TrainerCheckpointEvent, 'step' | 'dir' | 'kind'>;

/** How `litter train` shows progress: a bar on a terminal, plain lines in a pipe, JSON lines with `--json`. */
export type ProgressMode = 'tty' | 'plain' | 'json';

export function progressMode(io: Io, json: boolean): ProgressMode {
  if (json) return 'json';
  return io.stderr.isTTY && io.env.TERM !== 'dumb' && !io.env.CI ? 'tty' : 'plain';
}

const fixed = (value: number, digits: number) =>
  Number.isFinite(value) ? value.toFixed(digits) : String(value);

/** `42s`, `3m05s`, `1h02m`. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Renders trainer events; `callbacks` is what `train()` gets. */
export class ProgressRenderer {
  readonly #io: Io;
  readonly #mode: ProgressMode;
  #bars: cliProgress.MultiBar | undefined;
  #bar: cliProgress.SingleBar | undefined;
  #lastStep = 0;
  #started = { step: 0, at: 0 };
  /** The budget of a time-budgeted run: the bar shows seconds then. */
  #budget: number | undefined;

  constructor(io: Io, mode: ProgressMode) {
    this.#io = io;
    this.#mode = mode;
  }

  /** A line that must not tear the bar apart. */
  #line(text: string): void {
    if (this.#bars) {
      this.#bars.log(`${text}\n`);
      this.#bars.update(); // log() only buffers until the next redraw
    } else writeLine(this.#io.stdout, text);
  }

  readonly callbacks = {
    onTrainBegin: (e: BeginEvent) => {
      this.#lastStep = e.step;
      if (this.#mode === 'json') {
        writeJson(this.#io, { event: 'begin', ...e });
        return;
      }
      this.#budget = e.totalSeconds;
      const from =
        e.totalSeconds !== undefined
          ? e.resumed
            ? `resuming at ${duration(e.seconds ?? 0)} (step ${e.step}) of ${duration(e.totalSeconds)}`
            : `for ${duration(e.totalSeconds)}`
          : e.resumed
            ? `resuming at step ${e.step} of ${e.totalSteps}`
            : `${e.totalSteps} steps`;
      const where = (e.workers ?? 1) > 1 ? `${e.workers} ${e.backend} workers` : e.backend;
      writeLine(
        this.#io.stdout,
        `training ${e.model} on ${where}: ${e.trainSize} train / ${e.validationSize} validation images, ${from}`,
      );
      if (e.scheduleChange) writeLine(this.#io.stdout, `schedule: ${e.scheduleChange}`);
      writeLine(this.#io.stdout, `run directory: ${e.runDir}`);
      if (this.#mode === 'tty' && this.#budget !== undefined) {
        this.#bars = new cliProgress.MultiBar(
          {
            stream: this.#io.stderr as NodeJS.WritableStream,
            format: '{time} {bar} step {value} loss {loss} | {ips} img/s | left {remaining}',
            barsize: 24,
            hideCursor: true,
            gracefulExit: false,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        this.#bar = this.#bars.create(1000, 0, { loss: '-', ips: '-', remaining: '-', time: '-' });
      } else if (this.#mode === 'tty') {
        this.#bars = new cliProgress.MultiBar(
          {
            stream: this.#io.stderr as NodeJS.WritableStream,
            format: 'step {value}/{total} {bar} loss {loss} | {ips} img/s | ETA {remaining}',
            barsize: 24,
            hideCursor: true,
            gracefulExit: false,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        this.#bar = this.#bars.create(e.totalSteps, e.step, { loss: '-', ips: '-', remaining: '-' });
        this.#started = { step: e.step, at: performance.now() };
      }
    },
    onStepEnd: (e: StepEvent) => {
      this.#lastStep = e.step;
      if (this.#bar && this.#budget !== undefined) {
        const seconds = e.seconds ?? 0;
        // cli-progress draws value/total: the value is the step, the bar the fraction of the budget.
        this.#bar.setTotal(Math.max(e.step, e.totalSteps));
        this.#bar.update(e.step, {
          loss: fixed(e.loss, 4),
          ips: fixed(e.imagesPerSecond, 1),
          remaining: duration(this.#budget - seconds),
          time: `${duration(seconds)}/${duration(this.#budget)}`,
        });
        return;
      }
      if (this.#bar) {
        // Wall-clock ETA (validation and checkpoints included), from the steps done in this process.
        const done = e.step - this.#started.step;
        const seconds = ((performance.now() - this.#started.at) / 1000 / done) * (e.totalSteps - e.step);
        this.#bar.update(e.step, {
          loss: fixed(e.loss, 4),
          ips: fixed(e.imagesPerSecond, 1),
          remaining: duration(seconds),
        });
        return;
      }
      if (!e.logged) return;
      if (this.#mode === 'json') {
        writeJson(this.#io, {
          event: 'step',
          step: e.step,
          totalSteps: e.totalSteps,
          epoch: e.epoch,
          loss: e.loss,
          imagesPerSecond: e.imagesPerSecond,
          learningRate: e.learningRate,
          ...(e.progress !== undefined ? { progress: e.progress } : {}),
          ...(e.seconds !== undefined ? { seconds: e.seconds } : {}),
        });
        return;
      }
      const width = String(e.totalSteps).length;
      const where =
        this.#budget !== undefined
          ? `step ${String(e.step).padStart(width)}  ${duration(e.seconds ?? 0)}/${duration(this.#budget)}`
          : `step ${String(e.step).padStart(width)}/${e.totalSteps}`;
      this.#line(
        `${where}  epoch ${fixed(e.epoch, 2)}  loss ${fixed(e.loss, 4)}  ` +
          `${fixed(e.imagesPerSecond, 1)} img/s  lr ${e.learningRate.toExponential(2)}`,
      );
    },
    onValidation: (e: ValidationEvent) => {
      if (this.#mode === 'json') {
        writeJson(this.#io, { event: 'validation', ...e });
        return;
      }
      this.#line(
        `validation at step ${e.step}: loss ${fixed(e.loss, 4)}  exact match ${fixed(e.exactMatch, 3)}  ` +
          `macro F1 ${fixed(e.macroF1, 3)}  micro F1 ${fixed(e.microF1, 3)}  Hamming loss ${fixed(e.hammingLoss, 3)}` +
          (e.meanIoU === undefined
            ? ''
            : `  box IoU ${fixed(e.meanIoU, 3)}  IoU>=.5 ${fixed(e.shareIoU50 ?? Number.NaN, 3)}  ` +
              `AP50 ${fixed(e.ap50 ?? Number.NaN, 3)}  AP ${fixed(e.ap ?? Number.NaN, 3)}`),
      );
    },
    onCheckpoint: (e: CheckpointEvent) => {
      if (this.#mode === 'json') writeJson(this.#io, { event: 'checkpoint', ...e });
      // Checkpoints are frequent and quiet on a terminal; the run directory was printed at the start.
    },
  };

  /** Removes the bar (before the final report or an error). */
  stop(): void {
    this.#bars?.update();
    this.#bars?.stop();
    this.#bars = undefined;
    this.#bar = undefined;
  }

  get lastStep(): number {
    return this.#lastStep;
  }
}
