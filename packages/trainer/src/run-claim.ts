/*
 * Who may write into a run directory: litter writes only into a folder it created (its marker file says so) or an
 * empty one, one process at a time (a lock file that a killed process does not leave stuck), and deletes only its
 * own entries of a run (RUN_FILES), never anything else in the folder.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '@litter/dataset';
import { TrainerError } from './errors.js';
import { clearRun, holdsRun, RUN_FILES } from './run-dir.js';

/** The marker file of a run directory that litter created: `{ "createdBy": "litter", ... }`. */
export const RUN_MARKER = '.litter-run';
/** The lock file of the process writing a run directory: `{ pid, host, started, token }`. */
export const RUN_LOCK = '.litter-lock';

/** What {@link claimRunDir} hands back: release it when done writing. */
export interface RunClaim {
  runDir: string;
  /** Removes the lock (if it is still this claim's). */
  release(): Promise<void>;
}

/** Options of {@link claimRunDir}. */
export interface ClaimOptions {
  /** Continue the run in the folder: it must hold one (a run from before markers is adopted). */
  resume?: boolean;
  /** Start over in a folder that holds a run of litter's: its run entries are deleted, nothing else. */
  overwrite?: boolean;
}

interface LockContent {
  pid: number;
  host: string;
  /** The process's start time (Linux: /proc/<pid>/stat field 22), to tell a reused pid from the holder. */
  started: string;
  token: string;
}

/** Locks held by this process (a second claim from the same process is refused like one from another). */
const heldHere = new Set<string>();

/**
 * Takes `runDir` for writing a run: creates it (with its marker) when missing, refuses a folder litter did not
 * create unless it is empty, takes the lock (refusing while another live process holds it, taking over the lock
 * of a killed one), removes the stale temporary folders of killed writers under `checkpoints/`, and for a new
 * run (not `resume`) clears litter's entries of an earlier run when `overwrite` is given (an error otherwise).
 *
 * @throws {TrainerError} `run-dir-refused`, `run-locked`, `invalid-options` (a run is there: resume or overwrite)
 * @example
 * const claim = await claimRunDir('runs/a', { overwrite: true });
 * try { ... } finally { await claim.release(); }
 */
export async function claimRunDir(runDir: string, options: ClaimOptions = {}): Promise<RunClaim> {
  await checkOwnership(runDir, options.resume ?? false);
  const release = await lock(runDir);
  try {
    if (!options.resume) {
      if ((await holdsRun(runDir)) && !options.overwrite) {
        throw new TrainerError(
          'invalid-options',
          `${runDir} already holds a run: resume it (--resume), choose another --out, or start over in it (--overwrite deletes that run's files, nothing else)`,
        );
      }
      await clearRun(runDir);
    }
    await removeStaleTemporaries(join(runDir, RUN_FILES.checkpoints));
  } catch (error) {
    await release();
    throw error;
  }
  return { runDir, release };
}

/** Whether `runDir` was created by litter (it has the marker file). */
export async function isOwnRunDir(runDir: string): Promise<boolean> {
  try {
    const marker = JSON.parse(await readFile(join(runDir, RUN_MARKER), 'utf8')) as { createdBy?: unknown };
    return marker.createdBy === 'litter';
  } catch {
    return false;
  }
}

async function writeMarker(runDir: string): Promise<void> {
  const marker = { createdBy: 'litter', format: 1, createdAt: new Date().toISOString() };
  await writeFile(join(runDir, RUN_MARKER), `${JSON.stringify(marker, null, 2)}\n`, { flag: 'wx' }).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    },
  );
}

/** Creates `runDir`, or accepts it when it is litter's or empty (or a pre-marker run being resumed). */
async function checkOwnership(runDir: string, resume: boolean): Promise<void> {
  const stats = await stat(runDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw refused(runDir, `it cannot be read (${error.code})`);
  });
  if (stats === undefined) {
    await mkdir(runDir, { recursive: true });
    await writeMarker(runDir);
    return;
  }
  if (!stats.isDirectory()) throw refused(runDir, 'it is a file, not a folder');
  if (await isOwnRunDir(runDir)) return;
  const entries = await readdir(runDir);
  // Runs written before the marker existed have config.json: resuming one adopts it.
  if (entries.length === 0 || (resume && (await holdsRun(runDir)))) {
    await writeMarker(runDir);
    return;
  }
  throw refused(
    runDir,
    `it is not empty and litter did not create it (no ${RUN_MARKER} file)${resume ? '' : ', so it is neither written to nor cleared, with or without --overwrite'}`,
  );
}

function refused(runDir: string, why: string): TrainerError {
  return new TrainerError(
    'run-dir-refused',
    `the run directory ${runDir} is refused: ${why}. litter writes only into run directories it created; pass a new or empty folder as --out`,
  );
}

/** Takes the lock of `runDir`; returns its release. */
async function lock(runDir: string): Promise<() => Promise<void>> {
  const path = join(runDir, RUN_LOCK);
  const mine: LockContent = {
    pid: process.pid,
    host: hostname(),
    started: startTime(process.pid),
    token: randomBytes(8).toString('hex'),
  };
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Written whole under another name, then linked into place: the lock file is never seen half-written.
    const temporary = `${path}.${process.pid}-${mine.token}`;
    await writeFile(temporary, text);
    try {
      await link(temporary, path);
      heldHere.add(path);
      return async () => {
        heldHere.delete(path);
        const now = await readFile(path, 'utf8').catch(() => undefined);
        if (now === text) await unlink(path).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(temporary).catch(() => {});
    }
    const raw = await readFile(path, 'utf8').catch(() => undefined);
    if (raw === undefined) continue; // released meanwhile
    const holder = parseLock(raw);
    if (holder && isHeld(holder, path)) {
      throw new TrainerError(
        'run-locked',
        `${runDir} is being written by another litter process (pid ${holder.pid}${holder.host === mine.host ? '' : ` on ${holder.host}`}): wait for it to finish or stop it, or pass another --out. (A killed process's lock is taken over by the next run; if no litter process writes there, delete ${path}.)`,
      );
    }
    // Stale: moved aside under a unique name, then checked to be the stale one (not a lock taken meanwhile).
    const aside = `${path}.stale-${process.pid}-${mine.token}`;
    if (
      !(await rename(path, aside).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const moved = await readFile(aside, 'utf8').catch(() => undefined);
    if (moved !== raw) await link(aside, path).catch(() => {});
    await rm(aside, { force: true });
  }
  throw new TrainerError('run-locked', `${runDir}: could not take the lock ${path}; try again`);
}

function parseLock(raw: string): LockContent | undefined {
  try {
    const value = JSON.parse(raw) as Partial<LockContent>;
    if (typeof value.pid === 'number' && typeof value.host === 'string') return value as LockContent;
  } catch {
    // Not a lock litter wrote: treated as stale.
  }
  return undefined;
}

/** Whether the lock's holder still runs: this process's own claim, or a live process started when it said. */
function isHeld(holder: LockContent, path: string): boolean {
  // Another machine (a shared folder): nothing to check there, so it counts as held.
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return heldHere.has(path);
  if (!isProcessAlive(holder.pid)) return false;
  const started = startTime(holder.pid);
  return started === '' || holder.started === '' || started === holder.started;
}

/** A process's start time in clock ticks since boot (Linux), '' where /proc is not there. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/**
 * Removes what killed writers left under `checkpoints/`: `<name>.tmp-<pid>-<hex>` (checkpoint folders being
 * written) and saveModel's `.<name>.saving-<pid>-<hex>` / `.<name>.old-<pid>-<hex>`, of processes that are gone.
 * Called with the lock held, so no live litter process is writing them.
 */
async function removeStaleTemporaries(checkpoints: string): Promise<void> {
  const names = await readdir(checkpoints).catch(() => [] as string[]);
  const pattern = /(?:\.tmp-|^\..+\.(?:saving|old)-)(\d+)-[0-9a-f]{8}$/;
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || isProcessAlive(pid)) continue;
    await rm(join(checkpoints, name), { recursive: true, force: true });
  }
}
