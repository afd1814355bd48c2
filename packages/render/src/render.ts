import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  createRenderDir,
  type RenderState,
  readRecords,
  readState,
  removeScratch,
  STATE_FORMAT,
  scratchDir,
  writeOutputs,
  writeRecord,
} from './_state.js';
import { BlenderWorker, type WorkerMessage } from './_worker.js';
import { type BlenderInfo, findBlender } from './blender.js';
import { problemsError, RenderError } from './errors.js';
import type { SceneRecord } from './labels.js';
import { fingerprint, type RenderSettings, settingsDifferences } from './settings.js';
import { type Shard, shardScenes } from './shard.js';

export interface RenderBeginEvent {
  out: string;
  blender: string;
  workers: number;
  threadsPerWorker: number;
  shard: Shard | null;
  /** Scenes of this render (or shard), finished ones included. */
  scenes: number;
  /** Scenes already finished (a resume). */
  done: number;
  viewsPerScene: number;
  /** Renders still to make. */
  renders: number;
  resumed: boolean;
}
export interface RenderViewEvent {
  scene: number;
  image: string;
  /** Renders made by this run so far, and how many it has to make. */
  rendered: number;
  renders: number;
  rendersPerSecond: number;
  etaSeconds: number;
}
export interface RenderSceneEvent {
  scene: number;
  /** Finished scenes of this render (or shard), and how many it has. */
  done: number;
  scenes: number;
  rendersPerSecond: number;
  etaSeconds: number;
}
export interface RenderEndEvent {
  out: string;
  stopped: 'done' | 'signal';
  /** Finished scenes and their renders (in labels.json). */
  scenes: number;
  images: number;
  /** Renders made by this run. */
  rendered: number;
  seconds: number;
  labelsPath: string;
  cocoPath: string | undefined;
}

/** Progress of a render; every callback is optional. */
export interface RenderCallbacks {
  onBegin?(event: RenderBeginEvent): void;
  onView?(event: RenderViewEvent): void;
  onScene?(event: RenderSceneEvent): void;
  onEnd?(event: RenderEndEvent): void;
}

export interface RenderOptions {
  /** The render directory: new or empty, or one to continue with `resume`. */
  out: string;
  /** What to render ({@link resolveSettings}); with `resume`, optional (must match the directory's if given). */
  settings?: RenderSettings | undefined;
  /** Continue the render in `out`: finished scenes are kept, the others rendered. */
  resume?: boolean;
  /** Render only this part (scenes s with s mod N = I - 1); `merge` joins the parts. */
  shard?: Shard | undefined;
  /** Blender processes at once, each rendering whole scenes. @default {@link defaultWorkers} */
  workers?: number | undefined;
  /** @default await findBlender() */
  blender?: BlenderInfo;
  /** Abort: Blender is stopped, finished scenes stay, labels.json is written from them. */
  signal?: AbortSignal;
  callbacks?: RenderCallbacks;
  /** How often labels.json is rewritten while rendering, at most. @default 2000 */
  labelsEveryMs?: number;
}

export interface RenderResult extends RenderEndEvent {
  state: RenderState;
}

/** The part alone, without where it came from (`--shard 2/4` and JOB_COMPLETION_INDEX=1 of 4 are one part). */
const partOf = (shard: Shard | undefined): Shard | null =>
  shard ? { index: shard.index, count: shard.count } : null;

/** Opens (resume) or creates the render directory and returns its state. */
async function openRenderDir(
  out: string,
  options: RenderOptions,
  blender: BlenderInfo,
): Promise<RenderState> {
  const existing = await readState(out);
  if (options.resume) {
    if (!existing) {
      throw new RenderError(
        'out-dir',
        `${out} holds no render to resume; start one with litter render ${out}`,
      );
    }
    const problems: string[] = [];
    if (options.settings && fingerprint(options.settings) !== existing.fingerprint) {
      problems.push(...settingsDifferences(existing.settings, options.settings));
    }
    const shard = partOf(options.shard);
    if (shard && JSON.stringify(shard) !== JSON.stringify(partOf(existing.shard ?? undefined))) {
      problems.push(`shard: ${JSON.stringify(existing.shard)} vs ${JSON.stringify(shard)}`);
    }
    if (existing.blender !== blender.version)
      problems.push(`Blender: ${existing.blender} vs ${blender.version}`);
    if (problems.length > 0) {
      throw problemsError(
        'settings-mismatch',
        `${out} was rendered with other settings (the directory's vs now):`,
        problems,
        "Resume with the same settings (litter render --resume OUT alone uses the directory's), or render into a new folder.",
      );
    }
    return existing;
  }
  if (!options.settings)
    throw new RenderError('options-invalid', 'render() needs settings (or resume: true)');
  const state: RenderState = {
    format: STATE_FORMAT,
    fingerprint: fingerprint(options.settings),
    blender: blender.version,
    shard: partOf(options.shard),
    settings: options.settings,
  };
  await createRenderDir(out, state);
  return state;
}

/**
 * Scenes each Blender process has at the least before `render()` starts another by default. A Blender start-up
 * costs about a second of CPU (its Python UI modules and add-ons; Blender 3.4 here), as much as several renders,
 * and the processes share the cores as threads either way: on one to three scenes one Blender with every core's
 * threads saves that start-up. At 4 scenes on 2 cores, two single-threaded Blenders were faster on the quiet machine
 * (4 rounds: 1.006x render_scenes.py's wall time against 0.96x with one Blender of two threads; CPU 0.95x and
 * 0.97x; BENCHMARKS.md, issue 13), so a second process starts from 2 scenes each.
 */
export const SCENES_PER_WORKER = 2;

/**
 * Blender processes by default: one per core, each with at least {@link SCENES_PER_WORKER} scenes (so one for
 * fewer than 4 scenes on 2 cores); one on GPU. `render()` gives each cores / workers threads.
 */
export function defaultWorkers(settings: RenderSettings, scenes: number, cores = os.availableParallelism()) {
  const wanted = settings.device === 'gpu' ? 1 : cores;
  return Math.max(1, Math.min(wanted, Math.floor(scenes / SCENES_PER_WORKER)));
}

/**
 * Renders a dataset with headless Blender: parallel processes, each rendering whole scenes; every finished
 * scene is recorded at once (its images first), labels.json rewritten from finished scenes only (atomically,
 * at most every `labelsEveryMs` and at the end). Interrupted, nothing finished is lost: `resume` continues.
 *
 * @example
 * const settings = await resolveSettings({ flags: { scenes: 2, views: 4, width: 48, height: 36, samples: 2 } });
 * const result = await render({ out: 'renders', settings });
 * console.log(result.labelsPath, result.images);
 */
export async function render(options: RenderOptions): Promise<RenderResult> {
  const out = path.resolve(options.out);
  const blender = options.blender ?? (await findBlender());
  const state = await openRenderDir(out, options, blender);
  const { settings } = state;
  const records = await readRecords(out, state);
  const scenes = shardScenes(settings.scenes, state.shard ?? undefined);
  const todo = scenes.filter((scene) => !records.has(scene));
  const workers = options.workers ?? defaultWorkers(settings, todo.length);
  const threads = Math.max(
    1,
    Math.floor(os.availableParallelism() / Math.min(workers, Math.max(1, todo.length))),
  );
  const renders = todo.length * settings.views;
  options.callbacks?.onBegin?.({
    out,
    blender: blender.version,
    workers: Math.min(workers, Math.max(1, todo.length)),
    threadsPerWorker: threads,
    shard: state.shard,
    scenes: scenes.length,
    done: scenes.length - todo.length,
    viewsPerScene: settings.views,
    renders,
    resumed: options.resume === true,
  });
  const started = performance.now();
  const writer = new LabelsWriter(out, settings, records, options.labelsEveryMs ?? 2000);
  let rendered = 0;
  const rate = () => {
    const seconds = (performance.now() - started) / 1000;
    const perSecond = seconds > 0 ? rendered / seconds : 0;
    return {
      rendersPerSecond: perSecond,
      etaSeconds: perSecond > 0 ? (renders - rendered) / perSecond : Number.NaN,
    };
  };
  let stopped: 'done' | 'signal' = 'done';
  try {
    if (todo.length > 0) {
      await mkdir(scratchDir(out), { recursive: true });
      const settingsFile = path.join(scratchDir(out), 'settings.json');
      await writeFile(settingsFile, JSON.stringify({ ...settings, out, scratch: scratchDir(out), threads }));
      stopped = await runPool({
        blender: blender.path,
        settingsFile,
        todo,
        workers,
        signal: options.signal,
        onView: (message) => {
          rendered++;
          options.callbacks?.onView?.({
            scene: message.scene,
            image: message.image,
            rendered,
            renders,
            ...rate(),
          });
        },
        onScene: async (record) => {
          await writeRecord(out, record);
          records.set(record.scene, record);
          writer.schedule();
          options.callbacks?.onScene?.({
            scene: record.scene,
            done: records.size,
            scenes: scenes.length,
            ...rate(),
          });
        },
        fingerprint: state.fingerprint,
      });
    }
  } finally {
    await writer.close();
  }
  const { labelsPath, cocoPath } = await writeOutputs(out, settings, records);
  if (stopped === 'done') await removeScratch(out);
  const end: RenderEndEvent = {
    out,
    stopped,
    scenes: records.size,
    images: [...records.values()].reduce((sum, r) => sum + r.views.length, 0),
    rendered,
    seconds: (performance.now() - started) / 1000,
    labelsPath,
    cocoPath,
  };
  options.callbacks?.onEnd?.(end);
  return { ...end, state };
}

/** Rewrites labels.json from the finished scenes at most every `everyMs`, one write at a time. */
class LabelsWriter {
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #chain: Promise<unknown> = Promise.resolve();
  constructor(
    readonly out: string,
    readonly settings: RenderSettings,
    readonly records: Map<number, SceneRecord>,
    readonly everyMs: number,
  ) {}

  schedule(): void {
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + this.everyMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = Date.now();
      this.#chain = this.#chain
        .then(() => writeOutputs(this.out, this.settings, this.records))
        .catch(() => {});
    }, wait);
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#chain;
  }
}

interface PoolOptions {
  blender: string;
  settingsFile: string;
  todo: number[];
  workers: number;
  fingerprint: string;
  signal: AbortSignal | undefined;
  onView(message: Extract<WorkerMessage, { event: 'view' }>): void;
  onScene(record: SceneRecord): Promise<void>;
}

/** Runs Blender processes over the scenes to do; resolves 'done' or 'signal', rejects when Blender fails. */
function runPool(options: PoolOptions): Promise<'done' | 'signal'> {
  const queue = [...options.todo];
  const pool: BlenderWorker[] = [];
  let failure: RenderError | undefined;
  let aborted = false;
  let pending = Promise.resolve();
  return new Promise((resolve, reject) => {
    const stopAll = () => {
      for (const worker of pool) worker.kill();
    };
    const fail = (error: RenderError) => {
      failure ??= error;
      stopAll();
    };
    const next = (worker: BlenderWorker) => {
      const scene = aborted || failure ? undefined : queue.shift();
      if (scene === undefined) worker.finish();
      else worker.send(scene);
    };
    const settle = () => {
      if (!pool.every((worker) => worker.exited)) return;
      options.signal?.removeEventListener('abort', onAbort);
      pending.then(() => (failure ? reject(failure) : resolve(aborted ? 'signal' : 'done')), reject);
    };
    const onAbort = () => {
      aborted = true;
      stopAll();
    };
    if (options.signal?.aborted) {
      resolve('signal');
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const count = Math.min(options.workers, queue.length);
    for (let i = 0; i < count; i++) {
      const worker: BlenderWorker = new BlenderWorker(options.blender, options.settingsFile, {
        onMessage: (message) => {
          if (message.event === 'ready') next(worker);
          else if (message.event === 'view') options.onView(message);
          else if (message.event === 'scene') {
            const { event: _, ...rest } = message;
            const record: SceneRecord = { ...rest, fingerprint: options.fingerprint };
            // Records are written in order; the next scene starts at once.
            pending = pending
              .then(() => options.onScene(record))
              .catch((error) => fail(asRenderError(error)));
            next(worker);
          } else if (message.event === 'error') {
            const lines = message.message.split('\n').filter((line) => line.trim() !== '');
            const last = lines.filter((line) => !line.startsWith('Location:')).at(-1) ?? message.message;
            fail(
              new RenderError(
                'blender-failed',
                `Blender failed on scene ${message.scene}: ${last.trim()}. The finished scenes are kept: fix the cause and continue with litter render --resume OUT.`,
                { cause: new Error(`${message.message}\n${message.trace}`) },
              ),
            );
          }
        },
        onExit: (code, signal) => {
          if (!aborted && !failure && (code !== 0 || worker.scene !== undefined)) {
            const during =
              worker.scene === undefined ? 'at start-up' : `while rendering scene ${worker.scene}`;
            fail(
              new RenderError(
                'blender-failed',
                `Blender exited (${signal ?? `code ${code}`}) ${during}. Its last output:\n${worker.tail}\nThe finished scenes are kept: continue with litter render --resume OUT.`,
              ),
            );
          }
          settle();
        },
      });
      pool.push(worker);
    }
  });
}

function asRenderError(error: unknown): RenderError {
  return error instanceof RenderError
    ? error
    : new RenderError('out-dir', `cannot record a finished scene: ${(error as Error).message}`, {
        cause: error,
      });
}
