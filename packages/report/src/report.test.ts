import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticReportData } from '../test/synthetic.js';
import { type ReportData, rankSamples, sampleError, writeReport } from './index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'litter-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeReport', () => {
  const data = syntheticReportData({ samples: 16 });
  let result: Awaited<ReturnType<typeof writeReport>>;
  let html: string;
  const runDir = () => join(dir, 'run');

  beforeAll(async () => {
    result = await writeReport(runDir(), data, { maxSamples: 8 });
    html = await readFile(result.htmlPath, 'utf8');
  });

  it('writes report.html and the five chart PNGs (mean IoU per class with boxes)', () => {
    expect(result.htmlPath).toBe(join(runDir(), 'report.html'));
    expect(result.charts.map((p) => basename(p))).toEqual([
      'loss.png',
      'validation-metrics.png',
      'precision-recall.png',
      'iou.png',
      'samples.png',
    ]);
    for (const path of result.charts) expect(path.startsWith(join(runDir(), 'charts'))).toBe(true);
  });

  it('writes PNGs that decode, of a readable size', async () => {
    for (const path of result.charts) {
      const meta = await sharp(path).metadata();
      const stats = await sharp(path).stats();
      expect(meta.format, path).toBe('png');
      expect(meta.width, path).toBeGreaterThanOrEqual(600);
      expect(meta.width, path).toBeLessThanOrEqual(2400);
      expect(meta.height, path).toBeGreaterThanOrEqual(300);
      expect(meta.height, path).toBeLessThanOrEqual(2400);
      // Not a blank canvas: some channel varies.
      expect(Math.max(...stats.channels.map((c) => c.stdev)), path).toBeGreaterThan(10);
    }
    // The grid: 8 images of 288x216 in 4 columns -> 2 rows.
    const grid = await sharp(result.charts[4]!).metadata();
    expect(grid.width).toBe(4 * 288 + 5 * 12);
  });

  it('is self-contained: no http(s), no scripts, images only as data: URIs', () => {
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/@import|@font-face/i);
    const references = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!);
    expect(references.length).toBeGreaterThan(0);
    for (const reference of references) expect(reference).toMatch(/^(data:|#)/);
    expect(html).toContain("default-src 'none'");
  });

  it('inlines the four charts with unique ids and the classes with their AP in the legend', () => {
    expect(html.match(/<svg\b/g)).toHaveLength(4);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(ids).size).toBe(ids.length);
    for (const name of data.classes) expect(html).toMatch(new RegExp(`${name} \\(AP \\d\\.\\d{3}\\)`));
    expect(html).toContain('exact match');
    expect(html).toContain('0.947'); // the summary table
  });

  it('shows the worst mistakes first and at most maxSamples images', () => {
    const names = [
      ...html.matchAll(/<figure class="sample"[^>]*><img [^>]*alt="([^"]+) with predicted/g),
    ].map((m) => m[1]!);
    const expected = rankSamples(data.samples)
      .slice(0, 8)
      .map((r) => basename(r.sample.imagePath));
    expect(names).toEqual(expected);
    expect(html.match(/<img src="data:image\/png;base64,/g)).toHaveLength(8);
  });

  it('regenerates in place and drops charts it no longer has', async () => {
    const again = await writeReport(runDir(), { ...data, validation: [], samples: [] });
    expect(again.charts.map((p) => basename(p))).toEqual(['loss.png']);
    expect(existsSync(join(runDir(), 'charts', 'samples.png'))).toBe(false);
    expect(existsSync(join(runDir(), 'charts', 'precision-recall.png'))).toBe(false);
    const page = await readFile(again.htmlPath, 'utf8');
    expect(page.match(/<svg\b/g)).toHaveLength(1);
    expect(page).not.toContain('class="sample"');
  });
});

describe('writeReport input handling', () => {
  it('escapes names from the data', async () => {
    const data = syntheticReportData({ samples: 2 });
    const { htmlPath } = await writeReport(join(dir, 'escape'), {
      ...data,
      title: '<script>alert(1)</script>',
      classes: ['Can', 'Cube & <blink>', 'Sphere'],
    });
    const html = await readFile(htmlPath, 'utf8');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<blink>');
    expect(html).toContain('Cube &#38; &#60;blink&#62;');
  });

  it('thins a long training history to a line the chart can draw', async () => {
    const data = syntheticReportData({ samples: 0 });
    const history = Array.from({ length: 50_000 }, (_, i) => ({ step: i + 1, loss: 1 / Math.sqrt(i + 1) }));
    const { htmlPath } = await writeReport(join(dir, 'long'), { ...data, history });
    const html = await readFile(htmlPath, 'utf8');
    const line = html.match(/<g class="mark-line role-mark"[^>]*><path d="([^"]+)"/)?.[1];
    const points = (line?.match(/[ML]/g) ?? []).length;
    expect(points).toBeGreaterThan(1000);
    expect(points).toBeLessThanOrEqual(2001);
    expect(html.length).toBeLessThan(200_000);
  });

  it('lists every problem of inconsistent data in one ReportError', async () => {
    const good = syntheticReportData({ samples: 2 });
    const bad = {
      ...good,
      classes: ['Can', 'Cube'],
      thresholds: [0.5, 2],
      samples: [{ ...good.samples[0]!, probabilities: [0.5, Number.NaN] }],
    } as ReportData;
    const error = await writeReport(join(dir, 'bad'), bad).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ReportError', code: 'invalid-data' });
    const message = (error as Error).message;
    expect(message).toMatch(/^@litter\/report: the report data has \d+ problem/);
    expect(message).toContain('samples[0].labels has 3 values; expected 2, one per class');
    expect(message).toContain('samples[0].trueBoxes must have 2 entries');
    expect(message).toMatch(/thresholds is \[0\.5,2\]; expected numbers in \[0, 1\]/);
    expect(existsSync(join(dir, 'bad', 'report.html'))).toBe(false);
  });

  it('reports an image it cannot read by its path', async () => {
    const data = syntheticReportData({ samples: 1 });
    const broken = { ...data, samples: [{ ...data.samples[0]!, imagePath: join(dir, 'nope.png') }] };
    await expect(writeReport(join(dir, 'noimage'), broken)).rejects.toMatchObject({
      code: 'image-unreadable',
    });
  });
});

describe('sampleError and rankSamples', () => {
  it('sum |label - probability| and sort worst first, ties in input order', () => {
    expect(sampleError({ labels: [1, 0, 1], probabilities: [0.9, 0.2, 0.4] })).toBeCloseTo(
      0.1 + 0.2 + 0.6,
      12,
    );
    const ranked = rankSamples([
      { labels: [1], probabilities: [0.75] },
      { labels: [0], probabilities: [0.75] },
      { labels: [1], probabilities: [0.25] },
      { labels: [0], probabilities: [0.25] },
    ]);
    expect(ranked.map((r) => r.index)).toEqual([1, 2, 0, 3]);
    expect(ranked.map((r) => r.error)).toEqual([0.75, 0.75, 0.25, 0.25]);
  });
});

describe('class names from a hostile dataset', () => {
  it('a 100,000-character class name does not stall the report (drawn shortened, listed whole)', async () => {
    // Drawn in full, this name took the SVG text layout many minutes (16,000 characters: 40 s).
    const long = 'x'.repeat(100_000);
    const data = { ...syntheticReportData({ samples: 8 }), classes: [long, 'Cube', 'Sphere'] };
    const result = await writeReport(join(dir, 'long-name'), data, { maxSamples: 4 });
    const html = await readFile(result.htmlPath, 'utf8');
    expect(html).toContain(long);
    expect(html).toContain(`${'x'.repeat(77)}...`);
  }, 30_000);
});
