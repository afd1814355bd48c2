import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import {
  type Chart,
  inlineSvg,
  lossChartSpec,
  precisionRecallChartSpec,
  renderSvg,
  svgToPng,
  validationMetricsChartSpec,
} from './_charts.js';
import { renderHtml } from './_html.js';
import { boxIoU, escapeXml, writeFileAtomic } from './_util.js';
import {
  type AnnotatedImage,
  type AnnotationBox,
  PREDICTED_BOX_COLOR,
  renderAnnotatedImage,
  TRUE_BOX_COLOR,
} from './annotate.js';
import { ReportError } from './errors.js';
import { type PrecisionRecallCurve, precisionRecallCurve } from './precision-recall.js';

/** A box: `[x1, y1, x2, y2]` normalised to [0, 1], y DOWN (image rows); `null` where the class is absent. */
export type ReportBox = readonly number[] | null;

/** One validation image with the model's output. */
export interface ReportSample {
  /** Absolute path of the PNG or JPEG. */
  imagePath: string;
  /** Multi-hot ground truth, one value per class (1 visible, 0 not). */
  labels: readonly number[];
  /** Sigmoid probabilities, one per class, in [0, 1]. */
  probabilities: readonly number[];
  /** True box per class. */
  trueBoxes?: readonly ReportBox[];
  /** Predicted box per class (drawn where the class is predicted visible). */
  predictedBoxes?: readonly ReportBox[];
}

/** Everything the report shows, as plain data (no dependency on the trainer). */
export interface ReportData {
  /** Heading, e.g. the run directory's name. */
  title: string;
  /** Class names, in index order. */
  classes: readonly string[];
  /** Training loss against step. */
  history: readonly { step: number; loss: number }[];
  /** Validation loss and metrics against step. */
  validation: readonly { step: number; loss?: number; exactMatch?: number; macroF1?: number }[];
  /** Validation images with predictions: the precision-recall curves and the image grid come from these. */
  samples: readonly ReportSample[];
  /** Decision threshold per class. @default 0.5 for every class */
  thresholds?: readonly number[];
  /** Overall metrics for the summary table, e.g. `{ 'exact match': 0.93, backend: 'wasm' }`. */
  summary?: Readonly<Record<string, number | string>>;
}

/** Options of {@link writeReport}. */
export interface WriteReportOptions {
  /** How many images the grid shows (the worst mistakes). @default 24 */
  maxSamples?: number;
  /** Images per row of `charts/samples.png`. @default 4 */
  columns?: number;
  /** Longest side of a grid image in pixels; small images are scaled up by a whole factor to reach it. @default 288 */
  thumbnailSize?: number;
}

/** What {@link writeReport} wrote. */
export interface WriteReportResult {
  /** `runDir/report.html`. */
  htmlPath: string;
  /** The PNGs under `runDir/charts/`, in the order the report shows them. */
  charts: string[];
}

/** Every chart file name the report may write, so that a regenerated report removes the ones it no longer has. */
const CHART_NAMES = ['loss', 'validation-metrics', 'precision-recall', 'samples'] as const;

/**
 * Writes `runDir/report.html` (self-contained: charts as inline SVG, images as data: URIs, inline CSS, no
 * scripts, nothing fetched) and PNG versions of its charts under `runDir/charts/`: loss against step,
 * validation metrics against step, per-class precision-recall curves with average precision, and a grid of
 * validation images with predicted and true boxes, worst mistakes first (largest sum over classes of
 * |label - probability|).
 *
 * @throws {ReportError} `invalid-data` (inconsistent data, all problems listed), `image-unreadable`,
 *   `render-failed`, `write-failed`
 * @example
 * const { htmlPath } = await writeReport('runs/2024-05-01', {
 *   title: '2024-05-01', classes: ['Cube', 'Sphere'],
 *   history: [{ step: 100, loss: 0.4 }], validation: [{ step: 100, loss: 0.5, exactMatch: 0.6 }],
 *   samples: [{ imagePath: '/data/0-0y-0p.png', labels: [1, 0], probabilities: [0.8, 0.3] }],
 * });
 */
export async function writeReport(
  runDir: string,
  data: ReportData,
  options: WriteReportOptions = {},
): Promise<WriteReportResult> {
  const { maxSamples = 24, columns = 4, thumbnailSize = 288 } = options;
  const thresholds = checkReportData(data);
  const classCount = data.classes.length;

  const curves = data.classes.map((_, c) =>
    precisionRecallCurve(
      data.samples.map((s) => s.labels[c]!),
      data.samples.map((s) => s.probabilities[c]!),
    ),
  );
  const classRows = data.classes.map((name, c) =>
    classRow(name, c, curves[c]!, thresholds[c]!, data.samples),
  );

  const specs = [
    { name: 'loss', title: 'Loss', spec: lossChartSpec(data.history, data.validation) },
    {
      name: 'validation-metrics',
      title: 'Validation metrics',
      spec: validationMetricsChartSpec(data.validation),
    },
    {
      name: 'precision-recall',
      title: 'Precision-recall per class',
      spec: precisionRecallChartSpec(
        data.classes.map((name, c) => ({
          name: `${name} (AP ${curves[c]!.averagePrecision.toFixed(3)})`,
          points: curves[c]!.points,
        })),
      ),
    },
  ];
  const charts: Chart[] = [];
  for (const { name, title, spec } of specs) {
    if (spec) charts.push({ name, title, svg: await renderSvg(spec) });
  }

  const ranked = rankSamples(data.samples).slice(0, Math.max(0, maxSamples));
  const tiles: Tile[] = [];
  for (const { sample, index, error } of ranked) {
    const image = await renderAnnotatedImage(
      sample.imagePath,
      sampleBoxes(sample, data.classes, thresholds),
      {
        minSize: thumbnailSize,
        maxSize: thumbnailSize,
      },
    );
    tiles.push({ sample, index, error, image, outcomes: outcomes(sample, data.classes, thresholds) });
  }

  const chartsDir = join(runDir, 'charts');
  const written: string[] = [];
  for (const chart of charts) {
    const path = join(chartsDir, `${chart.name}.png`);
    await writeFileAtomic(path, await svgToPng(chart.svg));
    written.push(path);
  }
  if (tiles.length > 0) {
    const path = join(chartsDir, 'samples.png');
    await writeFileAtomic(path, await gridPng(tiles, Math.max(1, columns)));
    written.push(path);
  }
  for (const name of CHART_NAMES) {
    const path = join(chartsDir, `${name}.png`);
    if (!written.includes(path)) await rm(path, { force: true });
  }

  const htmlPath = join(runDir, 'report.html');
  const html = renderHtml({
    title: data.title,
    classCount,
    sampleCount: data.samples.length,
    summary: data.summary ?? {},
    charts: charts.map((c) => ({ name: c.name, title: c.title, svg: inlineSvg(c.svg, `chart-${c.name}`) })),
    classRows,
    tiles: tiles.map((t, rank) => ({
      rank: rank + 1,
      name: basename(t.sample.imagePath),
      error: t.error,
      dataUri: `data:image/${t.image.format};base64,${t.image.data.toString('base64')}`,
      width: t.image.width,
      height: t.image.height,
      outcomes: t.outcomes,
    })),
    colors: { predicted: PREDICTED_BOX_COLOR, true: TRUE_BOX_COLOR },
  });
  await writeFileAtomic(htmlPath, html);
  return { htmlPath, charts: written };
}

/** Per class: average precision, and precision/recall/F1 at the class's threshold, over the samples. */
export interface ClassRow {
  name: string;
  threshold: number;
  positives: number;
  averagePrecision: number;
  precision: number;
  recall: number;
  f1: number;
  meanIoU: number;
}

function classRow(
  name: string,
  c: number,
  curve: PrecisionRecallCurve,
  threshold: number,
  samples: readonly ReportSample[],
): ClassRow {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let iouSum = 0;
  let iouCount = 0;
  for (const s of samples) {
    const truth = s.labels[c]! >= 0.5;
    const predicted = s.probabilities[c]! >= threshold;
    if (truth && predicted) tp++;
    else if (predicted) fp++;
    else if (truth) fn++;
    const t = s.trueBoxes?.[c];
    const p = s.predictedBoxes?.[c];
    if (truth && predicted && t && p) {
      iouSum += boxIoU(t, p);
      iouCount++;
    }
  }
  const precision = tp + fp > 0 ? tp / (tp + fp) : Number.NaN;
  const recall = tp + fn > 0 ? tp / (tp + fn) : Number.NaN;
  const f1 = tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : Number.NaN;
  return {
    name,
    threshold,
    positives: curve.positives,
    averagePrecision: curve.averagePrecision,
    precision,
    recall,
    f1,
    meanIoU: iouCount > 0 ? iouSum / iouCount : Number.NaN,
  };
}

/** How wrong the model is on one image: sum over classes of |label - probability| (0 = perfect, C = all wrong). */
export function sampleError(sample: Pick<ReportSample, 'labels' | 'probabilities'>): number {
  let error = 0;
  for (let c = 0; c < sample.labels.length; c++)
    error += Math.abs(sample.labels[c]! - sample.probabilities[c]!);
  return error;
}

/** Samples with their error, worst first; ties keep the input order. */
export function rankSamples<S extends Pick<ReportSample, 'labels' | 'probabilities'>>(
  samples: readonly S[],
): { sample: S; index: number; error: number }[] {
  return samples
    .map((sample, index) => ({ sample, index, error: sampleError(sample) }))
    .sort((a, b) => b.error - a.error || a.index - b.index);
}

/** What the model got right or wrong per class on one image (true negatives left out). */
export interface Outcome {
  name: string;
  probability: number;
  result: 'TP' | 'FP' | 'FN';
  iou?: number;
}

function outcomes(
  sample: ReportSample,
  classes: readonly string[],
  thresholds: readonly number[],
): Outcome[] {
  const result: Outcome[] = [];
  classes.forEach((name, c) => {
    const truth = sample.labels[c]! >= 0.5;
    const probability = sample.probabilities[c]!;
    const predicted = probability >= thresholds[c]!;
    if (!truth && !predicted) return;
    const outcome: Outcome = {
      name,
      probability,
      result: truth && predicted ? 'TP' : predicted ? 'FP' : 'FN',
    };
    const t = sample.trueBoxes?.[c];
    const p = sample.predictedBoxes?.[c];
    if (outcome.result === 'TP' && t && p) outcome.iou = boxIoU(t, p);
    result.push(outcome);
  });
  return result;
}

/** True boxes (dashed, label below) for visible classes, predicted boxes for classes predicted visible. */
function sampleBoxes(sample: ReportSample, classes: readonly string[], thresholds: readonly number[]) {
  const boxes: AnnotationBox[] = [];
  classes.forEach((name, c) => {
    const box = sample.trueBoxes?.[c];
    if (box && sample.labels[c]! >= 0.5) {
      boxes.push({ box, label: name, color: TRUE_BOX_COLOR, dashed: true, labelBelow: true });
    }
  });
  classes.forEach((name, c) => {
    const box = sample.predictedBoxes?.[c];
    const probability = sample.probabilities[c]!;
    if (box && probability >= thresholds[c]!) {
      boxes.push({ box, label: `${name} ${probability.toFixed(2)}`, color: PREDICTED_BOX_COLOR });
    }
  });
  return boxes;
}

interface Tile {
  sample: ReportSample;
  index: number;
  error: number;
  image: AnnotatedImage;
  outcomes: Outcome[];
}

/** The image grid as one PNG: annotated images with a two-line caption each. */
async function gridPng(tiles: readonly Tile[], columns: number): Promise<Buffer> {
  const gap = 12;
  const captionHeight = 40;
  const cellWidth = Math.max(...tiles.map((t) => t.image.width), 200);
  const cellHeight = Math.max(...tiles.map((t) => t.image.height)) + captionHeight;
  const cols = Math.min(columns, tiles.length);
  const rows = Math.ceil(tiles.length / cols);
  const width = cols * cellWidth + (cols + 1) * gap;
  const height = rows * cellHeight + (rows + 1) * gap;
  const captions: string[] = [];
  const layers: OverlayOptions[] = tiles.map((tile, i) => {
    const left = gap + (i % cols) * (cellWidth + gap);
    const top = gap + Math.floor(i / cols) * (cellHeight + gap);
    const textY = top + tile.image.height + 15;
    const mistakes = tile.outcomes
      .filter((o) => o.result !== 'TP')
      .map((o) => `${o.result} ${o.name} ${o.probability.toFixed(2)}`)
      .join(', ');
    captions.push(
      `<text x="${left}" y="${textY}" font-size="12" font-weight="bold">#${i + 1} ${escapeXml(basename(tile.sample.imagePath))} · error ${tile.error.toFixed(2)}</text>`,
      `<text x="${left}" y="${textY + 16}" font-size="11" fill="${mistakes ? '#b00020' : '#1b5e20'}">${escapeXml(mistakes || 'all classes right')}</text>`,
    );
    return { input: tile.image.data, left, top };
  });
  const captionSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${captions.join('')}</g></svg>`;
  layers.push({ input: Buffer.from(captionSvg), left: 0, top: 0 });
  try {
    return await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
      .composite(layers)
      .png()
      .toBuffer();
  } catch (cause) {
    throw new ReportError(
      'render-failed',
      `sharp could not compose the image grid: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/** Checks the whole of `data`, lists every problem found (up to 20), returns the thresholds to use. */
function checkReportData(data: ReportData): number[] {
  const problems: string[] = [];
  const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (typeof data?.title !== 'string') problems.push('title must be a string');
  const classes = Array.isArray(data?.classes) ? data.classes : [];
  if (classes.length === 0) problems.push('classes must be a non-empty array of class names');
  if (new Set(classes).size !== classes.length)
    problems.push(`classes has duplicates: ${classes.join(', ')}`);
  const C = classes.length;
  if (!Array.isArray(data?.history)) problems.push('history must be an array (may be empty)');
  else {
    data.history.forEach((h, i) => {
      if (!isNumber(h?.step) || typeof h.loss !== 'number') {
        problems.push(`history[${i}] is ${JSON.stringify(h)}; expected { step, loss } numbers`);
      }
    });
  }
  if (!Array.isArray(data?.validation)) problems.push('validation must be an array (may be empty)');
  else {
    data.validation.forEach((v, i) => {
      if (!isNumber(v?.step)) problems.push(`validation[${i}].step is ${v?.step}; expected a number`);
    });
  }
  const checkVector = (value: unknown, what: string, min: number, max: number) => {
    if (!Array.isArray(value) || value.length !== C) {
      problems.push(
        `${what} has ${Array.isArray(value) ? value.length : 'no'} values; expected ${C}, one per class`,
      );
    } else if (!value.every((v) => isNumber(v) && v >= min && v <= max)) {
      problems.push(`${what} is ${JSON.stringify(value)}; expected numbers in [${min}, ${max}]`);
    }
  };
  const checkBoxes = (value: unknown, what: string) => {
    if (value === undefined) return;
    if (!Array.isArray(value) || value.length !== C) {
      problems.push(`${what} must have ${C} entries, one per class (null where absent)`);
      return;
    }
    value.forEach((box, c) => {
      if (box !== null && !(Array.isArray(box) && box.length === 4 && box.every(isNumber))) {
        problems.push(`${what}[${c}] is ${JSON.stringify(box)}; expected [x1, y1, x2, y2] or null`);
      }
    });
  };
  if (!Array.isArray(data?.samples)) problems.push('samples must be an array (may be empty)');
  else {
    data.samples.forEach((s, i) => {
      if (typeof s?.imagePath !== 'string' || s.imagePath === '') {
        problems.push(`samples[${i}].imagePath must be the path of an image`);
      }
      checkVector(s?.labels, `samples[${i}].labels`, 0, 1);
      checkVector(s?.probabilities, `samples[${i}].probabilities`, 0, 1);
      checkBoxes(s?.trueBoxes, `samples[${i}].trueBoxes`);
      checkBoxes(s?.predictedBoxes, `samples[${i}].predictedBoxes`);
    });
  }
  if (data?.thresholds !== undefined) checkVector(data.thresholds, 'thresholds', 0, 1);
  if (problems.length > 0) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    throw new ReportError(
      'invalid-data',
      `the report data has ${problems.length} problem(s); fix what builds the ReportData:\n  ${shown.join('\n  ')}${more}`,
    );
  }
  return data.thresholds ? [...data.thresholds] : classes.map(() => 0.5);
}
