import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type Dataset, loadDataset } from '@litter/dataset';
import { type ReportData, type ReportSample, writeReport } from '@litter/report';
import { type HistoryRow, readHistory } from './_history.js';
import { exists, readJson } from './_io.js';
import { TrainerError } from './errors.js';
import { type DatasetPredictions, predictDataset } from './evaluate.js';
import { computeEvaluation } from './metrics.js';
import { loadRun } from './run.js';
import type { RunConfig } from './train.js';

/** What a report of a run shows: the run's history, and the model's output on one split. */
export interface RunReportInput {
  runDir: string;
  config: RunConfig;
  /** Rows of `metrics.jsonl`. */
  history: readonly HistoryRow[];
  dataset: Dataset;
  /** Which split the samples come from, and its dataset indices. */
  splitName: 'validation' | 'test';
  indices: readonly number[];
  /** The model's output on `indices` (same order). */
  predictions: DatasetPredictions;
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

/** A box as the report takes it: corners ordered (a box head's outputs are not), `null` where there is none. */
function orderedBox(values: ArrayLike<number>, offset: number): number[] {
  const [x1, y1, x2, y2] = [values[offset]!, values[offset + 1]!, values[offset + 2]!, values[offset + 3]!];
  return [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];
}

/** @internal Builds the report data of a run and writes `report.html` and `charts/` into the run directory. */
export async function writeReportOf(input: RunReportInput): Promise<RunReport> {
  const { dataset, indices, predictions, thresholds, config } = input;
  const classes = dataset.vocabulary.length;
  const clamp = (p: number) => Math.min(1, Math.max(0, p));
  const samples: ReportSample[] = indices.map((index, k) => {
    const sample: ReportSample = {
      imagePath: join(dataset.root, dataset.images[index]!),
      labels: Array.from(dataset.labels.subarray(index * classes, (index + 1) * classes)),
      probabilities: Array.from(predictions.probabilities.subarray(k * classes, (k + 1) * classes), clamp),
      trueBoxes: dataset.vocabulary.map((_, c) =>
        dataset.boxMask[index * classes + c]! >= 0.5
          ? orderedBox(dataset.boxes, (index * classes + c) * 4)
          : null,
      ),
    };
    if (predictions.boxes) {
      const predicted = predictions.boxes.predicted;
      sample.predictedBoxes = dataset.vocabulary.map((_, c) => orderedBox(predicted, (k * classes + c) * 4));
    }
    return sample;
  });
  // The image grid needs the files; a dataset built in memory (or moved since) still gets the curves.
  const imagesThere = samples.every((sample) => existsSync(sample.imagePath));

  const evaluation =
    indices.length > 0
      ? computeEvaluation(predictions.probabilities, predictions.labels, dataset.vocabulary, {
          loss: predictions.loss,
          thresholds,
          ...(predictions.boxes ? { boxes: predictions.boxes } : {}),
        })
      : undefined;
  const summary: Record<string, number | string> = {
    model: config.model,
    backend: config.backend,
    steps: input.step,
    'image size': `${config.width}x${config.height}`,
    [`${input.splitName} images`]: indices.length,
  };
  if (evaluation) {
    summary[`${input.splitName} loss`] = evaluation.loss ?? Number.NaN;
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
  if (!imagesThere && samples.length > 0)
    summary['image grid'] = `left out: images not found under ${dataset.root}`;

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
    summary,
  };
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
  checkpoint?: 'best' | 'last';
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
  if (!(await exists(join(root, 'config.json')))) {
    throw new TrainerError(
      'run-not-found',
      `${root} is not a run directory (no config.json): give the --out folder of \`litter train\``,
    );
  }
  const config = await readJson<RunConfig>(join(root, 'config.json'), 'checkpoint-corrupt');
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
    const predictions = predictDataset(run.model, dataset, indices, options.batchSize ?? 32);
    return await writeReportOf({
      runDir: root,
      config,
      history: await readHistory(root),
      dataset,
      splitName,
      indices,
      predictions,
      thresholds: run.thresholds,
      step: run.step ?? config.steps,
    });
  } finally {
    run.model.dispose();
  }
}
