import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@litter/dataset/atomic';
import { RenderError } from './errors.js';
import { cocoDataset, labelEntries, type SceneRecord } from './labels.js';
import { fingerprint, type RenderSettings } from './settings.js';
import type { Shard } from './shard.js';

/** The bookkeeping folder of a render directory. */
export const STATE_DIR = '.litter-render';
export const STATE_FORMAT = 1;

/** `.litter-render/render.json`: what a render directory holds and how it was made. */
export interface RenderState {
  format: typeof STATE_FORMAT;
  fingerprint: string;
  /** Blender's version (`3.4.1`): renders of other versions are not mixed. */
  blender: string;
  /** The part this directory renders; null: all scenes. */
  shard: Shard | null;
  settings: RenderSettings;
}

export const statePath = (out: string) => path.join(out, STATE_DIR, 'render.json');
export const scenesDir = (out: string) => path.join(out, STATE_DIR, 'scenes');
export const scratchDir = (out: string) => path.join(out, STATE_DIR, 'tmp');
const recordPath = (out: string, scene: number) =>
  path.join(scenesDir(out), `${String(scene).padStart(6, '0')}.json`);

export async function readState(out: string): Promise<RenderState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(out), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const state = JSON.parse(text) as RenderState;
    if (state.format !== STATE_FORMAT || fingerprint(state.settings) !== state.fingerprint)
      throw new Error('mismatch');
    return state;
  } catch (error) {
    throw new RenderError(
      'out-dir',
      `${statePath(out)} is damaged or of another litter version; render into a new folder`,
      {
        cause: error,
      },
    );
  }
}

/** A new render directory: missing or empty (litter writes only where it destroys nothing). */
export async function createRenderDir(out: string, state: RenderState): Promise<void> {
  if (existsSync(out)) {
    const entries = await readdir(out);
    if (entries.includes(STATE_DIR)) {
      throw new RenderError(
        'out-dir',
        `${out} already holds a render; continue it with --resume, or choose another folder`,
      );
    }
    if (entries.length > 0) {
      throw new RenderError(
        'out-dir',
        `${out} is not empty (${entries.length} entries); litter render writes only into a new or empty folder`,
      );
    }
  }
  await mkdir(scenesDir(out), { recursive: true });
  await writeFileAtomic(statePath(out), `${JSON.stringify(state, null, 2)}\n`);
}

/** The finished scenes on disk: records of this fingerprint whose images are all there. */
export async function readRecords(out: string, state: RenderState): Promise<Map<number, SceneRecord>> {
  const records = new Map<number, SceneRecord>();
  const names = await readdir(scenesDir(out)).catch(() => [] as string[]);
  for (const name of names) {
    if (!/^\d+\.json$/.test(name)) continue;
    try {
      const record = JSON.parse(await readFile(path.join(scenesDir(out), name), 'utf8')) as SceneRecord;
      if (record.fingerprint !== state.fingerprint) continue;
      if (!record.views.every((view) => existsSync(path.join(out, view.image)))) continue;
      records.set(record.scene, record);
    } catch {
      // A damaged record counts as unfinished: the scene is rendered again.
    }
  }
  return records;
}

export async function writeRecord(out: string, record: SceneRecord): Promise<void> {
  await writeFileAtomic(recordPath(out, record.scene), `${JSON.stringify(record)}\n`);
}

/** labels.json (and coco.json) of the finished scenes, each written atomically. */
export async function writeOutputs(
  out: string,
  settings: RenderSettings,
  records: Map<number, SceneRecord>,
): Promise<{ labelsPath: string; cocoPath: string | undefined }> {
  const labelsPath = path.join(out, 'labels.json');
  await writeFileAtomic(labelsPath, `${JSON.stringify(labelEntries(records.values(), settings), null, 2)}\n`);
  let cocoPath: string | undefined;
  if (settings.coco) {
    cocoPath = path.join(out, 'coco.json');
    await writeFileAtomic(cocoPath, `${JSON.stringify(cocoDataset(records.values(), settings))}\n`);
  }
  return { labelsPath, cocoPath };
}

export async function removeScratch(out: string): Promise<void> {
  await rm(scratchDir(out), { recursive: true, force: true });
}
