import { execFile } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBlender } from '@litter/render';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { main } from '../src/main.js';
import { bin, jsonLines, litter, repoRoot } from './_litter.js';
import { memoryIo } from './_memory-io.js';

// `litter render` end to end with real Blender (skipped with a message where there is none): the issue's
// tiny render, then a SIGKILL and --resume, inspect and train on the result, bad scene files.
const blender = await findBlender().catch((error: Error) => {
  console.warn(`litter render tests: skipped, no usable Blender (${error.message})`);
  return undefined;
});
const TINY = [
  '--scenes',
  '2',
  '--views',
  '4',
  '--width',
  '48',
  '--height',
  '36',
  '--samples',
  '2',
  '--seed',
  '7',
  '--objects',
  'Cube,Sphere,Can',
];

let work: string;
beforeAll(() => {
  ensureBuilt();
  work = mkdtempSync(path.join(tmpdir(), 'litter-cli-render-'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const read = (dir: string, file: string) => readFileSync(path.join(dir, file));
const pngs = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .sort();

/** Processes whose command line mentions `text` (Linux: /proc), to catch Blenders left running. */
function processesMentioning(text: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('litter render: bad input', () => {
  it('names every problem of a bad scene file on one line, exit 1, before Blender starts', async () => {
    const file = path.join(work, 'bad.json');
    writeFileSync(file, JSON.stringify({ scenes: -1, camera: { pitch: 100 }, colour: 'red' }));
    const result = await litter(['render', path.join(work, 'never'), '--scene', file], {
      env: { LITTER_BLENDER: process.execPath },
    });
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^@litter\/render: bad\.json has 3 problems: /);
    expect(lines[0]).toMatch(/scenes = -1 must be >= 1/);
    expect(lines[0]).toMatch(/camera\.pitch = 100 /);
    expect(lines[0]).toMatch(/unknown key "colour"/);
    expect(existsSync(path.join(work, 'never'))).toBe(false);
  });

  it('usage errors exit 2: a bad shard, --resume with settings', async () => {
    const shard = await litter(['render', path.join(work, 'x'), '--shard', '3/2']);
    expect(shard.code).toBe(2);
    expect(shard.stderr).toMatch(/--shard must be I\/N/);
    const resume = await litter(['render', path.join(work, 'x'), '--resume', '--seed', '2']);
    expect(resume.code).toBe(2);
    expect(resume.stderr).toMatch(/--resume continues with the render's own settings; drop --seed/);
  });

  it('says how to install Blender when there is none', async () => {
    const result = await litter(['render', path.join(work, 'y')], {
      env: { PATH: '/nonexistent', LITTER_BLENDER: '' },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Blender was not found on PATH\. Install Blender 3\.3 or newer/);
  });
});

describe.skipIf(!blender)('litter render with Blender', () => {
  let reference: string;

  beforeAll(async () => {
    reference = path.join(work, 'reference');
    const result = await litter(['render', reference, ...TINY, '--coco']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/done: 8 images of 2 scenes in .*labels\.json and .*coco\.json/);
  });

  it('keeps finished scenes through a SIGKILL; --resume renders the rest, equal to an uninterrupted render', async () => {
    const out = path.join(work, 'killed');
    const killed = await litter(['render', out, ...TINY, '--workers', '1', '--json'], {
      onLine: (line, child) => {
        if (line.includes('"event":"scene"')) child.kill('SIGKILL');
      },
    });
    expect(killed.signal).toBe('SIGKILL');
    const finished = readdirSync(path.join(out, '.litter-render/scenes'));
    expect(finished).toHaveLength(1);
    if (existsSync(path.join(out, 'labels.json'))) {
      // Written only from finished scenes: whole scenes, every image there.
      const labels = JSON.parse(read(out, 'labels.json').toString()) as { image: string }[];
      expect(labels.length % 4).toBe(0);
      for (const entry of labels) expect(existsSync(path.join(out, entry.image))).toBe(true);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(processesMentioning(out), 'Blender outlived litter').toEqual([]);

    const resumed = await litter(['render', '--resume', out, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const events = jsonLines(resumed.stdout);
    expect(events[0]).toMatchObject({ event: 'begin', done: 1, scenes: 2, renders: 4, resumed: true });
    expect(events.at(-1)).toMatchObject({ event: 'end', stopped: 'done', images: 8, rendered: 4 });
    // The reference also wrote coco.json (--coco changes no labels).
    expect(read(out, 'labels.json').equals(read(reference, 'labels.json'))).toBe(true);
    for (const png of pngs(reference)) expect(read(out, png).equals(read(reference, png)), png).toBe(true);
  });

  it('--coco writes the same boxes as COCO annotations (pixels, from the top-left)', () => {
    const labels = JSON.parse(read(reference, 'labels.json').toString()) as {
      image: string;
      meshes: Record<string, { x1: number; y1: number; x2: number; y2: number }>;
    }[];
    const coco = JSON.parse(read(reference, 'coco.json').toString());
    expect(coco.categories.map((c: { name: string }) => c.name)).toEqual(['Cube', 'Sphere', 'Can']);
    expect(coco.images.map((i: { file_name: string }) => i.file_name)).toEqual(labels.map((e) => e.image));
    const boxes = labels.flatMap((e, i) => Object.entries(e.meshes).map(([name, b]) => ({ i, name, b })));
    expect(coco.annotations).toHaveLength(boxes.length);
    for (const [k, { i, name, b }] of boxes.entries()) {
      const a = coco.annotations[k];
      expect(a.image_id).toBe(coco.images[i].id);
      expect(coco.categories.find((c: { id: number }) => c.id === a.category_id).name).toBe(name);
      expect(a.bbox[0]).toBeCloseTo(b.x1 * 48, 3);
      expect(a.bbox[1]).toBeCloseTo((1 - b.y2) * 36, 3);
      expect(a.bbox[2]).toBeCloseTo((b.x2 - b.x1) * 48, 3);
    }
  });

  it('makes a dataset litter inspect accepts and litter train trains on', async () => {
    const inspect = await litter(['inspect', reference, '--json']);
    expect(inspect.code, inspect.stderr).toBe(0);
    const report = JSON.parse(inspect.stdout);
    expect(report).toMatchObject({ images: 8 });
    const run = path.join(work, 'run');
    const train = await litter([
      'train',
      reference,
      ...['--width', '24', '--height', '18', '--batch-size', '4', '--steps', '3', '--workers', '1'],
      ...['--backend', 'wasm', '--val-scenes', '1', '--out', run, '--json'],
    ]);
    expect(train.code, train.stderr).toBe(0);
    expect(jsonLines(train.stdout).at(-1)).toMatchObject({ event: 'end' });
    expect(existsSync(path.join(run, 'checkpoints/best/model.json'))).toBe(true);
  });

  it('shows a bar with renders/s and the ETA on a terminal', async () => {
    const capture = memoryIo({ isTTY: true, env: { PATH: process.env.PATH ?? '' } });
    const out = path.join(work, 'tty');
    const args = ['render', out, ...TINY, '--scenes', '1', '--workers', '1'];
    expect(await main(args, capture.io), capture.stderr).toBe(0);
    expect(capture.stdout).toMatch(/rendering 1 of 1 scenes x 4 views with Blender /);
    expect(capture.stderr).toContain('\u001b[?25l'); // the bar hides the cursor while it draws
    expect(capture.stderr).toMatch(/render 4\/4 \S+ \d+\.\d\d renders\/s \| ETA 0s/);
    // Every frame drawn has the ETA with its unit (`ETA 7` would be cli-progress's own token).
    const frames = capture.stderr.split('\u001b[1G').slice(1);
    expect(frames.length).toBeGreaterThan(1);
    for (const frame of frames) {
      expect(frame.split('\u001b')[0]).toMatch(/ETA (-|\d+s|\d+m\d\ds|\d+h\d\dm)$/);
    }
  });

  it("the README's Kubernetes Indexed Job and Slurm array render parts that merge into the unsharded render", async () => {
    const readme = readFileSync(path.join(repoRoot, 'packages/render/README.md'), 'utf8');
    const lines = readme.split('\n');
    // The Job's container command (a YAML plain scalar: its lines joined by spaces) and the merge after it.
    const start = lines.findIndex((line) => line.trim().startsWith('- part='));
    const end = lines.findIndex((line, i) => i >= start && line.trim().endsWith('fi'));
    const job = lines
      .slice(start, end + 1)
      .map((line) => line.trim().replace(/^- /, ''))
      .join(' ');
    const jobMerge = /# then: (litter render merge .*)/.exec(readme)![1]!;
    // The Slurm batch script and the merge job's --wrap.
    const batch = /```sh\n(#!\/bin\/sh\n#SBATCH[\s\S]*?)```/.exec(readme)![1]!;
    const arrayMerge = /--wrap '(litter render merge [^']*)'/.exec(readme)![1]!;

    const shim = path.join(work, 'bin');
    mkdirSync(shim, { recursive: true });
    writeFileSync(path.join(shim, 'litter'), `#!/bin/sh\nexec "${process.execPath}" "${bin}" "$@"\n`);
    chmodSync(path.join(shim, 'litter'), 0o755);
    const scene = {
      ...{ scenes: 2, views: 4, width: 48, height: 36, samples: 2, seed: 7 },
      objects: ['Cube', 'Sphere', 'Can'],
    };
    const sh = (script: string, root: string, env: Record<string, string>) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          'sh',
          ['-c', script.replaceAll('/data/', `${root}/`).replaceAll('/shared/', `${root}/`)],
          { env: { ...process.env, PATH: `${shim}:${process.env.PATH}`, CI: '1', ...env } },
          (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const systems = [
      {
        root: path.join(work, 'k8s'),
        render: job,
        merge: jobMerge,
        env: (i: number) => ({ JOB_COMPLETION_INDEX: String(i), JOB_COMPLETIONS: '2' }),
      },
      {
        root: path.join(work, 'slurm'),
        render: batch,
        merge: arrayMerge,
        env: (i: number) => ({
          SLURM_ARRAY_TASK_ID: String(i),
          SLURM_ARRAY_TASK_MIN: '0',
          SLURM_ARRAY_TASK_COUNT: '2',
        }),
      },
    ];
    for (const system of systems) {
      mkdirSync(path.join(system.root, 'parts'), { recursive: true });
      writeFileSync(path.join(system.root, 'scene.json'), JSON.stringify(scene));
      for (const i of [0, 1]) {
        const part = await sh(system.render, system.root, system.env(i));
        expect(part.code, part.stderr).toBe(0);
        expect(part.stdout).toMatch(new RegExp(`shard ${i + 1}/2 from `));
        expect(part.stdout).toMatch(/rendering 1 of 1 scenes \(shard/);
      }
      // A restarted pod or a requeued task finds its part and resumes it: nothing left to render.
      const again = await sh(system.render, system.root, system.env(0));
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/rendering 0 of 1 scenes \(shard 1\/2\) x 4 views, 1 finished before/);
      const merged = await sh(system.merge, system.root, {});
      expect(merged.code, merged.stderr).toBe(0);
      const renders = path.join(system.root, 'renders');
      expect(read(renders, 'labels.json').equals(read(reference, 'labels.json'))).toBe(true);
      for (const png of pngs(reference))
        expect(read(renders, png).equals(read(reference, png)), png).toBe(true);
    }
  }, 600_000);

  it('litter doctor reports the Blender it renders with', async () => {
    const result = await litter(['doctor', '--json']);
    expect(JSON.parse(result.stdout).blender).toMatchObject({ available: true, version: blender!.version });
  });
});
