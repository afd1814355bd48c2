/*
 * train(): the training loop. What it settles before the first step is in _run-setup.ts (options, run
 * directory, split, schedule, config.json), the state it shares with its callbacks in _session.ts, the step
 * itself behind the StepEngine of _step-engine.ts (this thread) or _parallel-engine.ts (worker threads),
 * checkpoints and the metrics log in _loop-callbacks.ts, and the end (final evaluation, report) in _finish.ts.
 */
import { type Emit, emitter, type LoopCallbacks } from './_events.js';
import { finishRun } from './_finish.js';
import { validationsAfter } from './_history.js';
import { checkpointing, metricsLogging } from './_loop-callbacks.js';
import { prepareRun } from './_run-setup.js';
import { TrainingSession } from './_session.js';
import { evaluatePredictions } from './evaluate.js';
import { type Evaluation, tuneThresholds } from './metrics.js';
import type { StopReason } from './options.js';
import type { RunClaim } from './run-claim.js';
import { formatSeconds, learningRateAt, stageAt } from './schedule.js';
import type { TrainBeginEvent, TrainOptions, TrainResult, ValidationEvent } from './train-types.js';

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

/** How the loop ended, and for `signal`, `nan` and early stopping what happened. */
interface LoopEnd {
  stopped: StopReason;
  message: string | undefined;
}

async function trainClaimed(options: TrainOptions, claims: RunClaim[]): Promise<TrainResult> {
  const plan = await prepareRun(options, claims);
  const hooks: LoopCallbacks[] = [];
  const emit = emitter(hooks);
  const session = await TrainingSession.open(plan, emit);
  // The metrics log first (callbacks see their rows written), checkpoints after the caller's callbacks.
  hooks.push(metricsLogging(session.log), ...[options.callbacks ?? []].flat(), checkpointing(session));
  let end: LoopEnd;
  try {
    await emit('onTrainBegin', beginEvent(session));
    end = await runLoop(session, emit, options.signal);
    await emit('onLoopEnd', { step: session.step, stopped: end.stopped });
    await session.engine.sync();
  } catch (error) {
    session.engine.model.dispose();
    throw error;
  } finally {
    await session.engine.dispose();
  }
  const { step } = session;
  const message = end.stopped === 'signal' ? signalMessage(session) : end.message;
  const finished =
    end.stopped === 'done'
      ? await finishRun({
          plan,
          model: session.engine.model,
          data: session.data,
          step,
          best: session.best,
          bestPredictions: session.bestPredictions,
          thresholds: session.thresholds,
          history: session.log.rows,
        })
      : undefined;
  const { evaluation, testEvaluation, reportPath, reportError } = finished ?? {};
  const { runDir } = options;
  await emit('onTrainEnd', {
    ...{ runDir, step, stopped: end.stopped, evaluation, testEvaluation },
    ...{ message, reportPath, reportError },
  });
  const result: TrainResult = {
    model: finished?.model ?? session.engine.model,
    runDir,
    history: session.log.rows,
    thresholds: finished?.thresholds ?? session.thresholds,
    stopped: end.stopped,
    step,
  };
  if (evaluation) result.evaluation = evaluation;
  if (testEvaluation) result.testEvaluation = testEvaluation;
  if (message) result.message = message;
  if (reportPath) result.reportPath = reportPath;
  if (reportError) result.reportError = reportError;
  return result;
}

/**
 * The loop: a step (stage, learning rate, batch, augmentations, the engine's step), its event, the validation
 * when due, and the step's end (checkpoints: `onStepDone`), until the run's length is reached or it stops.
 */
async function runLoop(
  session: TrainingSession,
  emit: Emit,
  signal: AbortSignal | undefined,
): Promise<LoopEnd> {
  const { plan, engine } = session;
  let message: string | undefined;
  while (!session.isFinished()) {
    session.beginIteration();
    if (signal) {
      // Let a pending abort (SIGINT handler, timer) run: the steps themselves never yield to the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      if (signal.aborted) return { stopped: 'signal', message: undefined };
    }
    await session.enterStage(stageAt(plan.schedule, session.progress(), session.stage));
    const learningRate = learningRateAt(plan.schedule, session.progress());
    const batch = session.batcher.next();
    const started = performance.now();
    session.augment(batch);
    const loss = await engine.step(batch, learningRate);
    const ms = performance.now() - started;
    if (!Number.isFinite(loss)) return { stopped: 'nan', message: nanMessage(session, loss) };
    session.countStep(ms);
    const { step } = session;
    let last = session.isLastStep();
    await emit('onStepEnd', {
      step,
      totalSteps: last ? step : session.estimatedTotalSteps(),
      progress: last ? 1 : session.progressFraction(),
      epoch: session.epochOf(step),
      loss,
      imagesPerSecond: session.throughput.add(batch.size, ms),
      learningRate,
      logged: step % plan.settings.logEvery === 0 || last,
      elapsedSeconds: session.elapsedMs / 1000,
      seconds: session.seconds,
    });
    const validated = session.validationDue(last);
    let best = false;
    if (validated) {
      const outcome = await validate(session, emit);
      best = outcome.best;
      if (outcome.stop !== undefined) {
        last = true;
        message = `@litter/trainer: stopped early at step ${step}: ${outcome.stop}`;
      }
    }
    // The run's result is read as validations read it.
    if (last) await session.readModel();
    await emit('onStepDone', { step, last, validated, best });
    session.tick();
    if (last) break;
  }
  return { stopped: 'done', message };
}

/** The box figures of a validation row and event (none without a box head). */
function detectionFigures(
  evaluation: Evaluation,
): Pick<ValidationEvent, 'meanIoU' | 'shareIoU50' | 'ap50' | 'ap'> {
  const box = evaluation.fixed.box;
  const detection = evaluation.detection;
  if (!box || !detection) return {};
  return { meanIoU: box.meanIoU, shareIoU50: box.shareIoU50, ap50: detection.ap50, ap: detection.ap };
}

/**
 * Validates after the step just done (tuning the thresholds): whether it is the best so far, and the reason a
 * callback gave for stopping the run, if one did.
 */
async function validate(session: TrainingSession, emit: Emit): Promise<{ best: boolean; stop?: string }> {
  const started = performance.now();
  const { plan, step, data } = session;
  const predictions = await session.predictValidation();
  session.thresholds = tuneThresholds(predictions.probabilities, predictions.labels, plan.classes);
  const evaluation = evaluatePredictions(predictions, plan.vocabulary);
  const best = session.recordBest(predictions, evaluation);
  const { exactMatch, macroF1, microF1, hammingLoss } = evaluation.fixed;
  let stop: string | undefined;
  await emit('onValidation', {
    ...{
      step,
      epoch: session.epochOf(step),
      loss: predictions.loss,
      exactMatch,
      macroF1,
      microF1,
      hammingLoss,
    },
    meanAveragePrecision: evaluation.meanAveragePrecision,
    ...detectionFigures(evaluation),
    best,
    elapsedSeconds: session.elapsedMs / 1000,
    seconds: session.seconds,
    width: data.width,
    height: data.height,
    stop: (reason) => {
      stop = reason;
    },
  });
  session.validated((performance.now() - started) / 1000);
  return { best, stop };
}

function beginEvent(session: TrainingSession): TrainBeginEvent {
  const { plan } = session;
  const { split, settings } = plan;
  return {
    runDir: plan.options.runDir,
    step: session.step,
    totalSteps: session.estimatedTotalSteps(),
    totalSeconds: settings.time,
    seconds: session.seconds,
    sizes: [...plan.schedule.sizes],
    scheduleChange: plan.scheduleChange,
    backend: plan.backend,
    model: plan.options.model.name,
    workers: settings.workers,
    parameters: session.engine.model.countParams(),
    batchSize: settings.batchSize,
    trainSize: split.train.length,
    validationSize: split.validation.length,
    testSize: split.test.length,
    resumed: plan.resumeState !== undefined,
    validationsSinceBest: validationsAfter(session.log.rows, session.best?.step),
  };
}

function nanMessage(session: TrainingSession, loss: number): string {
  const saved = session.lastSavedStep;
  return (
    `@litter/trainer: the training loss became ${loss} at step ${session.step + 1}; training stopped and the last ` +
    `good checkpoint (step ${saved < 0 ? 'none saved yet' : saved}) is kept in ${session.plan.paths.last}. ` +
    'Lower the learning rate (--lr) and train again or resume.'
  );
}

function signalMessage(session: TrainingSession): string {
  const { length } = session.plan.schedule;
  const of =
    'steps' in length
      ? length.steps
      : `about ${session.estimatedTotalSteps()} (${formatSeconds(session.seconds)} of ${formatSeconds(length.seconds)})`;
  return (
    `@litter/trainer: stopped at step ${session.step} of ${of}; the checkpoint is in ${session.plan.paths.last}. ` +
    'Resume with the same options and resume: true (litter train --resume --out RUN_DIR).'
  );
}
