/*
 * The flags of `litter train`, all from option tables: the trainer's TRAIN_OPTIONS (one entry per training
 * option), RUN_OPTIONS (the run settings the CLI adds: model, image size, progressive resizing, the split, early
 * stopping) and COMMAND_OPTIONS (how the command runs). From them come the citty flag definitions and their
 * --help lines (`trainArgs`), the parsing of the values (`parseTrainFlags`) and the resume merge
 * (`mergeTrainOptions`). Adding a training option is adding its TRAIN_OPTIONS entry and using its value.
 *
 * Light: `@litter/trainer/options` loads no TensorFlow.js.
 */
import {
  type OptionSpec,
  type OptionValue,
  TRAIN_OPTIONS,
  type TrainOptionName,
  type TrainSettings,
} from '@litter/trainer/options';
import type { ArgsDef } from 'citty';
import { BACKENDS, choiceFlag, intFlag, listFlag, numberFlag, stringFlag } from './_args.js';
import { BOX_TRAIN_DEFAULTS, PROGRESSIVE_DEFAULTS, TRAIN_DEFAULTS } from './_defaults.js';
import { parseDuration } from './_duration.js';
import { CliError } from './errors.js';

type Common = Pick<OptionSpec, 'flag' | 'hint' | 'description' | 'defaultText'>;

/** A flag's definition: a trainer option's kinds, and the CLI's own (a comma-separated list, a choice without a default). */
export type FlagSpec =
  | OptionSpec
  | (Common & { type: 'list' })
  | (Common & { type: 'choice'; choices: readonly string[]; default?: undefined });

/** The value of a flag of kind `S`. */
export type FlagValue<S> = S extends { type: 'list' } ? string[] : OptionValue<S>;

/** The run settings the CLI adds to the trainer's options. */
export const RUN_OPTIONS = {
  model: {
    type: 'string',
    default: TRAIN_DEFAULTS.model,
    flag: 'model',
    hint: 'NAME|PACKAGE|PATH',
    description: 'Model: a built-in name, an installed package or a local path',
  },
  width: {
    type: 'integer',
    min: 8,
    max: 4096,
    flag: 'width',
    hint: 'PX',
    description: 'Training image width',
    defaultText: "the images' aspect ratio in 5,400 pixels per core, never upscaled; printed at the start",
  },
  height: {
    type: 'integer',
    min: 8,
    max: 4096,
    flag: 'height',
    hint: 'PX',
    description: 'Training image height',
    defaultText: 'as --width; one of the two alone keeps the aspect ratio',
  },
  progressive: {
    type: 'number',
    min: 0,
    max: 1,
    maxExclusive: true,
    flag: 'progressive',
    hint: 'F',
    description: `Progressive resizing: train at ${Math.round(PROGRESSIVE_DEFAULTS.smallScale * 100)}% of each side for the first F of the run, then at full size; 0 turns it off`,
    defaultText: `${PROGRESSIVE_DEFAULTS.progressive} with a time budget, 0 with --steps/--epochs`,
  },
  patience: {
    type: 'integer',
    min: 1,
    flag: 'patience',
    hint: 'N',
    description: 'Early stopping: end the run after N validations in a row without a new best',
    defaultText: 'off; with a cosine schedule the best comes late',
    resume: 'given',
  },
  validationScenes: {
    type: 'list',
    flag: 'val-scenes',
    hint: 'S1,S2',
    description: 'Scenes held out for validation',
    defaultText: 'by --val-fraction',
  },
  validationFraction: {
    type: 'number',
    min: 0,
    max: 1,
    maxExclusive: true,
    flag: 'val-fraction',
    hint: 'F',
    description: 'Fraction of the scenes held out for validation, 0 for none',
    defaultText: '0.2',
  },
  testScenes: {
    type: 'list',
    flag: 'test-scenes',
    hint: 'S1,S2',
    description:
      "Scenes held out for testing: thresholds are tuned on validation, the final figures are the test split's",
    defaultText: 'none',
  },
  testFraction: {
    type: 'number',
    min: 0,
    max: 1,
    maxExclusive: true,
    flag: 'test-fraction',
    hint: 'F',
    description: 'Fraction of the scenes held out for testing',
    defaultText: '0',
  },
} as const satisfies Record<string, FlagSpec>;

/** How `litter train` runs: where, on what, what it prints. */
export const COMMAND_OPTIONS = {
  backend: {
    type: 'choice',
    choices: BACKENDS,
    flag: 'backend',
    description: 'TensorFlow.js backend',
    defaultText: 'the best one that loads here; see litter doctor',
  },
  out: {
    type: 'string',
    flag: 'out',
    hint: 'RUN_DIR',
    description: 'Run directory',
    defaultText: 'runs/<timestamp> under the current directory',
  },
  resume: {
    type: 'boolean',
    default: false,
    flag: 'resume',
    description: 'Continue the run in --out from its last checkpoint, with its settings',
  },
  overwrite: {
    type: 'boolean',
    default: false,
    flag: 'overwrite',
    description: 'Start over in an --out that already holds a run (deletes it)',
  },
  cache: {
    type: 'boolean',
    default: true,
    flag: 'cache',
    description: 'Keep decoded images in the dataset cache',
    defaultText: 'on; --no-cache decodes every time',
  },
  cachePath: {
    type: 'string',
    flag: 'cache-path',
    hint: 'FILE',
    description: 'The cache file',
    defaultText: 'labels.litter-cache next to labels.json',
  },
  json: {
    type: 'boolean',
    default: false,
    flag: 'json',
    description: 'Print one JSON object per line (events split, begin, step, validation, checkpoint, end)',
  },
} as const satisfies Record<string, FlagSpec>;

/** How `litter train` shows and reads a trainer option where that differs from its TRAIN_OPTIONS entry. */
const TRAIN_FLAG_OVERRIDES: { [K in TrainOptionName]?: Partial<Common> & { parse?: (raw: Raw) => unknown } } =
  {
    time: {
      hint: 'DURATION',
      description: 'Train for a wall-clock budget: 90s, 2m, 1h, 1m30s; the schedule is laid out on it',
      defaultText: '1 s per 8 training images, 20 s to 10 min',
      parse: (raw) => parseDuration('time', stringFlag('time', raw)),
    },
    steps: { defaultText: 'none; a time budget, see --time' },
    zoomOut: { defaultText: `${TRAIN_DEFAULTS.zoomOut}, ${BOX_TRAIN_DEFAULTS.zoomOut} with --boxes` },
    shift: { defaultText: `${TRAIN_DEFAULTS.shift}, ${BOX_TRAIN_DEFAULTS.shift} with --boxes` },
    stretch: { defaultText: `${TRAIN_OPTIONS.stretch.default}, ${BOX_TRAIN_DEFAULTS.stretch} with --boxes` },
    colorJitter: {
      defaultText: `${Object.values(TRAIN_DEFAULTS.colorJitter).join(',')}; 0,0,0,0 turns it off`,
    },
    validateEvery: {
      defaultText: `${TRAIN_DEFAULTS.validateEvery} with --steps/--epochs, 10 times a time budget`,
    },
  };

/**
 * The CLI's defaults of the trainer's options (its recipe, `_defaults.ts`), where they differ from train()'s;
 * `boxes`: those of a run with the box head.
 */
const cliDefault = (name: string, boxes = false): unknown =>
  ((boxes ? BOX_TRAIN_DEFAULTS : {}) as Record<string, unknown>)[name] ??
  (TRAIN_DEFAULTS as Record<string, unknown>)[name];

/** Every flag of `litter train` but the dataset positional and the shared ones (`--full-hash`, `--verbose`). */
export const TRAIN_FLAGS = { ...RUN_OPTIONS, ...TRAIN_OPTIONS, ...COMMAND_OPTIONS };
export type TrainFlagName = keyof typeof TRAIN_FLAGS;

/** The parsed flags: each option's value, `undefined` when not given. */
export type TrainFlags = { -readonly [K in TrainFlagName]: FlagValue<(typeof TRAIN_FLAGS)[K]> | undefined };

const entries = <T extends object>(table: T) => Object.entries(table) as [keyof T & string, FlagSpec][];

/** A flag as `litter train` shows and reads it: its table entry with the CLI's overrides. */
function flagSpec(name: string): FlagSpec & { parse?: (raw: Raw) => unknown } {
  const spec = (TRAIN_FLAGS as Record<string, FlagSpec>)[name]!;
  const override = TRAIN_FLAG_OVERRIDES[name as TrainOptionName];
  return override ? { ...spec, ...override } : spec;
}

/** What --help says the default is: the text given, else the CLI's default, else the option's (none for false). */
function defaultText(name: string, spec: FlagSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = cliDefault(name) ?? ('default' in spec ? spec.default : undefined);
  if (value === true) return `on; --no-${spec.flag} turns it off`;
  return value === undefined || value === false ? undefined : String(value);
}

/** An option's line in `litter train --help`: its description and default. */
export function helpLine(name: TrainFlagName): string {
  const spec = flagSpec(name);
  const text = defaultText(name, spec);
  return text === undefined ? spec.description : `${spec.description} (default: ${text})`;
}

/** What a flag's value looks like in --help. */
const valueHint = (spec: FlagSpec): string | undefined =>
  spec.hint ?? ('choices' in spec ? spec.choices.join('|') : undefined);

/** citty's definitions of the flags of {@link TRAIN_FLAGS}, keyed by flag. */
export function trainArgs(): ArgsDef {
  const args: ArgsDef = {};
  for (const [name] of entries(TRAIN_FLAGS)) {
    const spec = flagSpec(name);
    const description = helpLine(name);
    const hint = valueHint(spec);
    args[spec.flag] =
      spec.type === 'boolean'
        ? { type: 'boolean', description }
        : { type: 'string', description, ...(hint !== undefined ? { valueHint: hint } : {}) };
  }
  return args;
}

type Raw = string | number | boolean | string[] | undefined;

/** Every flag of `litter train` from citty's arguments (keyed by flag), checked against its definition. */
export function parseTrainFlags(args: Record<string, unknown>): TrainFlags {
  const flags: Record<string, unknown> = {};
  for (const [name] of entries(TRAIN_FLAGS)) {
    const spec = flagSpec(name);
    const raw = args[spec.flag] as Raw;
    flags[name] = spec.parse ? spec.parse(raw) : parseOption(spec, raw);
  }
  return flags as TrainFlags;
}

const COUNTS = ['no', 'one', 'two', 'three', 'four', 'five', 'six'];

/** `--color-jitter 0.2,0.2,0.2,0.03`: the named numbers, each in [min, max). */
function numbersFlag(spec: Extract<FlagSpec, { type: 'numbers' }>, raw: Raw) {
  const text = stringFlag(spec.flag, raw);
  if (text === undefined) return undefined;
  const parts = text.split(',').map((part) => Number(part.trim()));
  if (parts.length !== spec.names.length || parts.some((v) => !(v >= spec.min && v < spec.max))) {
    const count = COUNTS[spec.names.length] ?? String(spec.names.length);
    throw new CliError(
      'usage',
      `--${spec.flag} must be ${count} numbers in [${spec.min}, ${spec.max}): ${spec.names.join(',')}, got "${text}"`,
    );
  }
  return Object.fromEntries(spec.names.map((name, i) => [name, parts[i]]));
}

/** One option's flag value, checked against its definition (`undefined` when not given). */
export function parseOption<S extends FlagSpec>(spec: S, raw: Raw): FlagValue<S> | undefined;
export function parseOption(spec: FlagSpec, raw: Raw): unknown {
  switch (spec.type) {
    case 'integer':
      return intFlag(spec.flag, raw, { min: spec.min, ...(spec.max !== undefined ? { max: spec.max } : {}) });
    case 'number':
      return numberFlag(spec.flag, raw, {
        min: spec.min,
        minExclusive: spec.minExclusive ?? false,
        ...(spec.max !== undefined ? { max: spec.max, maxExclusive: spec.maxExclusive ?? false } : {}),
      });
    case 'numbers':
      return numbersFlag(spec, raw);
    case 'choice':
      return choiceFlag(spec.flag, raw, spec.choices);
    case 'boolean':
      return raw === undefined ? undefined : raw === true;
    case 'string':
      return stringFlag(spec.flag, raw);
    case 'list':
      return listFlag(spec.flag, raw);
  }
}

/** The options that set a run's length: one of them, merged as one (`lengthOf` in `commands/train.ts`). */
export const LENGTH_OPTIONS = ['steps', 'epochs', 'time'] as const satisfies readonly TrainOptionName[];

/**
 * The training options a run gets from its flags (the length aside): each the flag's value, else, resuming, the
 * run's (`saved`, its config.json; never for options with `resume: 'given'`), else, for a new run, the CLI's
 * default. A setting a resumed run's config.json lacks is left to train(): its default is what runs made before
 * the setting existed trained with (no warm-up, no flips).
 */
export function mergeTrainOptions(
  flags: Partial<TrainSettings>,
  saved: Partial<TrainSettings> | undefined,
): Partial<TrainSettings> {
  const merged: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(TRAIN_OPTIONS) as [TrainOptionName, OptionSpec][]) {
    if ((LENGTH_OPTIONS as readonly string[]).includes(name)) continue;
    const value =
      flags[name] ??
      (saved === undefined
        ? cliDefault(name, flags.boxes === true)
        : spec.resume === 'given'
          ? undefined
          : saved[name]);
    if (value !== undefined) merged[name] = value;
  }
  return merged as Partial<TrainSettings>;
}
