import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { fixture, jsonLines, litter, noTensorflowHook, type Result } from './_litter.js';

// End to end: the built `litter` in a child process, on a copy of test/fixtures/blender-three-wide (75 images,
// 3 classes, 3 scenes) at 24x18 and a few steps of batch 8.
const SMALL = ['--width', '24', '--height', '18', '--batch-size', '8', '--backend', 'wasm'];
// A constant learning rate: with the default cosine schedule the rate depends on the total steps, which a
// resume to more steps changes. Seed 1: see the determinism test for seed 0.
const EXACT = ['--schedule', 'constant', '--seed', '1'];

let work: string;
let dataset: string;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(path.join(tmpdir(), 'litter-cli-'));
  dataset = path.join(work, 'three');
  // A copy: the cache is written next to labels.json, and other test projects load the same fixture.
  cpSync(fixture, dataset, { recursive: true });
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** An input problem: exit 1 and one line on stderr that starts with the package name, no stack trace. */
function expectOneLineError(result: Result, pattern: RegExp) {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^@litter\/[\w-]+: /);
  expect(lines[0]).toMatch(pattern);
}

const events = (result: Result, event: string) => jsonLines(result.stdout).filter((e) => e.event === event);

function labelsOf(dir: string): { image: string; meshes: Record<string, unknown> }[] {
  return JSON.parse(readFileSync(path.join(dir, 'labels.json'), 'utf8'));
}

describe('litter inspect and litter cache never load TensorFlow.js', () => {
  const hook = ['--import', noTensorflowHook];

  it('fails any command that loads TensorFlow.js (the check works)', async () => {
    const result = await litter(['doctor'], { node: hook });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/TensorFlow\.js was loaded: @tensorflow\//);
  });

  it('inspect --json counts images, classes and scenes from labels.json', async () => {
    const result = await litter(['inspect', dataset, '--json'], { node: hook });
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const labels = labelsOf(dataset);
    const expected: Record<string, number> = {};
    for (const entry of labels)
      for (const name of Object.keys(entry.meshes)) expected[name] = (expected[name] ?? 0) + 1;
    expect(report.images).toBe(labels.length);
    expect(report.classes).toEqual(expected);
    expect(report.problems).toEqual([]);
    expect(report.scenes).toEqual({ 0: 25, 1: 25, 2: 25 });
    expect(report.sizes).toEqual({ '96x72': 75 });
    expect(report.cooccurrence.Cube.Cube).toBe(expected.Cube);
    expect(report.cooccurrence.Cube.Sphere).toBe(report.cooccurrence.Sphere.Cube);
  });

  it('inspect lists label problems and exits 1', async () => {
    const bad = path.join(work, 'bad-inspect');
    cpSync(dataset, bad, { recursive: true });
    const labels = labelsOf(bad);
    (labels[3]!.meshes.Cube as Record<string, number>) = { x1: 1.7, y1: 0, x2: 0.5, y2: 0.5 };
    labels[5]!.image = 'missing.png';
    writeFileSync(path.join(bad, 'labels.json'), JSON.stringify(labels));
    const result = await litter(['inspect', bad, '--json'], { node: hook });
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report.images).toBe(75);
    expect(report.problems.join('\n')).toMatch(/Cube\.x1 = 1\.7/);
    expect(report.problems.join('\n')).toMatch(/missing\.png: does not exist/);
    expect(result.stderr).toMatch(/^@litter\/cli: .* has \d+ problems/);
  });

  it('cache build, info, verify and clear', async () => {
    const size = ['--width', '24', '--height', '18'];
    const cache = path.join(dataset, 'labels.litter-cache');
    rmSync(cache, { force: true });
    let result = await litter(['cache', 'verify', dataset, ...size], { node: hook });
    expectOneLineError(result, /is missing for 24x18/);

    result = await litter(['cache', 'build', dataset, ...size, '--json'], { node: hook });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ action: 'build', images: 75, width: 24, height: 18 });
    expect(existsSync(cache)).toBe(true);

    result = await litter(['cache', 'info', dataset, ...size, '--json'], { node: hook });
    expect(JSON.parse(result.stdout)).toMatchObject({ exists: true, status: 'current', images: 75 });

    result = await litter(['cache', 'verify', dataset, ...size], { node: hook });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/is current \(75 images at 24x18\)/);

    const image = path.join(dataset, '0-0y-0p.png');
    utimesSync(image, new Date(), new Date(Date.now() + 5000));
    result = await litter(['cache', 'verify', dataset, ...size], { node: hook });
    expectOneLineError(result, /not current .*0-0y-0p\.png changed/);

    result = await litter(['cache', 'clear', dataset, '--json'], { node: hook });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).removed).toEqual([cache]);
    expect(existsSync(cache)).toBe(false);
  });
});

describe('litter train, evaluate and predict', () => {
  let full: Result;
  let sigterm: Result;
  const runA = () => path.join(work, 'run-a');

  beforeAll(async () => {
    full = await litter([
      'train',
      dataset,
      ...SMALL,
      ...EXACT,
      '--steps',
      '6',
      '--validate-every',
      '3',
      '--log-every',
      '1',
      '--out',
      runA(),
      '--json',
    ]);
  });

  it('trains, checkpoints and ends with JSON events of the stable shapes', () => {
    expect(full.code, full.stderr).toBe(0);
    const all = jsonLines(full.stdout);
    expect(all[0]).toMatchObject({ event: 'split', validation: expect.any(Array) });
    expect(all[1]).toMatchObject({
      event: 'setup',
      width: 24,
      height: 18,
      sizes: [{ width: 24, height: 18 }],
    });
    expect(all[2]).toMatchObject({ event: 'begin', step: 0, totalSteps: 6, backend: 'wasm', resumed: false });
    const steps = events(full, 'step');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const step of steps) {
      expect(Number.isFinite(step.loss)).toBe(true);
      expect(step.imagesPerSecond).toBeGreaterThan(0);
    }
    const validations = events(full, 'validation');
    expect(validations.map((e) => e.step)).toEqual([3, 6]);
    for (const v of validations) {
      expect(v.exactMatch).toBeGreaterThanOrEqual(0);
      expect(v.exactMatch).toBeLessThanOrEqual(1);
      expect(v.macroF1).toBeGreaterThanOrEqual(0);
    }
    const end = all.at(-1)!;
    expect(end).toMatchObject({ event: 'end', runDir: runA(), step: 6, stopped: 'done' });
    expect(typeof end.exactMatch).toBe('number');
    expect(typeof end.macroF1).toBe('number');
    for (const file of [
      'config.json',
      'metrics.jsonl',
      'evaluation.json',
      'evaluation.txt',
      'checkpoints/last/model.json',
      'checkpoints/best/model.json',
    ]) {
      expect(existsSync(path.join(runA(), file)), file).toBe(true);
    }
  });

  it('prints the validation report without --json', async () => {
    const out = path.join(work, 'run-plain');
    const result = await litter([
      'train',
      dataset,
      ...SMALL,
      '--steps',
      '2',
      '--log-every',
      '1',
      '--workers',
      '2',
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /^training lite on 2 wasm workers: \d+ train \/ \d+ validation images, 2 steps$/m,
    );
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ workers: 2, flip: true, warmupSteps: 30, recalibrateBatchNorm: 256 });
    expect(result.stdout).toMatch(/^step 2\/2 .*loss \d/m);
    expect(result.stdout).toMatch(/^Validation split: \d+ images, 3 classes/m);
    expect(result.stdout).toMatch(/^At threshold 0\.5$/m);
    expect(result.stdout).toMatch(/^exact match [\d.]+ +Hamming loss/m);
  });

  it('resumes exactly: the losses after resuming equal those of the uninterrupted run', async () => {
    const out = path.join(work, 'run-b');
    const args = [
      'train',
      dataset,
      ...SMALL,
      ...EXACT,
      '--validate-every',
      '3',
      '--log-every',
      '1',
      '--out',
      out,
      '--json',
    ];
    const first = await litter([...args, '--steps', '3']);
    expect(first.code, first.stderr).toBe(0);
    const second = await litter([
      'train',
      '--resume',
      '--out',
      out,
      '--steps',
      '6',
      '--log-every',
      '1',
      '--json',
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(events(second, 'begin')[0]).toMatchObject({ step: 3, totalSteps: 6, resumed: true });
    const resumed = events(second, 'step').map((e) => e.loss as number);
    const uninterrupted = events(full, 'step').map((e) => e.loss as number);
    expect(resumed).toHaveLength(3);
    resumed.forEach((loss, k) => {
      expect(loss).toBeCloseTo(uninterrupted[k + 3]!, 4);
    });
  });

  it('stops on SIGINT after saving, exits 130 and says how to resume; the resume continues', async () => {
    const out = path.join(work, 'run-c');
    let sent = false;
    // On two worker threads: the process must still exit (no worker left running) once the checkpoint is saved.
    const result = await litter(
      [
        'train',
        dataset,
        ...SMALL,
        '--workers',
        '2',
        '--no-flip',
        '--steps',
        '500',
        '--log-every',
        '1',
        '--out',
        out,
        '--json',
      ],
      {
        onLine: (line, child) => {
          if (!sent && line.includes('"event":"step"')) {
            sent = true;
            child.kill('SIGINT');
          }
        },
      },
    );
    expect(result.code, result.stderr).toBe(130);
    expect(result.stderr).toMatch(
      /stopped by SIGINT at step \d+; checkpoint saved\. Resume with: litter train .* --resume --out /,
    );
    const stoppedAt = (events(result, 'end')[0]?.step ?? -1) as number;
    expect(stoppedAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeLessThan(500);
    const state = JSON.parse(readFileSync(path.join(out, 'checkpoints/last/state.json'), 'utf8'));
    expect(state.step).toBe(stoppedAt);

    const resumed = await litter([
      'train',
      '--resume',
      '--out',
      out,
      '--steps',
      String(stoppedAt + 2),
      '--json',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(events(resumed, 'begin')[0]).toMatchObject({ step: stoppedAt, resumed: true });
    expect(events(resumed, 'end')[0]).toMatchObject({ step: stoppedAt + 2, stopped: 'done' });
    // The resume kept the run's settings, --no-flip included.
    expect(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'))).toMatchObject({ flip: false });
  });

  it('stops on SIGTERM with exit code 143', async () => {
    const out = path.join(work, 'run-d');
    let sent = false;
    const result = await litter(
      ['train', dataset, ...SMALL, '--steps', '500', '--log-every', '1', '--out', out, '--json'],
      {
        onLine: (line, child) => {
          if (!sent && line.includes('"event":"step"')) {
            sent = true;
            child.kill('SIGTERM');
          }
        },
      },
    );
    expect(result.code, result.stderr).toBe(143);
    expect(result.stderr).toMatch(/stopped by SIGTERM .* --resume --out /);
    expect(existsSync(path.join(out, 'checkpoints/last/model.json'))).toBe(true);
    sigterm = result;
  });

  it('starts two runs with the default seed identically (same first loss)', () => {
    // The SIGTERM run and the plain run share the default seed (0), split, size and batch; the first step's
    // loss is that of the initial weights on the first batch, whatever the schedule or length.
    const rows = readFileSync(path.join(work, 'run-plain', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const plainFirst = rows.find((row) => row.event === 'step' && row.step === 1)?.loss;
    const jsonFirst = events(sigterm, 'step')[0]?.loss;
    expect(typeof plainFirst).toBe('number');
    expect(jsonFirst).toBeCloseTo(plainFirst, 5);
  });

  it('evaluates a run on its validation split, as the training run reported', async () => {
    const result = await litter(['evaluate', runA(), '--backend', 'wasm', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    const end = events(full, 'end')[0]!;
    const begin = events(full, 'begin')[0]!;
    expect(report).toMatchObject({ split: 'validation', images: begin.validationSize });
    expect(report.exactMatch).toBeCloseTo(end.exactMatch as number, 6);
    expect(report.macroF1).toBeCloseTo(end.macroF1 as number, 6);

    const table = await litter(['evaluate', runA(), dataset, '--split', 'all', '--backend', 'wasm']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^All images of .*: 75 images, 3 classes/m);
    expect(table.stdout).toMatch(/^Cube +\d+\/75/m);
  });

  it('predicts per image and class, as a table or JSON lines', async () => {
    const images = ['three/0-0y-0p.png', 'three/2-3y-1p.png'];
    const json = await litter(['predict', runA(), ...images, '--backend', 'wasm', '--json'], { cwd: work });
    expect(json.code, json.stderr).toBe(0);
    const lines = jsonLines(json.stdout);
    expect(lines.map((line) => line.image)).toEqual(images);
    for (const line of lines) {
      const classes = line.classes as Record<
        string,
        { probability: number; visible: boolean; threshold: number }
      >;
      expect(Object.keys(classes)).toEqual(['Can', 'Cube', 'Sphere']);
      for (const c of Object.values(classes)) {
        expect(c.probability).toBeGreaterThanOrEqual(0);
        expect(c.probability).toBeLessThanOrEqual(1);
        expect(c.visible).toBe(c.probability >= c.threshold);
      }
    }
    const table = await litter(['predict', runA(), ...images, '--backend', 'wasm'], { cwd: work });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^image +Can +Cube +Sphere +visible$/m);
    expect(table.stdout).toMatch(/^three\/2-3y-1p\.png +0\.\d{3} /m);
  });

  it('reports a missing image or run as an input problem', async () => {
    expectOneLineError(
      await litter(['predict', runA(), path.join(work, 'nope.png')]),
      /nope\.png does not exist/,
    );
    expectOneLineError(await litter(['evaluate', path.join(work, 'no-run')]), /no-run does not exist/);
  });
});

describe('input problems through litter train', () => {
  const tfjsNode = (() => {
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
      return true;
    } catch {
      return false;
    }
  })();

  it('a missing dataset', async () => {
    expectOneLineError(
      await litter(['train', path.join(work, 'nowhere'), ...SMALL]),
      /nowhere does not exist/,
    );
  });

  it('bad labels', async () => {
    const bad = path.join(work, 'bad-train');
    cpSync(dataset, bad, { recursive: true });
    const labels = labelsOf(bad);
    (labels[2]!.meshes.Sphere as Record<string, number>) = { x1: 0.2, y1: 0.9, x2: 0.4, y2: 0.1 };
    writeFileSync(path.join(bad, 'labels.json'), JSON.stringify(labels));
    expectOneLineError(
      await litter(['train', bad, ...SMALL]),
      /^@litter\/dataset: labels\.json has 1 problem: .*y1 = 0\.9 is greater than y2 = 0\.1/,
    );
  });

  it('an unknown model', async () => {
    expectOneLineError(
      await litter(['train', dataset, ...SMALL, '--model', 'no-such-model']),
      /no-such-model/,
    );
  });

  it('an unknown backend is a usage error', async () => {
    const result = await litter(['train', dataset, '--backend', 'gpu']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(
      /^@litter\/cli: --backend must be one of tensorflow, wasm, cpu, got "gpu"$/,
    );
  });

  it.skipIf(tfjsNode)('a backend that does not load here', async () => {
    expectOneLineError(
      await litter(['train', dataset, '--backend', 'tensorflow']),
      /backend 'tensorflow' cannot be used/,
    );
  });

  it('--verbose adds the stack trace', async () => {
    const result = await litter(['train', dataset, ...SMALL, '--model', 'no-such-model', '--verbose']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\n\s+at /);
  });
});
