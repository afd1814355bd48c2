// `pnpm bench:render`: (1) renders/s of `litter render` beside shared/tools/render_scenes.py with the same
// settings in the same run, alternating, and (2) what rendered scenes are worth: `litter train` on blender-five's
// scenes 0-7 against 0-7 plus N rendered scenes (scenes 8 and 9 held out, the same steps), with the rendered
// scenes labelled by pixels and by projection, each run also evaluated on freshly rendered held-out scenes.
// Not a test.
//
// ratio: renders/s ours / anchor (wall); cpuRatio: CPU seconds anchor / ours (above 1: ours needs less CPU).
// --workers 1,2,default: litter render once per value in each round (`--workers N`, or litter's default).
//
//   node packages/render/bench/render.mjs [--parts speed,accuracy] [--rounds 2] [--speed-scenes 4] [--workers default]
//     [--views 25] [--width 160] [--height 120] [--samples 8] [--objects Cube,Sphere,Can,Cone,Torus]
//     [--scenes 40] [--scene-views 10] [--held-out 6] [--steps 300] [--train-size 80x60]
//     [--fixture ../shared/fixtures/blender-five] [--work DIR]
import { execFile, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { relabel } from '../dist/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: 'speed,accuracy' },
    rounds: { type: 'string', default: '2' },
    'speed-scenes': { type: 'string', default: '4' },
    workers: { type: 'string', default: 'default' },
    views: { type: 'string', default: '25' },
    width: { type: 'string', default: '160' },
    height: { type: 'string', default: '120' },
    samples: { type: 'string', default: '8' },
    objects: { type: 'string', default: 'Cube,Sphere,Can,Cone,Torus' },
    scenes: { type: 'string', default: '40' },
    'scene-views': { type: 'string', default: '10' },
    'held-out': { type: 'string', default: '6' },
    steps: { type: 'string', default: '300' },
    'train-size': { type: 'string', default: '80x60' },
    fixture: { type: 'string', default: path.join(root, '../shared/fixtures/blender-five') },
    script: { type: 'string', default: path.join(root, '../shared/tools/render_scenes.py') },
    work: { type: 'string' },
  },
});
const litterBin = path.join(root, 'packages/cli/dist/bin.js');
const work = values.work ?? mkdtempSync(path.join(os.tmpdir(), 'litter-bench-render-'));
mkdirSync(work, { recursive: true });
const parts = values.parts.split(',');
const print = (row) => console.log(JSON.stringify(row));

/** GNU time, for the CPU seconds of a whole process tree (Node and every Blender it waited for). */
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
let timed = 0;

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const cpuFile = gnuTime && path.join(work, `cpu-${process.pid}-${timed++}.txt`);
    const [file, argv] = cpuFile
      ? [gnuTime, ['-f', '%U %S', '-o', cpuFile, command, ...args]]
      : [command, args];
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0)
        reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}`));
      else {
        const cpu = cpuFile
          ? readFileSync(cpuFile, 'utf8')
              .trim()
              .split('\n')
              .at(-1)
              .split(' ')
              .reduce((sum, t) => sum + Number(t), 0)
          : Number.NaN;
        resolve({ stdout, stderr, seconds, cpuSeconds: cpu });
      }
    });
  });
}
const litter = (args) => run(process.execPath, [litterBin, ...args], { env: { ...process.env, CI: '1' } });
const jsonLines = (text) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

/** (1) The same renders both ways: S scenes x 25 views (render_scenes.py's --steps 4 makes 5 x 5). */
async function speed() {
  const steps = Math.round(Math.sqrt(Number(values.views))) - 1;
  if ((steps + 1) ** 2 !== Number(values.views))
    throw new Error('--views must be a square (render_scenes.py makes (steps+1)^2)');
  const common = {
    scenes: values['speed-scenes'],
    width: values.width,
    height: values.height,
    samples: values.samples,
  };
  const rows = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    const seedOut = path.join(work, `speed-seed-${round}`);
    rmSync(seedOut, { recursive: true, force: true });
    const seed = await run('blender', [
      ...['-b', '--factory-startup', '--python-exit-code', '1', '--python', values.script, '--'],
      ...[
        '--out',
        seedOut,
        '--scenes',
        common.scenes,
        '--steps',
        String(steps),
        '--res',
        common.width,
        common.height,
      ],
      ...['--samples', common.samples, '--seed', '1', '--meshes', values.objects],
    ]);
    const seedLoad = os.loadavg()[0];
    const images = JSON.parse(readFileSync(path.join(seedOut, 'labels.json'), 'utf8')).length;
    for (const workers of values.workers.split(',')) {
      const oursOut = path.join(work, `speed-ours-${round}-${workers}`);
      rmSync(oursOut, { recursive: true, force: true });
      const ours = await litter([
        'render',
        oursOut,
        ...[
          '--scenes',
          common.scenes,
          '--views',
          values.views,
          '--width',
          common.width,
          '--height',
          common.height,
        ],
        ...['--samples', common.samples, '--seed', '1', '--objects', values.objects, '--json'],
        ...(workers === 'default' ? [] : ['--workers', workers]),
      ]);
      const events = jsonLines(ours.stdout);
      const end = events.at(-1);
      const row = {
        part: 'speed',
        round,
        workers: `${events[0].workers} x ${events[0].threadsPerWorker} threads${workers === 'default' ? ' (default)' : ''}`,
        renders: images,
        seedRendersPerSecond: images / seed.seconds,
        oursRendersPerSecond: end.images / ours.seconds,
        seedSeconds: seed.seconds,
        oursSeconds: ours.seconds,
        // CPU seconds of each whole command (user + system, every process): what the load does not change much.
        seedCpuSeconds: seed.cpuSeconds,
        oursCpuSeconds: ours.cpuSeconds,
        load: [seedLoad, os.loadavg()[0]],
      };
      row.ratio = row.oursRendersPerSecond / row.seedRendersPerSecond;
      row.cpuRatio = row.seedCpuSeconds / row.oursCpuSeconds;
      print(row);
      rows.push(row);
    }
  }
  return rows;
}

/** A dataset folder of blender-five's renders and labels plus another render's, joined (hard links). */
function joined(name, extra, extraLabels) {
  const dir = path.join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  const labels = JSON.parse(readFileSync(path.join(values.fixture, 'labels.json'), 'utf8'));
  const add = (from, entries) => {
    for (const entry of entries) {
      try {
        linkSync(path.join(from, entry.image), path.join(dir, entry.image));
      } catch {
        cpSync(path.join(from, entry.image), path.join(dir, entry.image));
      }
    }
  };
  add(values.fixture, labels);
  let all = labels;
  if (extra) {
    const more = JSON.parse(readFileSync(path.join(extra, extraLabels), 'utf8'));
    add(extra, more);
    all = [...labels, ...more];
  }
  writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(all));
  return dir;
}

/** Trains with the same recipe and steps; best held-out (scenes 8, 9) exact match, then evaluations elsewhere. */
async function train(name, dataset, heldOut) {
  const [w, h] = values['train-size'].split('x');
  const runDir = path.join(work, `run-${name}`);
  rmSync(runDir, { recursive: true, force: true });
  const result = await litter([
    'train',
    dataset,
    ...['--val-scenes', '8,9', '--width', w, '--height', h, '--steps', values.steps],
    ...['--validate-every', '25', '--best-metric', 'exactMatch', '--out', runDir, '--json'],
  ]);
  const validations = jsonLines(result.stdout).filter((e) => e.event === 'validation');
  const best = Math.max(...validations.map((v) => v.exactMatch));
  const row = {
    part: 'accuracy',
    train: name,
    steps: Number(values.steps),
    bestHeldOutExactMatch: best,
    finalHeldOutExactMatch: validations.at(-1)?.exactMatch,
    seconds: result.seconds,
  };
  for (const [rule, labels] of Object.entries(heldOut)) {
    const evaluation = await litter(['evaluate', runDir, labels, '--json']);
    row[`renderedHeldOut_${rule}`] = JSON.parse(evaluation.stdout).exactMatch;
  }
  print(row);
  return row;
}

async function accuracy() {
  const rendered = path.join(work, 'rendered');
  const held = path.join(work, 'held-out');
  const flags = [
    '--width',
    values.width,
    '--height',
    values.height,
    '--samples',
    values.samples,
    '--objects',
    values.objects,
  ];
  for (const [dir, scenes, seed, prefix] of [
    [rendered, values.scenes, '101', 'r'],
    [held, values['held-out'], '909', 'h'],
  ]) {
    if (existsSync(path.join(dir, 'labels.json')) && !existsSync(path.join(dir, '.litter-render/tmp')))
      continue;
    const args = existsSync(dir)
      ? ['render', '--resume', dir, '--json']
      : [
          'render',
          dir,
          '--scenes',
          scenes,
          '--views',
          values['scene-views'],
          '--seed',
          seed,
          '--prefix',
          prefix,
          ...flags,
          '--json',
        ];
    const result = await litter(args);
    const end = jsonLines(result.stdout).at(-1);
    print({
      part: 'render',
      dir,
      images: end.images,
      seconds: result.seconds,
      rendersPerSecond: end.rendered / result.seconds,
    });
  }
  for (const dir of [rendered, held]) {
    await relabel(dir, { visibility: 'projection', file: 'labels-projection.json' });
    await relabel(dir, { visibility: 'pixels', file: 'labels-pixels.json' });
  }
  const heldOut = {};
  for (const rule of ['pixels', 'projection']) {
    // `litter evaluate` takes a folder with labels.json: one folder per rule, the images linked.
    const dir = path.join(work, `held-out-${rule}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const file of readdirSync(held).filter((f) => f.endsWith('.png')))
      linkSync(path.join(held, file), path.join(dir, file));
    cpSync(path.join(held, `labels-${rule}.json`), path.join(dir, 'labels.json'));
    heldOut[rule] = dir;
  }
  const rows = [];
  rows.push(await train('blender-five 0-7', joined('five', undefined), heldOut));
  for (const rule of ['pixels', 'projection']) {
    rows.push(
      await train(
        `0-7 + ${values.scenes} rendered (${rule})`,
        joined(`five-plus-${rule}`, rendered, `labels-${rule}.json`),
        heldOut,
      ),
    );
  }
  return rows;
}

for (const [flag, file] of [
  ['--script', values.script],
  ['--fixture', path.join(values.fixture, 'labels.json')],
]) {
  if (!existsSync(file))
    throw new Error(`${file} does not exist: pass ${flag} (shared/ sits beside the repository)`);
}
console.error(`bench:render in ${work}`);
const blenderVersion = await new Promise((resolve) =>
  execFile('blender', ['--version'], (_, out) => resolve(String(out).split('\n')[0])),
);
print({ blender: blenderVersion, cpus: os.availableParallelism(), load: os.loadavg()[0] });
if (parts.includes('speed')) {
  const rows = await speed();
  const sum = (list, key) => list.reduce((s, r) => s + r[key], 0);
  for (const workers of new Set(rows.map((r) => r.workers))) {
    const mine = rows.filter((r) => r.workers === workers);
    print({
      part: 'speed-summary',
      workers,
      rounds: mine.length,
      seedRendersPerSecond: sum(mine, 'renders') / sum(mine, 'seedSeconds'),
      oursRendersPerSecond: sum(mine, 'renders') / sum(mine, 'oursSeconds'),
      ratios: mine.map((r) => r.ratio),
      cpuRatios: mine.map((r) => r.cpuRatio),
      // Over all rounds: seconds summed (a noisy round weighs what it took).
      ratio: sum(mine, 'seedSeconds') / sum(mine, 'oursSeconds'),
      cpuRatio: sum(mine, 'seedCpuSeconds') / sum(mine, 'oursCpuSeconds'),
    });
  }
}
if (parts.includes('accuracy')) await accuracy();
if (!values.work) rmSync(work, { recursive: true, force: true });
