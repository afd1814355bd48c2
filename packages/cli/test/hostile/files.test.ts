// The user's files through the built CLI: litter writes only into run directories it created and cache files it
// wrote, deletes nothing else, lets one process write a run at a time, and checks every file it reads back.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../../test/built.js';
import { cleanUp, copyDataset, expectOneLine, run, SMALL, snapshot, workDir } from './_hostile.js';

let dir: string;
let dataset: string;
/** A trained run with a box head (for predict --annotate), copied before each test damages it. */
let trained: string;

beforeAll(async () => {
  ensureBuilt();
  dir = workDir();
  dataset = copyDataset(dir);
  trained = path.join(dir, 'trained');
  const result = await run(['train', dataset, ...SMALL, '--steps', '4', '--boxes', '--out', trained], {
    seconds: 180,
  });
  expect(result.code, result.stderr).toBe(0);
}, 200_000);
afterAll(() => cleanUp());

/** A copy of the trained run. */
function runCopy(): string {
  const target = path.join(workDir(), 'run');
  copyTree(trained, target);
  return target;
}
function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) copyTree(source, path.join(to, entry.name));
    else copyFileSync(source, path.join(to, entry.name));
  }
}
const editJson = (file: string, edit: (value: Record<string, unknown>) => unknown) =>
  writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')))));

describe('--cache-path never replaces or deletes what litter did not write', () => {
  it.each([
    ['train', 'labels.json', /refused: it is the dataset's labels\.json.*another --cache-path/],
    ['cache build', '0-0y-1p.png', /refused: it is the dataset's image 0-0y-1p\.png/],
    ['cache clear', '0-0y-1p.png', /refused: it is the dataset's image 0-0y-1p\.png/],
    ['cache build', 'notes.txt', /refused: it is not a litter cache/],
    ['cache clear', 'notes.txt', /refused: it is not a litter cache/],
  ])('%s --cache-path DATASET/%s', async (command, file, message) => {
    const ds = copyDataset(workDir());
    writeFileSync(path.join(ds, 'notes.txt'), 'my notes');
    const before = snapshot(ds);
    const out = path.join(workDir(), 'run');
    const args =
      command === 'train'
        ? ['train', ds, ...SMALL, '--steps', '1', '--out', out]
        : [...command.split(' '), ds];
    const result = await run([...args, '--cache-path', path.join(ds, file)]);
    expectOneLine(result, message);
    expect(result.stderr).toContain(path.join(ds, file));
    expect(snapshot(ds)).toEqual(before);
  });
});

describe('train --out writes only into a run directory litter created', () => {
  it('refuses a folder with other files, with or without --overwrite, and the dataset folder', async () => {
    const home = path.join(workDir(), 'home');
    mkdirSync(path.join(home, 'charts'), { recursive: true });
    mkdirSync(path.join(home, 'checkpoints'));
    writeFileSync(path.join(home, 'charts', 'mine.png'), 'mine');
    writeFileSync(path.join(home, 'config.json'), '{"mine": true}');
    const before = snapshot(home);
    const datasetBefore = snapshot(dataset);
    for (const out of [home, dataset]) {
      for (const extra of [[], ['--overwrite']]) {
        const result = await run(['train', dataset, ...SMALL, '--steps', '1', '--out', out, ...extra]);
        expectOneLine(
          result,
          /the run directory .* is refused: it is not empty and litter did not create it \(no \.litter-run file\)/,
        );
      }
    }
    expect(snapshot(home)).toEqual(before);
    expect(snapshot(dataset)).toEqual(datasetBefore);
  });

  it('--overwrite of its own run deletes that run, not the user files put into the folder', async () => {
    const out = runCopy();
    writeFileSync(path.join(out, 'my-notes.txt'), 'mine');
    const refused = await run(['train', dataset, ...SMALL, '--steps', '1', '--out', out]);
    expectOneLine(refused, /already holds a run: resume it \(--resume\)/);
    const result = await run(['train', dataset, ...SMALL, '--steps', '1', '--out', out, '--overwrite']);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'my-notes.txt'), 'utf8')).toBe('mine');
  });

  it('lets one of two trains into the same new --out write it', async () => {
    const out = path.join(workDir(), 'shared');
    const args = ['train', dataset, ...SMALL, '--steps', '6', '--out', out, '--json'];
    const results = await Promise.all([run(args, { seconds: 180 }), run(args, { seconds: 180 })]);
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map((r) => r.stderr).join('\n')).toEqual([0, 1]);
    const loser = results.find((r) => r.code === 1)!;
    expectOneLine(loser, /is being written by another litter process \(pid \d+\)|already holds a run/);
    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"step"') && !line.includes('validation'));
    expect(new Set(steps).size).toBe(steps.length); // no interleaved duplicates
  }, 200_000);

  it('removes the checkpoint folders that killed writers left', async () => {
    const out = runCopy();
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout;
    const dead = path.join(out, 'checkpoints', `last.tmp-${gone}-0123abcd`);
    mkdirSync(dead);
    writeFileSync(path.join(dead, 'weights.bin'), Buffer.alloc(1024));
    const result = await run([
      'train',
      dataset,
      ...SMALL,
      '--steps',
      '5',
      '--boxes',
      '--out',
      out,
      '--resume',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(dead)).toBe(false);
  });
});

describe('litter report writes a run only when no other process does', () => {
  it('refuses a run whose lock a live process holds, and changes nothing in it', async () => {
    const out = runCopy();
    const holder = spawn('sleep', ['60']);
    try {
      const lock = { pid: holder.pid, host: hostname(), started: '', token: 'x' };
      writeFileSync(path.join(out, '.litter-lock'), JSON.stringify(lock));
      const before = snapshot(out);
      const result = await run(['report', out]);
      expectOneLine(result, new RegExp(`is being written by another litter process \\(pid ${holder.pid}\\)`));
      expect(snapshot(out)).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
    }
    // Once the holder is gone its lock is taken over, and the report is written.
    const result = await run(['report', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
  });
});

describe('predict --annotate never replaces a file', () => {
  it('writes next to its inputs and earlier outputs under new names', async () => {
    const out = path.join(workDir(), 'annotated');
    mkdirSync(out);
    const inputs = ['0-0y-1p.png', '1-1y-1p.png'].map((name) => {
      copyFileSync(path.join(dataset, name), path.join(out, name));
      return path.join(out, name);
    });
    writeFileSync(path.join(out, '0-0y-1p-2.png'), 'an earlier file of mine');
    const before = snapshot(out);
    const result = await run([
      'predict',
      trained,
      ...inputs,
      '--annotate',
      out,
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const after = snapshot(out);
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash);
    expect(Object.keys(after).sort()).toEqual([
      '0-0y-1p-2.png',
      '0-0y-1p-3.png',
      '0-0y-1p.png',
      '1-1y-1p-2.png',
      '1-1y-1p.png',
    ]);
    const dsRefused = await run(['predict', trained, inputs[0]!, '--annotate', dataset, '--backend', 'wasm']);
    expect(dsRefused.code).toBe(2);
    expect(dsRefused.stderr).toMatch(/is a dataset folder \(it has labels\.json\)/);
  });
});

describe("evaluate on a dataset lacking one of the run's classes", () => {
  it('warns, naming the class', async () => {
    const other = copyDataset(workDir(), 'no-sphere');
    const labels = path.join(other, 'labels.json');
    const entries = JSON.parse(readFileSync(labels, 'utf8')) as { meshes: Record<string, unknown> }[];
    for (const entry of entries) delete entry.meshes.Sphere;
    writeFileSync(labels, JSON.stringify(entries));
    const result = await run(['evaluate', trained, other, '--split', 'all', '--backend', 'wasm']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/warning: class Sphere of the run is in no image of the all split/);
  });
});

describe('predict with one bad image among many', () => {
  it('prints the others, then names the bad one in one line (exit 1)', async () => {
    const folder = workDir();
    const bad = path.join(folder, 'broken.png');
    const png = readFileSync(path.join(dataset, '0-0y-1p.png'));
    writeFileSync(bad, png.subarray(0, png.length - 100));
    const good = [path.join(dataset, '0-0y-1p.png'), path.join(dataset, '1-1y-1p.png')];
    const result = await run(['predict', trained, good[0]!, bad, good[1]!, '--json', '--backend', 'wasm']);
    expectOneLine(result, /1 image could not be read and was left out: .*broken\.png/);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { image: string });
    expect(lines.map((line) => line.image)).toEqual(good);
  });
});

describe('files read back from a run are checked', () => {
  const state = (out: string) => path.join(out, 'checkpoints', 'last', 'state.json');
  it.each([
    ['state.json {}', (out: string) => writeFileSync(state(out), '{}'), /state\.json is damaged \(format: /],
    [
      'state.json "step": "abc"',
      (out: string) => editJson(state(out), (s) => ({ ...s, step: 'abc' })),
      /state\.json is damaged \(step: /,
    ],
    [
      'config.json []',
      (out: string) => writeFileSync(path.join(out, 'config.json'), '[]'),
      /config\.json is damaged/,
    ],
  ])('resume with %s is one line naming the file, and the run is unchanged', async (_, damage, message) => {
    const out = runCopy();
    damage(out);
    const before = snapshot(out);
    const result = await run([
      'train',
      dataset,
      ...SMALL,
      '--steps',
      '8',
      '--boxes',
      '--out',
      out,
      '--resume',
    ]);
    expectOneLine(result, message);
    const after = snapshot(out);
    for (const file of ['metrics.jsonl', 'config.json', 'checkpoints/last/state.json']) {
      expect(after[file], file).toBe(before[file]);
    }
  });

  it('thresholds ["x", null, 7] stop predict before it prints anything', async () => {
    const out = runCopy();
    for (const kind of ['best', 'last']) {
      const file = path.join(out, 'checkpoints', kind, 'state.json');
      if (existsSync(file)) editJson(file, (s) => ({ ...s, thresholds: ['x', null, 7] }));
    }
    const result = await run(['predict', out, path.join(dataset, '0-0y-1p.png'), '--backend', 'wasm']);
    expectOneLine(result, /state\.json is damaged \(thresholds\.0: /);
    expect(result.stdout).toBe('');
  });

  it('weights of the right length but other bytes are refused (checksum), naming weights.bin', async () => {
    const out = runCopy();
    const weights = path.join(out, 'checkpoints', 'best', 'weights.bin');
    const bytes = readFileSync(weights);
    bytes[100]! ^= 0x01;
    writeFileSync(weights, bytes);
    const result = await run(['evaluate', out, '--backend', 'wasm']);
    expectOneLine(result, /weights\.bin does not match the checksum in model\.json/);
  });
});

describe('NaN weights', () => {
  /** NaN in every weight of a checkpoint, with a checksum that matches (as a diverged run would save them). */
  function poison(out: string, kind: 'best' | 'last') {
    const folder = path.join(out, 'checkpoints', kind);
    const weights = Buffer.alloc(readFileSync(path.join(folder, 'weights.bin')).length);
    for (let i = 0; i + 4 <= weights.length; i += 4) weights.writeFloatLE(Number.NaN, i);
    writeFileSync(path.join(folder, 'weights.bin'), weights);
    editJson(path.join(folder, 'model.json'), (m) => ({
      ...m,
      litterWeightsSha256: createHash('sha256').update(weights).digest('hex'),
    }));
  }

  it('evaluate, report and predict stop with one line; resume does not call them good', async () => {
    const out = runCopy();
    poison(out, 'best');
    poison(out, 'last');
    const nan = /weights\.bin holds \d+ NaN or infinite weights/;
    expectOneLine(await run(['evaluate', out, '--backend', 'wasm'], { seconds: 60 }), nan);
    expectOneLine(await run(['report', out, '--backend', 'wasm'], { seconds: 60 }), nan);
    const predict = await run(['predict', out, path.join(dataset, '0-0y-1p.png'), '--backend', 'wasm']);
    expectOneLine(predict, nan);
    expect(predict.stdout).not.toContain('null');
    const resume = await run([
      'train',
      dataset,
      ...SMALL,
      '--steps',
      '8',
      '--boxes',
      '--out',
      out,
      '--resume',
    ]);
    expectOneLine(resume, nan);
    expect(resume.stderr).not.toContain('last good');
  });
});
