import type { ArgsDef, CommandDef } from 'citty';
import { CliError } from './errors.js';

/** Flags every command accepts. */
export const commonArgs = {
  verbose: { type: 'boolean', description: 'Print the stack trace of an error' },
} as const satisfies ArgsDef;

/** Flags of every command that loads a dataset through its cache. */
export const datasetCacheArgs = {
  'full-hash': {
    type: 'boolean',
    description:
      'Tell a stale cache by a SHA-256 of every image rather than its size and modification time (slower; sees same-size edits)',
  },
  'skip-bad-images': {
    type: 'boolean',
    description: 'Leave out images that are missing or cannot be decoded (each is named) instead of failing',
  },
} as const satisfies ArgsDef;

/** Reads the flags of {@link datasetCacheArgs} as loadDataset options. */
export function datasetCacheFlags(args: { 'full-hash'?: unknown; 'skip-bad-images'?: unknown }) {
  return {
    ...(args['full-hash'] === true ? { fullHash: true } : {}),
    ...(args['skip-bad-images'] === true ? { skipBadImages: true } : {}),
  };
}

/** The TensorFlow.js backends `--backend` takes. */
export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

/** `--backend` and `--checkpoint` of the commands that load a trained run. */
export const runArgs = {
  checkpoint: {
    type: 'string',
    valueHint: 'best|last',
    description: 'Which checkpoint of a run directory (default: best)',
  },
  backend: {
    type: 'string',
    valueHint: BACKENDS.join('|'),
    description: 'TensorFlow.js backend (default: the best one that loads here)',
  },
} as const satisfies ArgsDef;

/** Reads the flags of {@link runArgs}. */
export function runFlags(args: { checkpoint?: unknown; backend?: unknown }) {
  return {
    checkpoint: choiceFlag('checkpoint', args.checkpoint as Raw, ['best', 'last'] as const),
    backend: choiceFlag('backend', args.backend as Raw, BACKENDS),
  };
}

/** Commands whose last positional argument takes any number of values (`litter predict MODEL IMAGE...`). */
const variadic = new WeakSet<CommandDef<ArgsDef>>();

/** Marks a command as taking any number of trailing positional arguments. */
export function markVariadic<T extends ArgsDef>(command: CommandDef<T>): CommandDef<T> {
  variadic.add(command as CommandDef<ArgsDef>);
  return command;
}

export function isVariadic(command: CommandDef<ArgsDef>): boolean {
  return variadic.has(command);
}

type Raw = string | number | boolean | string[] | undefined;

function given(name: string, value: Raw): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new CliError('usage', `--${name} needs a value`);
  }
  return value;
}

/** An integer flag: `undefined` when absent, a usage error when not an integer in [min, max]. */
export function intFlag(name: string, value: Raw, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  const text = given(name, value);
  if (text === undefined) return undefined;
  const number = Number(text);
  if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    throw new CliError('usage', `--${name} must be ${range}, got "${text}"`);
  }
  return number;
}

/** A number flag: `undefined` when absent, a usage error when not a finite number in the open/closed range. */
export function numberFlag(
  name: string,
  value: Raw,
  {
    min = Number.NEGATIVE_INFINITY,
    max = Number.POSITIVE_INFINITY,
    minExclusive = false,
    maxExclusive = false,
  } = {},
) {
  const text = given(name, value);
  if (text === undefined) return undefined;
  const number = Number(text);
  const low = minExclusive ? number > min : number >= min;
  const high = maxExclusive ? number < max : number <= max;
  if (text.trim() === '' || !Number.isFinite(number) || !low || !high) {
    const lower = Number.isFinite(min) ? `${minExclusive ? '>' : '>='} ${min}` : '';
    const upper = Number.isFinite(max) ? `${maxExclusive ? '<' : '<='} ${max}` : '';
    const range = [lower, upper].filter(Boolean).join(' and ');
    throw new CliError('usage', `--${name} must be a number${range ? ` ${range}` : ''}, got "${text}"`);
  }
  return number;
}

/** A string flag: `undefined` when absent, a usage error when given without a value. */
export function stringFlag(name: string, value: Raw): string | undefined {
  return given(name, value);
}

/** A comma-separated list flag (`--val-scenes 0,3`). */
export function listFlag(name: string, value: Raw): string[] | undefined {
  const text = given(name, value);
  if (text === undefined) return undefined;
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.length === 0) throw new CliError('usage', `--${name} needs at least one value, got "${text}"`);
  return items;
}

/** A flag with a fixed set of values. */
export function choiceFlag<const T extends string>(
  name: string,
  value: Raw,
  choices: readonly T[],
): T | undefined {
  const text = given(name, value);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new CliError('usage', `--${name} must be one of ${choices.join(', ')}, got "${text}"`);
  }
  return text as T;
}

/** Rejects a pair of flags that cannot be combined. */
export function exclusive(flags: Record<string, unknown>): void {
  const present = Object.entries(flags).filter(([, value]) => value !== undefined);
  if (present.length > 1) {
    throw new CliError(
      'usage',
      `${present.map(([name]) => `--${name}`).join(' and ')} cannot be combined: give one`,
    );
  }
}
