/*
 * What litter reads back from a run directory is checked before it is used: config.json, a checkpoint's
 * state.json, thresholds.json and vocabulary.json. A file that does not fit is a one-line TrainerError naming
 * the file, the first thing wrong and what to do, instead of a crash later (or, worse, a run that trains nothing).
 * Fields are checked as far as litter uses them; unknown fields are kept (later versions may add some).
 */
import { z } from 'zod';
import { type OptionSpec, TRAIN_OPTIONS, type TrainOptionName } from './options.js';

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();
const names = z.array(z.string());
/** A decision threshold: a probability. */
const threshold = z.number().min(0).max(1);

/** The schema of an option's value, from its definition (TRAIN_OPTIONS). */
export function optionSchema(spec: OptionSpec): z.ZodType {
  switch (spec.type) {
    case 'integer':
      return z
        .number()
        .int()
        .min(spec.min)
        .max(spec.max ?? Number.MAX_SAFE_INTEGER);
    case 'number': {
      const low = spec.minExclusive ? z.number().gt(spec.min) : z.number().min(spec.min);
      if (spec.max === undefined) return low;
      return spec.maxExclusive ? low.lt(spec.max) : low.max(spec.max);
    }
    case 'numbers':
      return z.object(
        Object.fromEntries(spec.names.map((name) => [name, z.number().min(spec.min).lt(spec.max)])),
      );
    case 'boolean':
      return z.boolean();
    case 'choice':
      return z.enum(spec.choices as readonly [string, ...string[]]);
    case 'string':
      return z.string().min(1);
  }
}

/** The options every config.json has held since its format 1; the others are optional (added later). */
const ALWAYS_SAVED: readonly TrainOptionName[] = ['batchSize', 'learningRate', 'seed'];

/** config.json's training options: what TRAIN_OPTIONS says of each (a time-budgeted run has no step count). */
const optionFields = Object.fromEntries(
  (Object.entries(TRAIN_OPTIONS) as [TrainOptionName, OptionSpec][]).map(([name, spec]) => [
    name,
    ALWAYS_SAVED.includes(name) ? optionSchema(spec) : optionSchema(spec).optional(),
  ]),
);

/** config.json */
export const runConfigSchema = z.looseObject({
  format: z.literal(1),
  model: z.string(),
  width: positive,
  height: positive,
  vocabulary: names.min(1),
  ...optionFields,
  sizes: z
    .array(z.looseObject({ width: positive, height: positive, from: z.number().min(0).max(1) }))
    .min(1)
    .optional(),
  dataset: z.looseObject({ root: z.string(), labelsPath: z.string(), size: count }),
  split: z.looseObject({ train: z.array(count), validation: z.array(count), test: z.array(count) }),
});

/** checkpoints/{last,best}/state.json */
export const checkpointStateSchema = z.looseObject({
  format: z.literal(1),
  step: count,
  epoch: z.number().nonnegative(),
  sampler: z.looseObject({}),
  rng: z.looseObject({}),
  best: z.looseObject({ metric: z.string(), value: z.number(), step: count }).nullable().optional(),
  model: z.string(),
  width: positive,
  height: positive,
  vocabulary: names.min(1),
  thresholds: z.array(threshold),
  seconds: z.number().nonnegative().optional(),
});

/** thresholds.json */
export const thresholdsSchema = z.array(threshold);

/** vocabulary.json */
export const vocabularySchema = names.min(1);

/** The first problem zod found, as `field: what` (for a one-line message). */
export function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const field = issue.path.length === 0 ? 'the file' : issue.path.map(String).join('.');
  return `${field}: ${issue.message}`;
}
