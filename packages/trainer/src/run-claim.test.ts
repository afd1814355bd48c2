import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainerError } from './errors.js';
import { claimRunDir, isOwnRunDir, RUN_LOCK, RUN_MARKER } from './run-claim.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'litter-claim-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TrainerError);
  return (error as TrainerError).code;
}

/** The pid of a process that has exited. */
const deadPid = () =>
  Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
      .stdout,
  );

describe('claimRunDir', () => {
  it('creates a missing folder with its marker, and lets one claim write at a time', async () => {
    const dir = join(root, 'new', 'run');
    const claim = await claimRunDir(dir);
    expect(await isOwnRunDir(dir)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([RUN_LOCK, RUN_MARKER]);
    expect(await codeOf(claimRunDir(dir))).toBe('run-locked');
    await claim.release();
    expect(await readdir(dir)).toEqual([RUN_MARKER]);
    await (await claimRunDir(dir)).release();
  });

  it('refuses a non-empty folder litter did not create, with or without overwrite, touching nothing', async () => {
    const dir = join(root, 'home');
    await mkdir(join(dir, 'checkpoints'), { recursive: true });
    await writeFile(join(dir, 'config.json'), '{"mine": true}');
    await writeFile(join(dir, 'checkpoints', 'notes.txt'), 'mine');
    for (const options of [{}, { overwrite: true }]) {
      expect(await codeOf(claimRunDir(dir, options))).toBe('run-dir-refused');
    }
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe('{"mine": true}');
    expect((await readdir(dir)).sort()).toEqual(['checkpoints', 'config.json']);
    // A file is refused too; an empty folder is taken.
    await writeFile(join(root, 'file'), 'x');
    expect(await codeOf(claimRunDir(join(root, 'file')))).toBe('run-dir-refused');
    await mkdir(join(root, 'empty'));
    await (await claimRunDir(join(root, 'empty'))).release();
    expect(await isOwnRunDir(join(root, 'empty'))).toBe(true);
  });

  it('adopts a run written before the marker existed when resuming it', async () => {
    const dir = join(root, 'old-run');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), '{}');
    expect(await codeOf(claimRunDir(dir))).toBe('run-dir-refused');
    await (await claimRunDir(dir, { resume: true })).release();
    expect(await isOwnRunDir(dir)).toBe(true);
  });

  it('overwrite deletes the run entries of its own folder only; without it a run there is an error', async () => {
    const dir = join(root, 'own');
    await (await claimRunDir(dir)).release();
    await mkdir(join(dir, 'checkpoints', 'last'), { recursive: true });
    await writeFile(join(dir, 'config.json'), '{}');
    await writeFile(join(dir, 'my-notes.txt'), 'mine');
    expect(await codeOf(claimRunDir(dir))).toBe('invalid-options');
    await (await claimRunDir(dir, { overwrite: true })).release();
    expect((await readdir(dir)).sort()).toEqual([RUN_MARKER, 'my-notes.txt']);
  });

  it('takes over the lock of a killed process, not of a live one', async () => {
    const dir = join(root, 'locked');
    await (await claimRunDir(dir)).release();
    const lock = (pid: number) =>
      writeFile(join(dir, RUN_LOCK), JSON.stringify({ pid, host: hostname(), started: '', token: 'x' }));
    const sleeper = spawn('sleep', ['30']);
    try {
      await lock(sleeper.pid!);
      expect(await codeOf(claimRunDir(dir))).toBe('run-locked');
    } finally {
      sleeper.kill('SIGKILL');
    }
    await lock(deadPid());
    const claim = await claimRunDir(dir);
    expect(JSON.parse(await readFile(join(dir, RUN_LOCK), 'utf8')).pid).toBe(process.pid);
    await claim.release();
  });

  it('removes what killed writers left under checkpoints/, keeps what live ones write', async () => {
    const dir = join(root, 'temporaries');
    await (await claimRunDir(dir)).release();
    const checkpoints = join(dir, 'checkpoints');
    const dead = deadPid();
    const sleeper = spawn('sleep', ['30']);
    try {
      const stale = [
        `last.tmp-${dead}-0123abcd`,
        `.last.saving-${dead}-89abcdef`,
        `.best.old-${dead}-00000000`,
      ];
      const kept = [`last.tmp-${sleeper.pid}-0123abcd`, 'last', 'notes.tmp-1-x'];
      for (const name of [...stale, ...kept]) await mkdir(join(checkpoints, name), { recursive: true });
      await (await claimRunDir(dir, { resume: true })).release();
      expect((await readdir(checkpoints)).sort()).toEqual(kept.sort());
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
