/*
 * Flag values checked against an option's definition (the trainer's TRAIN_OPTIONS entries, and RUN_OPTIONS
 * below for the image size the CLI adds). Light: `@litter/trainer/options` loads no TensorFlow.js.
 */
import type { OptionSpec, OptionValue } from '@litter/trainer/options';
import { choiceFlag, intFlag, numberFlag, stringFlag } from './_args.js';

/** The run settings the CLI adds to the trainer's options; kept in `config.json` and on resume as they are. */
export const RUN_OPTIONS = {
  model: {
    type: 'string',
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
  },
  height: {
    type: 'integer',
    min: 8,
    max: 4096,
    flag: 'height',
    hint: 'PX',
    description: 'Training image height',
  },
} as const satisfies Record<string, OptionSpec>;

type Raw = string | number | boolean | string[] | undefined;

/** One option's flag value, checked against its definition (`undefined` when not given). */
export function parseOption<S extends OptionSpec>(spec: S, raw: Raw): OptionValue<S> | undefined;
export function parseOption(spec: OptionSpec, raw: Raw): unknown {
  switch (spec.type) {
    case 'integer':
      return intFlag(spec.flag, raw, { min: spec.min, ...(spec.max !== undefined ? { max: spec.max } : {}) });
    case 'number':
      return numberFlag(spec.flag, raw, {
        min: spec.min,
        minExclusive: spec.minExclusive ?? false,
        ...(spec.max !== undefined ? { max: spec.max } : {}),
      });
    case 'choice':
      return choiceFlag(spec.flag, raw, spec.choices);
    case 'boolean':
      return raw === undefined ? undefined : raw === true;
    case 'string':
      return stringFlag(spec.flag, raw);
  }
}
