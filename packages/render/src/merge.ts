import { copyFile, link } from 'node:fs/promises';
import path from 'node:path';
import {
  createRenderDir,
  readRecords,
  readState,
  removeScratch,
  writeOutputs,
  writeRecord,
} from './_state.js';
import { problemsError, RenderError } from './errors.js';
import type { SceneRecord } from './labels.js';
import { settingsDifferences } from './settings.js';
import { shardScenes } from './shard.js';

export interface MergeResult {
  out: string;
  scenes: number;
  images: number;
  labelsPath: string;
  cocoPath: string | undefined;
}

/** Hard links where the file system allows it (same disk), copies elsewhere. */
async function place(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

/**
 * Joins the parts of a sharded render (`--shard I/N`, or any renders of the same settings whose scenes do not
 * overlap) into one render directory `out`, new or empty. Refuses parts made with other settings or another
 * Blender, overlapping parts, and unfinished or missing scenes, naming each. The result is the directory one
 * unsharded render with the same settings makes (labels.json byte for byte).
 *
 * @example
 * await mergeRenders('renders', ['part-1', 'part-2']);
 */
export async function mergeRenders(out: string, parts: readonly string[]): Promise<MergeResult> {
  out = path.resolve(out);
  if (parts.length === 0) throw new RenderError('options-invalid', 'merge needs at least one PART directory');
  const states = [];
  for (const part of parts.map((p) => path.resolve(p))) {
    const state = await readState(part);
    if (!state)
      throw new RenderError(
        'merge-invalid',
        `${part} is not a litter render directory (no .litter-render/render.json)`,
      );
    states.push({ part, state, records: await readRecords(part, state) });
  }
  const [first] = states;
  const problems: string[] = [];
  for (const { part, state } of states.slice(1)) {
    if (state.fingerprint !== first!.state.fingerprint) {
      const diff = settingsDifferences(first!.state.settings, state.settings).join('; ');
      problems.push(`${part} was rendered with other settings than ${first!.part}: ${diff}`);
    }
    if (state.blender !== first!.state.blender) {
      problems.push(
        `${part} was rendered with Blender ${state.blender}, ${first!.part} with ${first!.state.blender}`,
      );
    }
  }
  if (problems.length > 0) {
    throw problemsError(
      'merge-invalid',
      'the parts do not belong to one render:',
      problems,
      'Merge only parts rendered with the same settings and Blender.',
    );
  }
  const merged = new Map<number, { part: string; record: SceneRecord }>();
  for (const { part, state, records } of states) {
    const expected = shardScenes(state.settings.scenes, state.shard ?? undefined);
    const missing = expected.filter((scene) => !records.has(scene));
    const label = state.shard ? `${part} (shard ${state.shard.index}/${state.shard.count})` : part;
    if (missing.length > 0) {
      problems.push(
        `${label} is unfinished: scenes ${missing.join(', ')} are not rendered; finish it with litter render --resume ${part}`,
      );
    }
    for (const [scene, record] of records) {
      const other = merged.get(scene);
      if (other) problems.push(`scene ${scene} is in both ${other.part} and ${part}`);
      else merged.set(scene, { part, record });
    }
  }
  const { settings } = first!.state;
  const absent = shardScenes(settings.scenes, undefined).filter((scene) => !merged.has(scene));
  if (absent.length > 0 && problems.length === 0) {
    const shards = first!.state.shard
      ? ` (shards ${[...new Set(absent.map((s) => (s % first!.state.shard!.count) + 1))].join(', ')} of ${first!.state.shard.count} are not among the parts)`
      : '';
    problems.push(`scenes ${absent.join(', ')} are in none of the parts${shards}`);
  }
  if (problems.length > 0) throw problemsError('merge-invalid', `cannot merge into ${out}:`, problems);

  await createRenderDir(out, { ...first!.state, shard: null });
  const records = new Map<number, SceneRecord>();
  for (const [scene, { part, record }] of [...merged].sort((a, b) => a[0] - b[0])) {
    for (const view of record.views) await place(path.join(part, view.image), path.join(out, view.image));
    await writeRecord(out, record);
    records.set(scene, record);
  }
  const { labelsPath, cocoPath } = await writeOutputs(out, settings, records);
  await removeScratch(out);
  return {
    out,
    scenes: records.size,
    images: [...records.values()].reduce((sum, r) => sum + r.views.length, 0),
    labelsPath,
    cocoPath,
  };
}
