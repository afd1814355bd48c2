import sharp from 'sharp';
import * as vega from 'vega';
import { shortLabel } from './_util.js';
import { ReportError } from './errors.js';

/** A rendered chart: its SVG (for the HTML) and a file name for its PNG under `charts/`. */
export interface Chart {
  /** File name stem, e.g. `loss` -> `charts/loss.png`. */
  name: string;
  /** Heading in the report. */
  title: string;
  svg: string;
}

const WIDTH = 420;
const HEIGHT = 260;
const MAX_LINE_POINTS = 2000;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';

/** The parts every chart shares: white background, one font, room for long legend labels. */
function baseSpec(title: string): Partial<vega.Spec> {
  return {
    width: WIDTH,
    height: HEIGHT,
    padding: 8,
    background: 'white',
    title: { text: title, font: FONT, fontSize: 14, anchor: 'start' },
    config: {
      axis: { labelFont: FONT, titleFont: FONT, grid: true, gridOpacity: 0.35 },
      legend: { labelFont: FONT, titleFont: FONT, labelLimit: 320, titleLimit: 320 },
    },
  } as Partial<vega.Spec>;
}

/** The longest legend label, in characters (320 pixels of legend hold about 50). */
const LABEL_CHARS = 80;

/** Each name -> its legend label: itself, or its start and `...` when longer than LABEL_CHARS, kept distinct. */
function chartLabels(names: readonly string[]): Map<string, string> {
  const labels = new Map<string, string>();
  const used = new Set<string>();
  names.forEach((name, index) => {
    let label = shortLabel(name, LABEL_CHARS);
    if (used.has(label)) label = `${label.slice(0, LABEL_CHARS - 8)}... #${index + 1}`;
    used.add(label);
    labels.set(name, label);
  });
  return labels;
}

/** One line per series, `x` and `y` fields, series coloured and named in a legend. */
function lineChartSpec(options: {
  title: string;
  rows: { x: number; y: number; series: string; order: number }[];
  series: string[];
  xTitle: string;
  yTitle: string;
  xDomain?: [number, number];
  yDomain?: [number, number];
  interpolate?: 'linear' | 'step-before';
  points?: string[];
  legendTitle: string;
}): vega.Spec {
  const { xDomain, yDomain, interpolate = 'linear' } = options;
  // Legend labels at most LABEL_CHARS long (see shortLabel), distinct.
  const label = chartLabels(options.series);
  const series = options.series.map((name) => label.get(name)!);
  const rows = options.rows.map((row) => ({ ...row, series: label.get(row.series) ?? row.series }));
  const points = (options.points ?? []).map((name) => label.get(name) ?? name);
  return {
    ...baseSpec(options.title),
    data: [
      { name: 'rows', values: rows },
      {
        name: 'pointRows',
        source: 'rows',
        transform: [{ type: 'filter', expr: `indexof(${JSON.stringify(points)}, datum.series) >= 0` }],
      },
    ],
    scales: [
      {
        name: 'x',
        type: 'linear',
        domain: xDomain ?? { data: 'rows', field: 'x' },
        range: 'width',
        nice: !xDomain,
        zero: false,
      },
      {
        name: 'y',
        type: 'linear',
        domain: yDomain ?? { data: 'rows', field: 'y' },
        range: 'height',
        nice: !yDomain,
        zero: !!yDomain,
      },
      {
        name: 'color',
        type: 'ordinal',
        domain: series,
        // 10 colours tell up to 10 classes apart; beyond that the 20-colour scheme repeats later.
        range: series.length > 10 ? { scheme: 'category20' } : 'category',
      },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: options.xTitle, labelOverlap: true },
      { orient: 'left', scale: 'y', title: options.yTitle },
    ],
    legends: [
      {
        stroke: 'color',
        title: options.legendTitle,
        symbolType: 'stroke',
        symbolStrokeWidth: 3,
        orient: 'right',
      },
    ],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'seriesRows', data: 'rows', groupby: 'series' } },
        marks: [
          {
            type: 'line',
            from: { data: 'seriesRows' },
            sort: { field: 'datum.order' },
            encode: {
              enter: {
                x: { scale: 'x', field: 'x' },
                y: { scale: 'y', field: 'y' },
                stroke: { scale: 'color', field: 'series' },
                strokeWidth: { value: 2 },
                interpolate: { value: interpolate },
              },
            },
          },
        ],
      },
      {
        type: 'symbol',
        from: { data: 'pointRows' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'x' },
            y: { scale: 'y', field: 'y' },
            fill: { scale: 'color', field: 'series' },
            size: { value: 36 },
          },
        },
      },
    ],
  } as vega.Spec;
}

/** Training loss (line) and validation loss (line with points) against step. */
export function lossChartSpec(
  history: readonly { step: number; loss: number }[],
  validation: readonly { step: number; loss?: number }[],
): vega.Spec | undefined {
  const rows: { x: number; y: number; series: string; order: number }[] = [];
  // A line of more points than the plot has pixels shows nothing more and bloats the SVG: keep every k-th.
  const every = Math.max(1, Math.ceil(history.length / MAX_LINE_POINTS));
  history.forEach(({ step, loss }, i) => {
    if (Number.isFinite(loss) && (i % every === 0 || i === history.length - 1)) {
      rows.push({ x: step, y: loss, series: 'training', order: step });
    }
  });
  for (const { step, loss } of validation) {
    if (loss !== undefined && Number.isFinite(loss)) {
      rows.push({ x: step, y: loss, series: 'validation', order: step });
    }
  }
  if (rows.length === 0) return undefined;
  return lineChartSpec({
    title: 'Loss',
    rows,
    series: ['training', 'validation'],
    xTitle: 'step',
    yTitle: 'loss (binary cross-entropy)',
    points: ['validation'],
    legendTitle: 'loss',
  });
}

/** Validation exact match and macro F1 against step, on [0, 1]. */
export function validationMetricsChartSpec(
  validation: readonly { step: number; exactMatch?: number; macroF1?: number }[],
): vega.Spec | undefined {
  const rows: { x: number; y: number; series: string; order: number }[] = [];
  for (const { step, exactMatch, macroF1 } of validation) {
    if (exactMatch !== undefined && Number.isFinite(exactMatch)) {
      rows.push({ x: step, y: exactMatch, series: 'exact match', order: step });
    }
    if (macroF1 !== undefined && Number.isFinite(macroF1)) {
      rows.push({ x: step, y: macroF1, series: 'macro F1', order: step });
    }
  }
  if (rows.length === 0) return undefined;
  return lineChartSpec({
    title: 'Validation metrics',
    rows,
    series: ['exact match', 'macro F1'],
    xTitle: 'step',
    yTitle: 'score',
    yDomain: [0, 1],
    points: ['exact match', 'macro F1'],
    legendTitle: 'metric',
  });
}

/**
 * Precision against recall, one step line per class, the class's average precision in its legend label.
 * Each curve starts at (recall 0, precision 1) and steps as the AP sum does, so the area under a line is its AP.
 */
export function precisionRecallChartSpec(
  curves: readonly { name: string; points: readonly { recall: number; precision: number }[] }[],
): vega.Spec | undefined {
  const plotted = curves.filter((c) => c.points.length > 0);
  if (plotted.length === 0) return undefined;
  const rows = plotted.flatMap(({ name, points }) => [
    { x: 0, y: 1, series: name, order: 0 },
    ...points.map((p, i) => ({ x: p.recall, y: p.precision, series: name, order: i + 1 })),
  ]);
  return lineChartSpec({
    title: 'Precision-recall per class (validation)',
    rows,
    series: plotted.map((c) => c.name),
    xTitle: 'recall',
    yTitle: 'precision',
    xDomain: [0, 1],
    yDomain: [0, 1.02],
    interpolate: 'step-before',
    legendTitle: 'class (average precision)',
  });
}

/** Renders a vega spec to SVG in Node: renderer 'none' needs no canvas (text widths are estimated). */
export async function renderSvg(spec: vega.Spec): Promise<string> {
  let view: vega.View | undefined;
  try {
    view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Error });
    return await view.toSVG();
  } catch (cause) {
    throw new ReportError('render-failed', `vega could not render a chart: ${(cause as Error).message}`, {
      cause,
    });
  } finally {
    view?.finalize();
  }
}

/** SVG to PNG at twice the SVG's pixel size (sharp/librsvg), so the PNG stays sharp on high-DPI screens. */
export async function svgToPng(svg: string): Promise<Buffer> {
  try {
    return await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
  } catch (cause) {
    throw new ReportError(
      'render-failed',
      `sharp could not convert a chart to PNG: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/**
 * Makes a vega SVG fit to inline into HTML next to other charts: ids (clip paths) get a per-chart prefix so two
 * charts never share one, the fixed pixel size becomes responsive, and the XML namespace attributes go (HTML
 * does not need them, and the report then contains no `http://` at all).
 */
export function inlineSvg(svg: string, idPrefix: string): string {
  return svg
    .replace(/\s+xmlns(:xlink)?="[^"]*"/g, '')
    .replace(/\bid="([^"]+)"/g, `id="${idPrefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}-$1)`)
    .replace(/(xlink:)?href="#([^"]+)"/g, `href="#${idPrefix}-$2"`)
    .replace(/^<svg([^>]*?)\swidth="(\d+(?:\.\d+)?)"\s+height="(\d+(?:\.\d+)?)"/, (_, rest: string, w, h) => {
      return `<svg${rest} width="${w}" height="${h}" style="max-width:100%;height:auto"`;
    });
}

/**
 * Mean IoU of the correctly detected objects per class, one bar each (with a box head), with the object count
 * on the bar; classes without a correct detection get no bar. `undefined` when no class has a box figure.
 */
export function iouChartSpec(
  classes: readonly { name: string; box?: { count: number; meanIoU: number } }[],
): vega.Spec | undefined {
  if (!classes.some((c) => c.box && c.box.count > 0)) return undefined;
  const label = chartLabels(classes.map((c) => c.name));
  const rows = classes.map((c) => ({
    name: label.get(c.name)!,
    iou: c.box && c.box.count > 0 ? c.box.meanIoU : 0,
    text: c.box && c.box.count > 0 ? `${c.box.meanIoU.toFixed(2)} (${c.box.count})` : '-',
  }));
  return {
    ...baseSpec('Mean IoU of the correct detections per class'),
    data: [{ name: 'rows', values: rows }],
    scales: [
      { name: 'x', type: 'band', domain: { data: 'rows', field: 'name' }, range: 'width', padding: 0.2 },
      { name: 'y', type: 'linear', domain: [0, 1], range: 'height', zero: true },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'class', labelOverlap: true },
      { orient: 'left', scale: 'y', title: 'mean IoU' },
    ],
    marks: [
      {
        type: 'rect',
        from: { data: 'rows' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'name' },
            width: { scale: 'x', band: 1 },
            y: { scale: 'y', field: 'iou' },
            y2: { scale: 'y', value: 0 },
            fill: { value: '#4c78a8' },
          },
        },
      },
      {
        type: 'text',
        from: { data: 'rows' },
        encode: {
          enter: {
            x: { scale: 'x', field: 'name', band: 0.5 },
            y: { scale: 'y', field: 'iou', offset: -4 },
            align: { value: 'center' },
            baseline: { value: 'bottom' },
            text: { field: 'text' },
            font: { value: FONT },
          },
        },
      },
    ],
  } as vega.Spec;
}
