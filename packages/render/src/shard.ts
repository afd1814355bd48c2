import { RenderError } from './errors.js';

/** The I-th (1-based) of N disjoint parts of a render. */
export interface Shard {
  index: number;
  count: number;
}

/** Parses `I/N` (1 <= I <= N). */
export function parseShard(text: string, source = '--shard'): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) {
    throw new RenderError(
      'options-invalid',
      `${source} must be I/N with 1 <= I <= N (e.g. 2/4), got "${text}"`,
    );
  }
  return { index, count };
}

function integer(env: Record<string, string | undefined>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text.trim())) {
    throw new RenderError('options-invalid', `${name} must be a non-negative integer, got "${text}"`);
  }
  return Number(text);
}

/**
 * The shard a batch system asks for: a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, 0-based, of
 * `JOB_COMPLETIONS`) or a Slurm job array (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`, of
 * `SLURM_ARRAY_TASK_COUNT`). Undefined when neither is set.
 */
export function shardFromEnv(
  env: Record<string, string | undefined>,
): (Shard & { source: string }) | undefined {
  const pairs: [string, string, string | undefined][] = [
    ['JOB_COMPLETION_INDEX', 'JOB_COMPLETIONS', undefined],
    ['SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN'],
  ];
  for (const [indexName, countName, minName] of pairs) {
    const id = integer(env, indexName);
    if (id === undefined) continue;
    const count = integer(env, countName);
    if (count === undefined) {
      throw new RenderError(
        'options-invalid',
        `${indexName} is set but ${countName} is not: set both, or pass --shard I/N`,
      );
    }
    const min = minName === undefined ? 0 : (integer(env, minName) ?? 0);
    const source = `${indexName}=${id} of ${countName}=${count}`;
    return { ...parseShard(`${id - min + 1}/${count}`, source), source };
  }
  return undefined;
}

/** The scenes of a shard, round-robin (scene s belongs to shard s mod N + 1), so every part gets a fair share. */
export function shardScenes(scenes: number, shard: Shard | undefined): number[] {
  const all = Array.from({ length: scenes }, (_, s) => s);
  return shard === undefined ? all : all.filter((s) => s % shard.count === shard.index - 1);
}
