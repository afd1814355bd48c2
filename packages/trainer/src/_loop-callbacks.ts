/*
 * litter's own training callbacks, on the same hooks as the caller's (_events.ts): the metrics log (before the
 * caller's callbacks: they see rows already written) and checkpointing (on `onStepDone`, after the step's
 * validation and the caller's `onValidation`, so that a callback that stops the run still gets its checkpoints,
 * and a validation's time, which a time budget keeps room for at its end, does not count a checkpoint).
 */
import type { LoopCallbacks } from './_events.js';
import type { MetricsLog } from './_history.js';
import type { TrainingSession } from './_session.js';
import type { ValidationEvent } from './train-types.js';

/** The box figures of a validation (none without a box head). */
const detectionFigures = (e: ValidationEvent) =>
  e.meanIoU === undefined ? {} : { meanIoU: e.meanIoU, shareIoU50: e.shareIoU50, ap50: e.ap50, ap: e.ap };

/** Writes a row of `metrics.jsonl`/`metrics.csv` for every logged step and every validation. */
export function metricsLogging(log: MetricsLog): LoopCallbacks {
  return {
    async onStepEnd(e) {
      if (!e.logged) return;
      const { step, epoch, loss, learningRate, imagesPerSecond, elapsedSeconds, seconds } = e;
      await log.append({
        event: 'step',
        step,
        epoch,
        loss,
        learningRate,
        imagesPerSecond,
        elapsedSeconds,
        seconds,
      });
    },
    async onValidation(e) {
      await log.append({
        event: 'validation',
        step: e.step,
        epoch: e.epoch,
        loss: e.loss,
        exactMatch: e.exactMatch,
        macroF1: e.macroF1,
        microF1: e.microF1,
        hammingLoss: e.hammingLoss,
        meanAveragePrecision: e.meanAveragePrecision,
        ...detectionFigures(e),
        elapsedSeconds: e.elapsedSeconds,
        seconds: e.seconds,
        width: e.width,
        height: e.height,
      });
    },
  };
}

/**
 * Saves `checkpoints/best` after each new best validation and `checkpoints/last` every `checkpointEvery` steps (at
 * each validation for a time budget without it), at the last step, and when the loop ends on an abort or after a
 * step that was not planned as the last (a time budget): while the optimizer and the workers are still there.
 */
export function checkpointing(session: TrainingSession): LoopCallbacks {
  const { settings, checkpointAtValidation } = session.plan;
  return {
    async onStepDone(e) {
      // best before last: the state saved in last records this step as the best one.
      if (e.best) await session.checkpoint('best');
      const due = checkpointAtValidation ? e.validated : e.step % settings.checkpointEvery === 0;
      if (due || e.last) await session.checkpoint('last');
    },
    async onLoopEnd(e) {
      // A non-finite loss keeps the last good checkpoint.
      if (e.stopped !== 'nan' && session.lastSavedStep !== e.step) await session.checkpoint('last');
    },
  };
}
