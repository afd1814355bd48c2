import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeImage, imageSize } from '@litter/dataset';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { fixture, jsonLines, litter, type Result } from './_litter.js';

// End to end with boxes: the built `litter` on a copy of test/fixtures/blender-three-wide (96x72 renders) at
// 24x18, a few steps of batch 8 on wasm.
const SMALL = ['--width', '24', '--height', '18', '--batch-size', '8', '--backend', 'wasm'];

let work: string;
let dataset: string;
let trained: Result;
const run = () => path.join(work, 'run-boxes');

beforeAll(async () => {
  ensureBuilt();
  work = mkdtempSync(path.join(tmpdir(), 'litter-cli-boxes-'));
  dataset = path.join(work, 'three');
  cpSync(fixture, dataset, { recursive: true });
  trained = await litter([
    'train',
    dataset,
    ...SMALL,
    '--steps',
    '4',
    '--validate-every',
    '2',
    '--boxes',
    '--box-loss-weight',
    '3',
    '--out',
    run(),
    '--json',
  ]);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

type ClassLine = {
  probability: number;
  visible: boolean;
  threshold: number;
  box?: { x1: number; y1: number; x2: number; y2: number };
  score?: number;
};

/** Pixels within 40 per channel of a `#rrggbb` colour. */
function countColour(pixels: Uint8Array, hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [
    number,
    number,
    number,
  ];
  let count = 0;
  for (let p = 0; p < pixels.length; p += 3) {
    if (
      Math.abs(pixels[p]! - r) < 40 &&
      Math.abs(pixels[p + 1]! - g) < 40 &&
      Math.abs(pixels[p + 2]! - b) < 40
    ) {
      count++;
    }
  }
  return count;
}

describe('litter with boxes', () => {
  it('train --boxes records the box head, evaluates boxes and prints where the report is', async () => {
    expect(trained.code, trained.stderr).toBe(0);
    const end = jsonLines(trained.stdout).find((e) => e.event === 'end')!;
    expect(end.report).toBe(path.join(run(), 'report.html'));
    expect(typeof end.meanIoU).toBe('number');
    const config = JSON.parse(readFileSync(path.join(run(), 'config.json'), 'utf8'));
    expect(config).toMatchObject({ boxes: true, boxLossWeight: 3 });
    const evaluation = JSON.parse(readFileSync(path.join(run(), 'evaluation.json'), 'utf8'));
    expect(evaluation.validation.fixed.box).toMatchObject({ count: expect.any(Number) });
    expect(readFileSync(path.join(run(), 'evaluation.txt'), 'utf8')).toMatch(/IoU>=\.5/);
    expect(existsSync(path.join(run(), 'charts', 'samples.png'))).toBe(true);
  });

  it('predict prints boxes in pixels of each image, as JSON and as a table', async () => {
    const images = ['three/0-0y-0p.png', 'three/2-3y-1p.png'];
    const json = await litter(['predict', run(), ...images, '--backend', 'wasm', '--json'], { cwd: work });
    expect(json.code, json.stderr).toBe(0);
    const lines = jsonLines(json.stdout);
    const expectedRows: string[] = [];
    for (const line of lines) {
      const size = await imageSize(path.join(work, line.image as string));
      expect(size).toEqual({ width: 96, height: 72 });
      for (const [name, c] of Object.entries(line.classes as Record<string, ClassLine>)) {
        const box = c.box!;
        expect(box, name).toBeDefined();
        // CenterNet scores each box (presence and heatmap peak together): a confidence in (0, 1].
        expect(c.score, name).toBeGreaterThan(0);
        expect(c.score!).toBeLessThanOrEqual(1);
        expect(box.x1).toBeGreaterThanOrEqual(0);
        expect(box.x1).toBeLessThanOrEqual(box.x2);
        expect(box.x2).toBeLessThanOrEqual(96);
        expect(box.y1).toBeGreaterThanOrEqual(0);
        expect(box.y1).toBeLessThanOrEqual(box.y2);
        expect(box.y2).toBeLessThanOrEqual(72);
        if (c.visible) {
          const cells = [box.x1, box.y1, box.x2, box.y2].map((v) => v.toFixed(1));
          expectedRows.push(`${line.image} ${name} ${cells.join(' ')}`);
        }
      }
    }

    const table = await litter(['predict', run(), ...images, '--backend', 'wasm'], { cwd: work });
    expect(table.code, table.stderr).toBe(0);
    // The box table lists exactly the visible classes, with the numbers of the JSON.
    const rows = table.stdout
      .split('\n')
      .filter((row) => /^three\/\S+ +[A-Z][a-z]+ +[\d.]+ /.test(row))
      .map((row) => row.trim().split(/ +/).join(' '));
    expect(rows).toEqual(expectedRows);
    expect(table.stdout).toMatch(
      expectedRows.length > 0 ? /^image +class +x1 +y1 +x2 +y2$/m : /^no class visible: no boxes$/m,
    );
  });

  it('predict --annotate draws predicted boxes, and the true ones where labels.json knows the image', async () => {
    // The same render twice: in the dataset (labels.json next to it) and alone (no labels).
    const loose = path.join(work, 'loose');
    mkdirSync(loose, { recursive: true });
    cpSync(path.join(dataset, '0-0y-0p.png'), path.join(loose, '0-0y-0p.png'));
    const out = path.join(work, 'annotated');
    const result = await litter(
      [
        'predict',
        run(),
        'three/0-0y-0p.png',
        'loose/0-0y-0p.png',
        '--backend',
        'wasm',
        '--json',
        '--annotate',
        out,
      ],
      { cwd: work },
    );
    expect(result.code, result.stderr).toBe(0);
    const lines = jsonLines(result.stdout);
    const labelled = path.join(out, '0-0y-0p.png');
    const alone = path.join(out, '0-0y-0p-2.png');
    expect(lines.map((line) => line.annotated)).toEqual([labelled, alone]);

    const visible = Object.values(lines[0]!.classes as Record<string, ClassLine>).some((c) => c.visible);
    const drawn: Record<string, { cyan: number; magenta: number }> = {};
    for (const file of [labelled, alone]) {
      // Small renders are scaled up by a whole factor so that the labels are readable.
      const { width, height } = await imageSize(file);
      expect(width % 96).toBe(0);
      expect(width / 96).toBe(height / 72);
      const pixels = await decodeImage(file);
      drawn[file] = { cyan: countColour(pixels, '#00e5ff'), magenta: countColour(pixels, '#ff00c8') };
    }
    // True boxes (cyan): the image has three objects, so there is plenty of outline; none without labels.
    expect(drawn[labelled]!.cyan).toBeGreaterThan(200);
    expect(drawn[alone]!.cyan).toBe(0);
    // Predicted boxes (magenta): the same on both copies (but for the pixels where a true box or its label
    // crosses them: the CenterNet head's boxes lie close to the true ones, so a true outline covers some), present
    // when a class is visible.
    expect(drawn[labelled]!.magenta).toBeLessThanOrEqual(drawn[alone]!.magenta);
    expect(drawn[alone]!.magenta - drawn[labelled]!.magenta).toBeLessThanOrEqual(0.1 * drawn[alone]!.magenta);
    expect(drawn[alone]!.magenta > 0).toBe(visible);
  });

  it('report RUN regenerates report.html and the charts', async () => {
    rmSync(path.join(run(), 'report.html'));
    rmSync(path.join(run(), 'charts'), { recursive: true });
    const result = await litter(['report', run(), '--backend', 'wasm']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(`report: ${path.join(run(), 'report.html')}`);
    const html = readFileSync(path.join(run(), 'report.html'), 'utf8');
    expect(html).toMatch(/mean IoU/);
    for (const chart of ['loss', 'precision-recall', 'samples', 'validation-metrics']) {
      expect(existsSync(path.join(run(), 'charts', `${chart}.png`)), chart).toBe(true);
    }
  });

  it('predict --annotate with a model without a box head says to train with --boxes', async () => {
    const plain = path.join(work, 'run-plain');
    const train = await litter(['train', dataset, ...SMALL, '--steps', '1', '--out', plain]);
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/^report: .*run-plain\/report\.html$/m);
    const result = await litter([
      'predict',
      plain,
      path.join(dataset, '0-0y-0p.png'),
      '--backend',
      'wasm',
      '--annotate',
      path.join(work, 'nothing'),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^@litter\/cli: --annotate draws predicted boxes, .* train with --boxes$/,
    );
    expect(existsSync(path.join(work, 'nothing'))).toBe(false);
  });
});
