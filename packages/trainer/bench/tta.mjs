// `pnpm bench:tta [LABELS...]`: time to accuracy of `litter train`'s own path beside the PyTorch anchor. For each
// dataset (default ../shared/fixtures/blender-five) and each budget (default 2 and 10 minutes) it runs
//   litter train LABELS --time BUDGET --val-scenes 8,9 --json    (the built CLI: every other setting its default)
//   /usr/bin/python3 ../shared/anchors/torch_lite_recipe.py accuracy --labels LABELS --budget-s BUDGET --val-scenes 8,9
// one after the other on the same cores, and prints per run the held-out exact match at threshold 0.5 at the end
// of the budget (litter: its final evaluation, i.e. the best checkpoint; PyTorch: the best of its evaluations)
// and the seconds until held-out exact match first reached 0.85 and 0.90 (litter: at its validations, 10 a
// run; PyTorch: every 10 s). Both clocks start at the first step and count the evaluations. Not a test.
//
//   node packages/trainer/bench/tta.mjs [LABELS...] [--budgets 120,600] [--val-scenes 8,9] [--targets 0.85,0.9]
//     [--only litter|torch] [--repeat 1] [--args "extra litter train flags"]
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    budgets: { type: 'string', default: '120,600' },
    'val-scenes': { type: 'string', default: '8,9' },
    targets: { type: 'string', default: '0.85,0.9' },
    only: { type: 'string' },
    repeat: { type: 'string', default: '1' },
    args: { type: 'string', default: '' },
    // ../shared next to the repository (/work/main), else the worktree's (/work/wt/NAME) parent's parent.
    anchor: {
      type: 'string',
      default:
        [path.join(root, '../shared'), path.join(root, '../../shared')]
          .map((dir) => path.join(dir, 'anchors/torch_lite_recipe.py'))
          .find((file) => existsSync(file)) ?? path.join(root, '../shared/anchors/torch_lite_recipe.py'),
    },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const datasets = (
  positionals.length > 0 ? positionals : [path.join(root, '../shared/fixtures/blender-five')]
).map((p) => path.resolve(p));
const budgets = values.budgets.split(',').map(Number);
const targets = values.targets.split(',').map(Number);
const valScenes = values['val-scenes'];
const extra = values.args.split(' ').filter(Boolean);
const bin = path.join(root, 'packages/cli/dist/bin.js');

/** Calls `onObject` with each line a child prints to `stream`, parsed as JSON (blank lines skipped). */
const eachJsonLine = (stream, onObject) =>
  createInterface({ input: stream }).on('line', (line) => {
    if (line.trim()) onObject(JSON.parse(line));
  });

/** First seconds at which `points` (`{ seconds, exactMatch }`, in order) reached each target. */
const reachedAt = (points) =>
  targets.map((target) => points.find((p) => p.exactMatch >= target)?.seconds ?? null);

/** `litter train` for `budget` seconds: its final held-out exact match and its validations. */
function runLitter(labels, budget) {
  const out = mkdtempSync(path.join(os.tmpdir(), 'litter-tta-'));
  const args = [
    bin,
    'train',
    labels,
    '--time',
    `${budget}s`,
    '--val-scenes',
    valScenes,
    '--out',
    out,
    '--overwrite',
    '--json',
    ...extra,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const points = [];
    let end;
    let setup;
    eachJsonLine(child.stdout, (event) => {
      if (event.event === 'setup') setup = event;
      if (event.event === 'validation') {
        points.push({ seconds: event.seconds, exactMatch: event.exactMatch });
        console.log(
          `  litter ${budget}s  ${event.seconds.toFixed(1).padStart(6)} s  step ${String(event.step).padStart(5)}  ` +
            `held-out exact match ${event.exactMatch.toFixed(3)}`,
        );
      }
      if (event.event === 'end') end = event;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      rmSync(out, { recursive: true, force: true });
      if (code !== 0 || !end) return reject(new Error(`litter train exited with ${code}`));
      resolve({ final: end.validation.exactMatch, points, steps: end.step, setup });
    });
  });
}

/** The anchor for `budget` seconds: the best of its evaluations, and its evaluations. */
function runTorch(labels, budget) {
  if (!existsSync(values.anchor)) return Promise.resolve({ skipped: `${values.anchor} not found` });
  const args = [
    values.anchor,
    'accuracy',
    '--labels',
    path.join(labels, 'labels.json'),
    '--budget-s',
    String(budget),
    '--val-scenes',
    valScenes,
  ];
  return new Promise((resolve) => {
    const points = [];
    const child = execFile(values.python, args, { maxBuffer: 1 << 24 }, (error, stdout) => {
      const last = stdout.trim().split('\n').at(-1);
      if (error || !last) {
        resolve({
          skipped: `torch_lite_recipe.py failed (${error?.message.split('\n')[0]}); it needs python3-torch`,
        });
        return;
      }
      const summary = JSON.parse(last);
      resolve({ final: summary.best_exact, points, steps: summary.steps });
    });
    eachJsonLine(child.stdout, (row) => {
      if (row.val_exact === undefined) return;
      points.push({ seconds: row.train_s, exactMatch: row.val_exact });
      console.log(
        `  torch  ${budget}s  ${row.train_s.toFixed(1).padStart(6)} s  step ${String(row.step).padStart(5)}  ` +
          `held-out exact match ${row.val_exact.toFixed(3)} (${row.size})`,
      );
    });
  });
}

const started = new Date();
const rows = [];
for (const labels of datasets) {
  for (let r = 0; r < Number(values.repeat); r++) {
    for (const budget of budgets) {
      for (const who of ['litter', 'torch']) {
        if (values.only && values.only !== who) continue;
        const load = os.loadavg()[0].toFixed(1);
        console.log(`${who} on ${path.basename(labels)}, ${budget} s (load average ${load}):`);
        const result = await (who === 'litter' ? runLitter(labels, budget) : runTorch(labels, budget));
        rows.push({ dataset: path.basename(labels), budget, who, load, ...result });
      }
    }
  }
}

const seconds = (s) => (s === null || s === undefined ? '-' : `${Math.round(s)}`);
console.log(
  `\nheld-out exact match at 0.5 (scenes ${valScenes} held out); ${os.cpus()[0]?.model ?? 'CPU'}, ` +
    `${os.availableParallelism()} cores, Node ${process.versions.node}, ${started.toISOString().slice(0, 16)}\n`,
);
console.log(
  `| dataset | run | budget | held-out exact match | ${targets.map((t) => `s to ${t}`).join(' | ')} | steps | load at start |`,
);
console.log(`|---|---|---|---|${targets.map(() => '---|').join('')}---|---|`);
for (const row of rows) {
  const name = row.who === 'litter' ? '`litter train --time`' : 'PyTorch torch_lite_recipe.py';
  if (row.skipped) {
    console.log(`| ${row.dataset} | ${name} | ${row.budget} s | skipped: ${row.skipped} | | | | |`);
    continue;
  }
  console.log(
    `| ${row.dataset} | ${name} | ${row.budget} s | ${row.final.toFixed(3)} | ` +
      `${reachedAt(row.points).map(seconds).join(' | ')} | ${row.steps} | ${row.load} |`,
  );
}
