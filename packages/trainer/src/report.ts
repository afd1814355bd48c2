import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type Dataset, loadDataset } from '@litter/dataset';
import { type ReportData, type ReportSample, writeReport } from '@litter/report';
import { type HistoryRow, readHistory } from './_history.js';
import { exists } from './_io.js';
import { orderedBox } from './_predict.js';
import { boxIoU } from './detection.js';
import { TrainerError } from './errors.js';
import { type DatasetPredictions, evaluatePredictions, predictDataset } from './evaluate.js';
import { type Evaluation, precisionRecallCurves } from './metrics.js';
import type { CheckpointKind, EvaluationSplit } from './options.js';
import { loadRun } from './predict.js';
import { type RunConfig, readRunConfig } from './run-dir.js';

/** What a report of a run shows: the run's history, and the model's output on one split with its evaluation. */
export interface RunReportInput {
  runDir: string;
  config: RunConfig;
  /** Rows of `metrics.jsonl`. */
  history: readonly HistoryRow[];
  dataset: Dataset;
  /** Which split the samples come from, and its dataset indices. */
  splitName: EvaluationSplit;
  indices: readonly number[];
  /** The model's output on `indices` (same order). */
  predictions: DatasetPredictions;
  /** The evaluation of `predictions` (at the run's thresholds: `tuned`), as training or evaluate made it. */
  evaluation: Evaluation | undefined;
  thresholds: readonly number[];
  /** Steps behind the model. */
  step: number;
}

/** Where {@link writeRunReport} (and a finished training run) wrote the report. */
export interface RunReport {
  /** `RUN_DIR/report.html`. */
  htmlPath: string;
  /** The PNG charts under `RUN_DIR/charts/`. */
  charts: string[];
}

/** The report's samples: each image with its labels, probabilities, boxes and (boxes) the IoU of each class. */
function reportSamples(input: RunReportInput): ReportSample[] {
  const { dataset, indices, predictions } = input;
  const classes = dataset.vocabulary.length;
  const clamp = (p: number) => Math.min(1, Math.max(0, p));
  return indices.map((index, k) => {
    const trueBoxes = dataset.vocabulary.map((_, c) =>
      dataset.boxMask[index * classes + c]! >= 0.5
        ? orderedBox(dataset.boxes, (index * classes + c) * 4)
        : null,
    );
    const sample: ReportSample = {
      imagePath: join(dataset.root, dataset.images[index]!),
      labels: Array.from(dataset.labels.subarray(index * classes, (index + 1) * classes)),
      probabilities: Array.from(predictions.probabilities.subarray(k * classes, (k + 1) * classes), clamp),
      trueBoxes,
    };
    if (predictions.boxes) {
      const predicted = predictions.boxes.predicted;
      const boxes = dataset.vocabulary.map((_, c) => orderedBox(predicted, (k * classes + c) * 4));
      sample.predictedBoxes = boxes;
      sample.iou = trueBoxes.map((truth, c) => (truth ? boxIoU(boxes[c]!, truth) : null));
    }
    return sample;
  });
}

/** The summary table of the report. */
function reportSummary(input: RunReportInput, imagesThere: boolean): Record<string, number | string> {
  const { config, evaluation, splitName } = input;
  const summary: Record<string, number | string> = {
    model: config.model,
    backend: config.backend,
    steps: input.step,
    'image size': `${config.width}x${config.height}`,
    [`${splitName} images`]: input.indices.length,
  };
  if (evaluation) {
    summary[`${splitName} loss`] = evaluation.loss ?? Number.NaN;
    summary['mean average precision'] = evaluation.meanAveragePrecision;
    summary['exact match (0.5)'] = evaluation.fixed.exactMatch;
    summary['macro F1 (0.5)'] = evaluation.fixed.macroF1;
    if (evaluation.tuned) {
      summary['exact match (tuned)'] = evaluation.tuned.exactMatch;
      summary['macro F1 (tuned)'] = evaluation.tuned.macroF1;
    }
    const box = (evaluation.tuned ?? evaluation.fixed).box;
    if (box) {
      summary['boxes of correct detections'] = box.count;
      summary['mean IoU'] = box.count > 0 ? box.meanIoU : 'n/a';
      summary['IoU >= 0.5'] = box.count > 0 ? box.shareIoU50 : 'n/a';
    }
  }
  if (!imagesThere && input.indices.length > 0)
    summary['image grid'] = `left out: images not found under ${input.dataset.root}`;
  return summary;
}

/**
 * @internal Writes `report.html` and `charts/` of a run into its directory: the evaluation, curves and IoUs are
 * the trainer's (metrics.ts), the report only draws them.
 */
export async function writeReportOf(input: RunReportInput): Promise<RunReport> {
  const { dataset, predictions, thresholds, evaluation } = input;
  const samples = reportSamples(input);
  // The image grid needs the files; a dataset built in memory (or moved since) still gets the curves.
  const imagesThere = samples.every((sample) => existsSync(sample.imagePath));
  const clamp = (p: number) => Math.min(1, Math.max(0, p));
  const data: ReportData = {
    title: basename(resolve(input.runDir)),
    classes: [...dataset.vocabulary],
    history: input.history
      .filter((row) => row.event === 'step')
      .map((row) => ({ step: row.step, loss: row.loss })),
    validation: input.history
      .filter((row) => row.event === 'validation')
      .map((row) => ({ step: row.step, loss: row.loss, exactMatch: row.exactMatch, macroF1: row.macroF1 })),
    samples,
    thresholds: thresholds.map(clamp),
    summary: reportSummary(input, imagesThere),
  };
  if (evaluation) data.metrics = (evaluation.tuned ?? evaluation.fixed).classes;
  if (samples.length > 0) {
    data.curves = precisionRecallCurves(
      predictions.probabilities,
      predictions.labels,
      dataset.vocabulary.length,
    );
  }
  return writeReport(input.runDir, data, imagesThere ? {} : { maxSamples: 0 });
}

/** Options of {@link writeRunReport}. */
export interface WriteRunReportOptions {
  /**
   * The run's dataset: a loaded `Dataset` (at the run's image size, with the run's vocabulary), or the path of its
   * folder or `labels.json` (for a dataset that moved). @default the dataset recorded in `config.json`
   */
  dataset?: Dataset | string;
  /** Which checkpoint predicts the samples. @default 'best' (the one training reported) */
  checkpoint?: CheckpointKind;
  /** Images per forward pass. @default 32 */
  batchSize?: number;
}

/**
 * Regenerates `report.html` and `charts/*.png` of a run directory (what `litter report RUN` does): loads the run's
 * checkpoint, the dataset recorded in `config.json`, predicts the validation split (the test split when there is
 * no validation), and draws the report with the run's history and tuned thresholds.
 *
 * The TensorFlow.js backend must be set up before (`initBackend` from `@litter/model`).
 *
 * @throws {TrainerError} `run-not-found` (no run there), `invalid-options` (the dataset does not match the run);
 *   `DatasetError` when the dataset cannot be loaded; `ReportError` when the report cannot be written
 * @example
 * await initBackend({ backend: 'wasm' });
 * const { htmlPath } = await writeRunReport('runs/2024-05-01T12-30-05');
 */
export async function writeRunReport(
  runDir: string,
  options: WriteRunReportOptions = {},
): Promise<RunReport> {
  const root = resolve(runDir);
  const config = await readRunConfig(root);
  const run = await loadRun(root, options.checkpoint ? { checkpoint: options.checkpoint } : {});
  try {
    let dataset: Dataset;
    if (typeof options.dataset === 'object') dataset = options.dataset;
    else {
      const path = options.dataset ?? config.dataset.labelsPath;
      if (options.dataset === undefined && !(await exists(path))) {
        throw new TrainerError(
          'invalid-options',
          `the run's dataset ${path} is not there any more: give its new place (litter report RUN --dataset DIR)`,
        );
      }
      dataset = await loadDataset(path, { width: run.width, height: run.height, vocabulary: run.vocabulary });
    }
    const problems: string[] = [];
    if (dataset.size !== config.dataset.size)
      problems.push(`${dataset.size} images, the run's had ${config.dataset.size}`);
    if (dataset.width !== run.width || dataset.height !== run.height) {
      problems.push(
        `images of ${dataset.width}x${dataset.height}, the model takes ${run.width}x${run.height}`,
      );
    }
    if (JSON.stringify(dataset.vocabulary) !== JSON.stringify(run.vocabulary)) {
      problems.push(`classes ${dataset.vocabulary.join(', ')}, the run's are ${run.vocabulary.join(', ')}`);
    }
    if (problems.length > 0) {
      throw new TrainerError(
        'invalid-options',
        `the dataset at ${dataset.root} is not the one run ${root} was trained on (${problems.join('; ')}): give ` +
          "the run's dataset",
      );
    }
    const splitName = config.split.validation.length > 0 ? 'validation' : 'test';
    const indices = config.split[splitName];
    const predictions = predictDataset(run.model, dataset, indices, {
      batchSize: options.batchSize ?? 32,
      testTimeFlip: run.testTimeFlip,
    });
    const evaluation =
      indices.length > 0 ? evaluatePredictions(predictions, dataset.vocabulary, run.thresholds) : undefined;
    return await writeReportOf({
      runDir: root,
      config,
      history: await readHistory(root),
      dataset,
      splitName,
      indices,
      predictions,
      evaluation,
      thresholds: run.thresholds,
      step: run.step ?? config.steps ?? 0,
    });
  } finally {
    run.model.dispose();
  }
}
