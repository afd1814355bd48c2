/*
 * The end of a run that reached its length: the best checkpoint's model, its evaluation on the validation and
 * test splits with thresholds tuned on validation, evaluation.json/.txt, and the report.
 */
import { join } from 'node:path';
import type { Dataset } from '@litter/dataset';
import { loadModel } from '@litter/model';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { HistoryRow } from './_history.js';
import { exists } from './_io.js';
import { predictionSettings } from './_predict.js';
import type { RunPlan } from './_run-setup.js';
import { type DatasetPredictions, evaluatePredictions, predictDataset } from './evaluate.js';
import { formatEvaluation } from './format.js';
import { type Evaluation, tuneThresholds } from './metrics.js';
import { writeReportOf } from './report.js';
import { type BestRecord, CHECKPOINT_FILES, writeRunEvaluation } from './run-dir.js';

/** Where the run stands when its loop is over. */
export interface FinishInput {
  plan: RunPlan;
  /** The model as trained to the last step (disposed here when the best checkpoint's replaces it). */
  model: tfl.LayersModel;
  /** The dataset of the final stage. */
  data: Dataset;
  step: number;
  best: BestRecord | undefined;
  /** The validation predictions of the best model, when the loop made them (not after a resume). */
  bestPredictions?: DatasetPredictions | undefined;
  thresholds: number[];
  history: HistoryRow[];
}

/** What the run hands back. */
export interface Finished {
  model: tfl.LayersModel;
  thresholds: number[];
  evaluation: Evaluation | undefined;
  testEvaluation: Evaluation | undefined;
  reportPath: string | undefined;
  reportError: string | undefined;
}

interface SplitResult {
  predictions: DatasetPredictions;
  evaluation: Evaluation;
}

/** The model that validation picked (the one `loadRun` and `litter predict` use), else the last step's. */
async function resultModel(input: FinishInput): Promise<tfl.LayersModel> {
  const { best, step, plan } = input;
  const bestDir = plan.paths.best;
  if (!best || best.step === step || !(await exists(join(bestDir, CHECKPOINT_FILES.model))))
    return input.model;
  const bestModel = await loadModel(bestDir);
  input.model.dispose();
  return bestModel;
}

/** evaluation.json and evaluation.txt. */
async function writeEvaluation(
  plan: RunPlan,
  step: number,
  splits: { validation?: SplitResult; test?: SplitResult },
  thresholds: number[],
): Promise<void> {
  const { validation, test } = splits;
  const text = [
    validation
      ? formatEvaluation(validation.evaluation, { title: 'Validation split', tunedHere: true })
      : 'No validation split.\n',
    test ? formatEvaluation(test.evaluation, { title: 'Test split' }) : undefined,
  ]
    .filter((part) => part !== undefined)
    .join('\n');
  await writeRunEvaluation(
    plan.options.runDir,
    {
      step,
      ...(validation ? { validation: validation.evaluation } : {}),
      ...(test ? { test: test.evaluation } : {}),
    },
    thresholds,
    text,
  );
}

/** report.html: the predictions just made are the report's, so drawing it costs no forward pass. */
async function writeReport(
  input: FinishInput & { model: tfl.LayersModel; step: number },
  splits: { validation?: SplitResult; test?: SplitResult },
  thresholds: number[],
): Promise<{ reportPath?: string; reportError?: string }> {
  const { plan, model, data } = input;
  const { split, options, config } = plan;
  const { validation, test } = splits;
  const samples = validation
    ? { splitName: 'validation' as const, indices: split.validation, ...validation }
    : test
      ? { splitName: 'test' as const, indices: split.test, ...test }
      : {
          splitName: 'validation' as const,
          indices: [],
          predictions: predictDataset(model, data, [], predictionSettings(plan.settings)),
          evaluation: undefined,
        };
  try {
    const report = await writeReportOf({
      runDir: options.runDir,
      config,
      history: input.history,
      dataset: data,
      ...samples,
      thresholds,
      step: input.step,
    });
    return { reportPath: report.htmlPath };
  } catch (error) {
    // The run is saved; a report that cannot be drawn must not turn it into a failure.
    return {
      reportError:
        `@litter/trainer: the run is saved, but its report could not be written (${(error as Error).message}); ` +
        `try again with \`litter report ${options.runDir}\``,
    };
  }
}

/**
 * Evaluates the best checkpoint's model on validation (tuning the thresholds there) and test, writes the
 * evaluation and (unless `report: false`) the report.
 */
export async function finishRun(input: FinishInput): Promise<Finished> {
  const { plan, data } = input;
  const { split, settings, vocabulary, classes } = plan;
  const model = await resultModel(input);
  let thresholds = input.thresholds;
  const splits: { validation?: SplitResult; test?: SplitResult } = {};
  if (split.validation.length > 0) {
    // The best validation's predictions are those of this model: no second pass over the split.
    const predictions =
      input.bestPredictions && input.best
        ? input.bestPredictions
        : predictDataset(model, data, split.validation, predictionSettings(settings));
    thresholds = tuneThresholds(predictions.probabilities, predictions.labels, classes);
    splits.validation = { predictions, evaluation: evaluatePredictions(predictions, vocabulary, thresholds) };
  }
  if (split.test.length > 0) {
    const predictions = predictDataset(model, data, split.test, predictionSettings(settings));
    splits.test = { predictions, evaluation: evaluatePredictions(predictions, vocabulary, thresholds) };
  }
  // The step behind the model evaluated.
  const step = input.best && split.validation.length > 0 ? input.best.step : input.step;
  await writeEvaluation(plan, step, splits, thresholds);
  const report = plan.report ? await writeReport({ ...input, model, step }, splits, thresholds) : {};
  return {
    model,
    thresholds,
    evaluation: splits.validation?.evaluation,
    testEvaluation: splits.test?.evaluation,
    reportPath: report.reportPath,
    reportError: report.reportError,
  };
}
