import { escapeXml as esc, formatNumber } from './_util.js';
import type { Outcome, ReportClassMetrics } from './types.js';

export interface HtmlInput {
  title: string;
  classCount: number;
  sampleCount: number;
  summary: Readonly<Record<string, number | string>>;
  /** Inline SVG, already made safe to put next to others (see `inlineSvg`). */
  charts: { name: string; title: string; svg: string }[];
  /** The trainer's per-class figures, shown as they are. */
  classRows: ReportClassMetrics[];
  tiles: {
    rank: number;
    name: string;
    error: number;
    dataUri: string;
    width: number;
    height: number;
    outcomes: Outcome[];
  }[];
  colors: { predicted: string; true: string };
}

// The page loads nothing: the policy makes any stray external reference fail loudly (a console error in a
// browser) instead of quietly phoning out. Inline SVG needs no policy; images are data: URIs.
const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; margin: 0 auto; padding: 1.5rem; max-width: 1320px; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; word-break: break-all; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; border-bottom: 1px solid #ddd; padding-bottom: .25rem; }
.muted { color: #666; }
table { border-collapse: collapse; background: #fff; }
th, td { padding: .3rem .7rem; border: 1px solid #e0e0e0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: .5rem; }
figure.chart svg { display: block; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .75rem; }
figure.sample img { display: block; width: 100%; height: auto; }
figcaption { font-size: 12px; margin-top: .35rem; }
.outcomes { margin: .2rem 0 0; padding: 0; list-style: none; }
.TP { color: #1b5e20; } .FP, .FN { color: #b00020; font-weight: 600; }
.swatch { display: inline-block; width: 1.6em; height: .8em; vertical-align: middle; border: 2px solid; margin-right: .3em; }
`;

/** The whole report page. Every string from the data is escaped. */
export function renderHtml(input: HtmlInput): string {
  const summaryRows = Object.entries(input.summary)
    .map(
      ([key, value]) =>
        `<tr><th scope="row">${esc(key)}</th><td class="n">${esc(typeof value === 'number' ? formatNumber(value) : value)}</td></tr>`,
    )
    .join('\n');
  const summary = summaryRows
    ? `<section id="summary"><h2>Summary</h2><table>${summaryRows}</table></section>`
    : '';

  const charts = input.charts.length
    ? `<div class="charts">${input.charts
        .map(
          (c) =>
            `<figure class="chart" id="chart-${esc(c.name)}" data-chart="${esc(c.name)}" aria-label="${esc(c.title)}">${c.svg}<figcaption class="muted">charts/${esc(c.name)}.png</figcaption></figure>`,
        )
        .join('\n')}</div>`
    : '<p class="muted">No training history, validation results or samples: nothing to chart.</p>';

  const classTable =
    input.sampleCount && input.classRows.length > 0
      ? `<section id="classes"><h2>Per class (validation, ${input.sampleCount} images)</h2><table>
<thead><tr><th>class</th><th>positives</th><th>average precision</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>mean IoU (correct detections)</th></tr></thead>
<tbody>${input.classRows
          .map(
            (r) =>
              `<tr><th scope="row">${esc(r.name)}</th>${[
                r.support,
                r.averagePrecision,
                r.threshold,
                r.precision,
                r.recall,
                r.f1,
                r.box && r.box.count > 0 ? r.box.meanIoU : Number.NaN,
              ]
                .map((v) => `<td class="n">${formatNumber(v)}</td>`)
                .join('')}</tr>`,
          )
          .join('\n')}</tbody></table></section>`
      : '';

  const tiles = input.tiles
    .map((t) => {
      const outcomes = t.outcomes
        .map(
          (o) =>
            `<li class="${o.result}">${o.result} ${esc(o.name)} p=${o.probability.toFixed(2)}${o.iou === undefined ? '' : ` IoU ${o.iou.toFixed(2)}`}</li>`,
        )
        .join('');
      return `<figure class="sample" data-rank="${t.rank}"><img src="${t.dataUri}" width="${t.width}" height="${t.height}" alt="${esc(t.name)} with predicted and true boxes"><figcaption><b>#${t.rank} ${esc(t.name)}</b> <span class="muted">error ${t.error.toFixed(2)}</span><ul class="outcomes">${outcomes || '<li class="muted">no class present or predicted</li>'}</ul></figcaption></figure>`;
    })
    .join('\n');
  const samples = input.tiles.length
    ? `<section id="samples"><h2>Validation images, worst mistakes first</h2>
<p class="muted">Ranked by the sum over classes of |label &minus; probability| (showing ${input.tiles.length} of ${input.sampleCount}).
<span class="swatch" style="border-color:${esc(input.colors.predicted)}"></span>predicted box (where predicted visible)
<span class="swatch" style="border-color:${esc(input.colors.true)};border-style:dashed"></span>true box.
TP/FP/FN: right, false alarm, missed, at each class's threshold.</p>
<div class="grid">${tiles}</div></section>`
    : '';

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<link rel="icon" href="data:,">
<title>${esc(input.title)}: litter report</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(input.title)}</h1><p class="muted">litter training report · ${input.classCount} classes · ${input.sampleCount} validation images</p></header>
${summary}
<section id="training"><h2>Charts</h2>${charts}</section>
${classTable}
${samples}
</body>
</html>
`;
}
