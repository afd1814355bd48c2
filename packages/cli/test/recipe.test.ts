import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { fixture, jsonLines, litter, type Result } from './_litter.js';

// End to end, the built `litter`: the size from the images, a time budget, a test split, evaluating on another
// dataset. The fixture is test/fixtures/blender-three-wide (75 images of 96x72, 3 classes, scenes 0-2).
let work: string;
let dataset: string;

beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(path.join(tmpdir(), 'litter-recipe-'));
  dataset = path.join(work, 'three');
  cpSync(fixture, dataset, { recursive: true });
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const events = (result: Result, event: string) => jsonLines(result.stdout).filter((e) => e.event === event);

/**
 * The first test runs the built `litter` five times: about 5 s of CPU for the 4-s training run, but 45 s of wall
 * clock on a loaded machine (measured at load 9), past vitest's default 120 s for the five. What it checks is
 * what the runs did, so its timeout only catches a hang.
 */
const HANG_MS = 15 * 60_000;

describe('litter train defaults', () => {
  it('chooses the size from the images, trains for a time budget and reports the test split', {
    timeout: HANG_MS,
  }, async () => {
    const out = path.join(work, 'timed');
    const result = await litter([
      'train',
      dataset,
      '--time',
      '4s',
      '--batch-size',
      '8',
      '--backend',
      'wasm',
      '--val-scenes',
      '1',
      '--test-scenes',
      '2',
      '--out',
      out,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const [setup] = events(result, 'setup');
    // 96x72 is within 10,800 pixels (2 cores) or more: kept; the first 60% at 2/3 of each side.
    expect(setup).toMatchObject({
      width: 96,
      height: 72,
      native: { width: 96, height: 72 },
      time: 4,
      sizes: [
        { width: 64, height: 48, from: 0 },
        { width: 96, height: 72, from: 0.6 },
      ],
    });
    const [begin] = events(result, 'begin');
    expect(begin).toMatchObject({ totalSeconds: 4, resumed: false, testSize: 25, validationSize: 25 });
    const steps = events(result, 'step');
    // The last step starts inside the budget (a step here can take a second or more on a loaded machine).
    const seconds = steps.map((e) => e.seconds as number);
    const longest = Math.max(...seconds.map((t, i) => t - (seconds[i - 1] ?? 0)));
    expect(seconds.at(-1)!).toBeLessThan(4 + longest);
    const [end] = events(result, 'end');
    expect(end).toMatchObject({ stopped: 'done', split: 'test', thresholdsTunedOn: 'validation' });
    expect(end!.exactMatch).toBe((end!.test as { exactMatch: number }).exactMatch);
    expect(typeof (end!.validation as { exactMatch: number }).exactMatch).toBe('number');
    const text = readFileSync(path.join(out, 'evaluation.txt'), 'utf8');
    expect(text).toMatch(/^Validation split: 25 images/m);
    expect(text).toMatch(/^At the thresholds tuned on these same images \(optimistic/m);
    expect(text).toMatch(/^Test split: 25 images/m);
    const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ time: 4, width: 96, height: 72 });
    expect(config.steps).toBeUndefined();

    // a longer budget on resume: it says how the schedule changes. Longer than the clock the run recorded, which
    // passes 4 s by up to a slow step and the final validation on a loaded machine.
    const state = JSON.parse(readFileSync(path.join(out, 'checkpoints', 'last', 'state.json'), 'utf8'));
    const longer = Math.max(6, Math.ceil(state.seconds as number) + 2);
    const resumed = await litter([
      'train',
      '--resume',
      '--out',
      out,
      '--time',
      `${longer}s`,
      '--backend',
      'wasm',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(
      new RegExp(`^training lite on .*, resuming at \\d+s \\(step \\d+\\) of ${longer}s$`, 'm'),
    );
    expect(resumed.stdout).toMatch(
      new RegExp(`^schedule: length 4s -> ${longer}s: .*the learning rate is now`, 'm'),
    );

    // evaluate: the test split of its own dataset by default
    const own = await litter(['evaluate', out, '--backend', 'wasm', '--json']);
    expect(own.code, own.stderr).toBe(0);
    expect(JSON.parse(own.stdout)).toMatchObject({ split: 'test', images: 25, unknownClasses: [] });

    // another dataset where Cube is called Box: the run does not know Box, and never sees a Cube there
    const other = path.join(work, 'renamed');
    cpSync(dataset, other, { recursive: true });
    rmSync(path.join(other, 'labels.litter-cache'), { force: true });
    const labels = JSON.parse(readFileSync(path.join(other, 'labels.json'), 'utf8')) as {
      meshes: Record<string, unknown>;
    }[];
    let boxes = 0;
    for (const entry of labels) {
      if (!entry.meshes.Cube) continue;
      entry.meshes.Box = entry.meshes.Cube;
      delete entry.meshes.Cube;
      boxes++;
    }
    writeFileSync(path.join(other, 'labels.json'), JSON.stringify(labels));
    const json = await litter(['evaluate', out, other, '--backend', 'wasm', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      split: 'all',
      images: 75,
      unknownClasses: [{ name: 'Box', images: boxes }],
      absentClasses: ['Cube'],
    });
    const table = await litter(['evaluate', out, other, '--backend', 'wasm']);
    expect(table.stdout).toContain(`class Box (visible in ${boxes} images) is not one the run knows`);
    expect(table.stdout).toMatch(/the run's class Cube never appears in /);
  });

  it('prints the chosen size and the default length in its first lines', async () => {
    const out = path.join(work, 'plain');
    const result = await litter([
      'train',
      dataset,
      '--steps',
      '1',
      '--width',
      '48',
      '--batch-size',
      '8',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n');
    // --width alone: the height follows the images' aspect ratio; --steps: no progressive resizing
    expect(lines[1]).toMatch(
      /^input: 48x36 \(the images are 96x72: their aspect ratio in [\d,]+ pixels for \d+ cores?/,
    );
    expect(lines[2]).toBe('length: 1 steps');
  });
});
