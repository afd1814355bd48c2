import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import {
  type Chart,
  inlineSvg,
  iouChartSpec,
  lossChartSpec,
  precisionRecallChartSpec,
  renderSvg,
  svgToPng,
  validationMetricsChartSpec,
} from './_charts.js';
import { renderHtml } from './_html.js';
import { escapeXml, shortLabel, writeReportFile } from './_util.js';
import {
  type AnnotatedImage,
  type AnnotationBox,
  PREDICTED_BOX_COLOR,
  renderAnnotatedImage,
  TRUE_BOX_COLOR,
} from './annotate.js';
import { ReportError } from './errors.js';
import type { Outcome, ReportData, ReportSample } from './types.js';

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
const CHART_NAMES = ['loss', 'validation-metrics', 'precision-recall', 'iou', 'samples'] as const;

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
      spec:
        data.curves && data.samples.length > 0
          ? precisionRecallChartSpec(
              data.classes.map((name, c) => ({
                name: `${name} (AP ${data.curves![c]!.averagePrecision.toFixed(3)})`,
                points: data.curves![c]!.points,
              })),
            )
          : undefined,
    },
    {
      name: 'iou',
      title: 'Mean IoU per class',
      spec: data.metrics && data.samples.length > 0 ? iouChartSpec(data.metrics) : undefined,
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
    await writeReportFile(path, await svgToPng(chart.svg));
    written.push(path);
  }
  if (tiles.length > 0) {
    const path = join(chartsDir, 'samples.png');
    await writeReportFile(path, await gridPng(tiles, Math.max(1, columns)));
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
    classRows: data.metrics ? [...data.metrics] : [],
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
  await writeReportFile(htmlPath, html);
  return { htmlPath, charts: written };
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
    const iou = sample.iou?.[c];
    if (outcome.result === 'TP' && typeof iou === 'number') outcome.iou = iou;
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
      `<text x="${left}" y="${textY}" font-size="12" font-weight="bold">#${i + 1} ${escapeXml(shortLabel(basename(tile.sample.imagePath)))} · error ${tile.error.toFixed(2)}</text>`,
      `<text x="${left}" y="${textY + 16}" font-size="11" fill="${mistakes ? '#b00020' : '#1b5e20'}">${escapeXml(shortLabel(mistakes || 'all classes right', 160))}</text>`,
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
  const checkPerClass = (value: unknown, what: string) => {
    if (value !== undefined && (!Array.isArray(value) || value.length !== C)) {
      problems.push(
        `${what} has ${Array.isArray(value) ? value.length : 'no'} entries; expected ${C}, one per class`,
      );
    }
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
      checkPerClass(s?.iou, `samples[${i}].iou`);
    });
  }
  if (data?.thresholds !== undefined) checkVector(data.thresholds, 'thresholds', 0, 1);
  checkPerClass(data?.metrics, 'metrics');
  checkPerClass(data?.curves, 'curves');
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
