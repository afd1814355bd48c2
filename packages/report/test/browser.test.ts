import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../src/index.js';
import { syntheticReportData } from './synthetic.js';

/** Debian's chromium (scripts/install-test-tools.sh installs it), or the browser named by LITTER_CHROMIUM. */
const CHROMIUM = [process.env.LITTER_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => !!path && existsSync(path),
);
if (!CHROMIUM) {
  console.warn(
    '@litter/report: SKIPPING the headless-browser test of report.html: no chromium at /usr/bin/chromium or ' +
      '/usr/bin/chromium-browser (or LITTER_CHROMIUM). Run scripts/install-test-tools.sh as root to install it.',
  );
}

// The flags of a clean, quiet headless run as root. Playwright adds a fresh --user-data-dir (a temporary
// profile) itself and refuses one passed here.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Loads a page from a file and records what a reader of it would be bothered by. */
async function load(page: Page, htmlPath: string) {
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const failed: string[] = [];
  const foreign: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('requestfailed', (request) => failed.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('request', (request) => {
    if (!/^(file|data):/.test(request.url())) foreign.push(request.url());
  });
  await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' });
  return { consoleErrors, pageErrors, failed, foreign };
}

describe.skipIf(!CHROMIUM)(`report.html in headless chromium (${CHROMIUM ?? 'not found'})`, () => {
  let browser: Browser;
  let dir: string;
  let htmlPath: string;
  const data = syntheticReportData({ samples: 10 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'litter-report-browser-'));
    ({ htmlPath } = await writeReport(join(dir, 'run'), data));
    browser = await chromium.launch({
      executablePath: CHROMIUM!,
      args: ARGS,
      headless: true,
      timeout: 60_000,
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads offline with no console errors and no requests beyond the file itself', async () => {
    const page = await browser.newPage();
    const seen = await load(page, htmlPath);
    expect(seen.consoleErrors).toEqual([]);
    expect(seen.pageErrors).toEqual([]);
    expect(seen.failed).toEqual([]);
    expect(seen.foreign).toEqual([]);
    expect(await page.title()).toContain(data.title);
    await page.close();
  });

  it('shows the four charts as visible SVG with their legends', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await load(page, htmlPath);
    const charts = page.locator('figure.chart svg');
    expect(await charts.count()).toBe(4);
    for (let i = 0; i < 4; i++) {
      const chart = charts.nth(i);
      await chart.scrollIntoViewIfNeeded();
      expect(await chart.isVisible()).toBe(true);
      const box = await chart.boundingBox();
      expect(box?.width).toBeGreaterThan(200);
      expect(box?.height).toBeGreaterThan(150);
      // Drawn marks, not an empty frame: vega draws lines as <path> with a non-empty d.
      expect(await chart.locator('path[d]').count()).toBeGreaterThan(5);
    }
    const text = (name: string) => page.locator(`figure[data-chart="${name}"] svg`).textContent();
    expect(await text('loss')).toMatch(/training[\s\S]*validation/);
    const pr = await text('precision-recall');
    for (const name of data.classes) expect(pr).toMatch(new RegExp(`${name} \\(AP \\d\\.\\d{3}\\)`));
    expect(await text('validation-metrics')).toMatch(/exact match[\s\S]*macro F1/);
    expect(await text('iou')).toMatch(/mean IoU[\s\S]*\d\.\d{2} \(5\)/);
    await page.close();
  });

  it('shows every grid image decoded, worst mistake first', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await load(page, htmlPath);
    const images = page.locator('figure.sample img');
    expect(await images.count()).toBe(data.samples.length);
    const decoded = await images.evaluateAll((elements) =>
      elements.map((e) => {
        // No DOM lib in this tsconfig: the fields of HTMLImageElement used here.
        const img = e as unknown as { complete: boolean; naturalWidth: number; naturalHeight: number };
        return { complete: img.complete, width: img.naturalWidth, height: img.naturalHeight };
      }),
    );
    for (const image of decoded) expect(image).toEqual({ complete: true, width: 288, height: 216 });
    const first = images.first();
    await first.scrollIntoViewIfNeeded();
    expect(await first.isVisible()).toBe(true);
    const errors = await page
      .locator('figure.sample figcaption .muted')
      .allTextContents()
      .then((all) => all.filter((t) => t.startsWith('error')).map((t) => Number(t.slice(6))));
    expect(errors).toHaveLength(data.samples.length);
    expect(errors).toEqual([...errors].sort((a, b) => b - a));
    await page.close();
  });

  it('would notice an external reference (the checks above can fail)', async () => {
    // The same head as the report (its content security policy), plus what a careless change might add.
    const html = (await import('node:fs/promises')).readFile(htmlPath, 'utf8');
    const broken = (await html).replace(
      '</body>',
      '<img src="https://example.invalid/x.png" alt=""><link rel="stylesheet" href="http://example.invalid/a.css"></body>',
    );
    const brokenPath = join(dir, 'broken.html');
    await writeFile(brokenPath, broken);
    const page = await browser.newPage();
    const seen = await load(page, brokenPath);
    expect(seen.consoleErrors.length + seen.foreign.length).toBeGreaterThan(0);
    await page.close();
  });
});
