/*
 * The run directory: what litter writes for a training run, and the one place that knows its file names and
 * formats. The training loop, evaluate, predict and the report read and write a run only through here.
 *
 * RUN_DIR/config.json, vocabulary.json, metrics.jsonl + metrics.csv (_history.ts), checkpoints/{last,best}/
 * (model.json + weights.bin, optimizer.json + optimizer.bin: _checkpoint.ts; state.json, thresholds.json,
 * vocabulary.json), thresholds.json, evaluation.json + evaluation.txt, report.html + charts/ (@litter/report).
 */

import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type SamplerState, writeFileAtomic, writeJsonAtomic } from '@litter/dataset';
import { exists, type JsonCheck, readJson, recoverDirectory } from './_io.js';
import type { RunRandomState } from './_random.js';
import { TrainerError } from './errors.js';
import type { Evaluation } from './metrics.js';
import type { BestMetric, CheckpointKind, ResolvedSettings } from './options.js';
import { checkpointStateSchema, runConfigSchema, thresholdsSchema, vocabularySchema } from './run-schemas.js';
import type { SizeStage } from './schedule.js';

/** What `config.json` holds: the run's model, image size and classes, its training options, data and split. */
export interface RunConfig extends ResolvedSettings {
  format: 1;
  model: string;
  backend: string;
  width: number;
  height: number;
  channels: 3;
  vocabulary: string[];
  /** Image size of each stage (progressive resizing); width/height above are the last one's. */
  sizes?: SizeStage[];
  dataset: { root: string; labelsPath: string; size: number; fingerprint: string };
  split: { train: number[]; validation: number[]; test: number[] };
  createdAt: string;
}

/** The best validation so far (for choosing the best checkpoint after a resume). */
export interface BestRecord {
  metric: BestMetric;
  value: number;
  step: number;
}

/** What `state.json` of a checkpoint holds besides the model and optimizer. */
export interface CheckpointState {
  format: 1;
  /** Optimizer steps done. */
  step: number;
  epoch: number;
  sampler: SamplerState;
  /** The run's generator (flips, dropout masks); see `_random.ts` for its versions. */
  rng: RunRandomState;
  best: BestRecord | undefined;
  model: string;
  width: number;
  height: number;
  boxes: boolean;
  vocabulary: string[];
  thresholds: number[];
  /** Seconds spent in training steps up to here. */
  elapsedSeconds: number;
  /**
   * Seconds of training up to here, validations and checkpoints included: the clock of a time budget, across
   * resumes (older checkpoints: `elapsedSeconds`).
   */
  seconds?: number;
  savedAt: string;
}

/** What `evaluation.json` holds: the final evaluation of the model training handed back. */
export interface RunEvaluation {
  /** Steps behind the evaluated model (the best checkpoint's). */
  step: number;
  validation?: Evaluation;
  test?: Evaluation;
}

/** File names in a run directory. */
export const RUN_FILES = {
  config: 'config.json',
  vocabulary: 'vocabulary.json',
  metrics: 'metrics.jsonl',
  metricsCsv: 'metrics.csv',
  checkpoints: 'checkpoints',
  thresholds: 'thresholds.json',
  evaluation: 'evaluation.json',
  evaluationText: 'evaluation.txt',
  report: 'report.html',
  charts: 'charts',
} as const;

/** File names in a checkpoint folder (besides the model's model.json and weights.bin). */
export const CHECKPOINT_FILES = {
  state: 'state.json',
  thresholds: 'thresholds.json',
  vocabulary: 'vocabulary.json',
  optimizer: 'optimizer.json',
  optimizerWeights: 'optimizer.bin',
  model: 'model.json',
} as const;

/** The paths of a run directory's entries. */
export type RunPaths = { root: string; last: string; best: string } & {
  [K in keyof typeof RUN_FILES]: string;
};

/** Where everything of the run in `runDir` lies (joined to `runDir` as given, not resolved). */
export function runPaths(runDir: string): RunPaths {
  const entries = Object.entries(RUN_FILES).map(([key, name]) => [key, join(runDir, name)]);
  const paths = Object.fromEntries(entries) as { [K in keyof typeof RUN_FILES]: string };
  return { ...paths, root: runDir, last: checkpointDir(runDir, 'last'), best: checkpointDir(runDir, 'best') };
}

export const checkpointDir = (runDir: string, kind: CheckpointKind): string =>
  join(runDir, RUN_FILES.checkpoints, kind);

/** Whether `runDir` holds a run (its `config.json`). */
export const holdsRun = (runDir: string): Promise<boolean> => exists(join(runDir, RUN_FILES.config));

/** Removes every entry of a run from `runDir` (what `overwrite` starts with); other files stay. */
export async function clearRun(runDir: string): Promise<void> {
  for (const name of Object.values(RUN_FILES)) await rm(join(runDir, name), { recursive: true, force: true });
}

/**
 * Reads `config.json` of a run directory.
 * @throws {TrainerError} `run-not-found` when there is none, `checkpoint-corrupt` when it is not valid JSON.
 */
export async function readRunConfig(runDir: string): Promise<RunConfig> {
  const path = join(runDir, RUN_FILES.config);
  if (!(await exists(path))) {
    throw new TrainerError(
      'run-not-found',
      `${runDir} is not a run directory (no config.json): give the --out folder of \`litter train\``,
    );
  }
  return readJson<RunConfig>(path, 'checkpoint-corrupt', CONFIG_CHECK);
}

/** How each file read back is checked, and what to do when it is damaged. */
const CONFIG_CHECK: JsonCheck = {
  schema: runConfigSchema,
  advice: 'the run cannot be resumed or evaluated; start a new run (litter train --out NEW_DIR)',
};
const STATE_CHECK: JsonCheck = {
  schema: checkpointStateSchema,
  advice:
    'this checkpoint cannot be used; use the other one (--checkpoint best or last), or start a new run (litter train --out NEW_DIR)',
};
const THRESHOLDS_CHECK: JsonCheck = {
  schema: thresholdsSchema,
  advice: 'delete it to use 0.5 for every class, or train again',
};
const VOCABULARY_CHECK: JsonCheck = {
  schema: vocabularySchema,
  advice: "put the training run's vocabulary.json (a JSON array of class names) there",
};

/** Writes `config.json` and `vocabulary.json`. */
export async function writeRunConfig(runDir: string, config: RunConfig): Promise<void> {
  await writeJsonAtomic(join(runDir, RUN_FILES.config), config);
  await writeJsonAtomic(join(runDir, RUN_FILES.vocabulary), config.vocabulary);
}

export const readCheckpointState = (dir: string): Promise<CheckpointState> =>
  readJson<CheckpointState>(join(dir, CHECKPOINT_FILES.state), 'checkpoint-corrupt', STATE_CHECK);

/** A run to resume: its config and the state of `checkpoints/last` (an unfinished checkpoint swap undone). */
export async function readResumePoint(
  runDir: string,
): Promise<{ config: RunConfig; state: CheckpointState }> {
  const { last, best, config } = runPaths(runDir);
  if (!(await recoverDirectory(last))) {
    throw new TrainerError(
      'resume-missing',
      `cannot resume: ${last} does not exist. Train without resume, or give the run directory of an ` +
        'earlier run',
    );
  }
  await recoverDirectory(best);
  return {
    config: await readJson<RunConfig>(config, 'checkpoint-corrupt', CONFIG_CHECK),
    state: await readCheckpointState(last),
  };
}

/** Writes the final evaluation: `thresholds.json`, `evaluation.json` and the readable `evaluation.txt`. */
export async function writeRunEvaluation(
  runDir: string,
  evaluation: RunEvaluation,
  thresholds: readonly number[],
  text: string,
): Promise<void> {
  await writeJsonAtomic(join(runDir, RUN_FILES.thresholds), thresholds);
  await writeJsonAtomic(join(runDir, RUN_FILES.evaluation), evaluation);
  await writeFileAtomic(join(runDir, RUN_FILES.evaluationText), text);
}

/** What {@link locateModel} found: where the model is and what the run says about it. */
export interface LocatedModel {
  /** The folder with `model.json`. */
  dir: string;
  /** The run's `config.json`, when the model belongs to a run directory. */
  config: RunConfig | undefined;
  /** The checkpoint's `state.json`, when there is one. */
  state: CheckpointState | undefined;
  vocabulary: string[];
  /** Per-class thresholds (0.5 each where none were saved, or they do not fit the vocabulary). */
  thresholds: number[];
}

/**
 * Finds the model of a run directory (its `checkpoint`, `best` falling back to `last`), a checkpoint folder
 * (`RUN/checkpoints/last`), or a model folder with `model.json` and `vocabulary.json`, and reads what goes with it.
 *
 * @throws {TrainerError} `run-not-found` when `path` is none of these or the class names are unknown.
 */
export async function locateModel(path: string, checkpoint: CheckpointKind = 'best'): Promise<LocatedModel> {
  const root = resolve(path);
  let dir = root;
  let config: RunConfig | undefined;
  if (await holdsRun(root)) {
    config = await readRunConfig(root);
    const { best, last } = runPaths(root);
    const useBest = checkpoint === 'best' && (await recoverDirectory(best));
    dir = useBest ? best : last;
    if (!useBest && !(await recoverDirectory(last))) {
      throw new TrainerError(
        'run-not-found',
        `${root} has no checkpoint yet (no checkpoints/last): train longer, or resume the run`,
      );
    }
  } else if (await exists(join(root, CHECKPOINT_FILES.model))) {
    const runDir = join(root, '..', '..');
    if (await holdsRun(runDir)) config = await readRunConfig(runDir);
  } else {
    throw new TrainerError(
      'run-not-found',
      `${root} is neither a run directory (config.json) nor a model folder (model.json): give the --out folder ` +
        'of `litter train` or a checkpoint folder in it',
    );
  }
  const state = (await exists(join(dir, CHECKPOINT_FILES.state)))
    ? await readCheckpointState(dir)
    : undefined;
  const vocabulary =
    state?.vocabulary ?? config?.vocabulary ?? (await readIfThere<string[]>(dir, 'vocabulary'));
  if (!vocabulary) {
    throw new TrainerError(
      'run-not-found',
      `${dir} has a model but no vocabulary.json: the class names are unknown. Put the training run's ` +
        'vocabulary.json next to model.json',
    );
  }
  let thresholds = state?.thresholds ?? (await readIfThere<number[]>(dir, 'thresholds'));
  if (!thresholds || thresholds.length !== vocabulary.length) thresholds = vocabulary.map(() => 0.5);
  return { dir, config, state, vocabulary: [...vocabulary], thresholds };
}

async function readIfThere<T>(dir: string, file: 'vocabulary' | 'thresholds'): Promise<T | undefined> {
  const path = join(dir, CHECKPOINT_FILES[file]);
  const check = file === 'vocabulary' ? VOCABULARY_CHECK : THRESHOLDS_CHECK;
  return (await exists(path)) ? readJson<T>(path, 'checkpoint-corrupt', check) : undefined;
}
