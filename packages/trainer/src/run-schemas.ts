/*
 * What litter reads back from a run directory is checked before it is used: config.json, a checkpoint's
 * state.json, thresholds.json and vocabulary.json. A file that does not fit is a one-line TrainerError naming
 * the file, the first thing wrong and what to do, instead of a crash later (or, worse, a run that trains nothing).
 * Fields are checked as far as litter uses them; unknown fields are kept (later versions may add some).
 */
import { z } from 'zod';

const count = z.number().int().nonnegative();
const positive = z.number().int().positive();
const names = z.array(z.string());
/** A decision threshold: a probability. */
const threshold = z.number().min(0).max(1);

/** config.json */
export const runConfigSchema = z.looseObject({
  format: z.literal(1),
  model: z.string(),
  width: positive,
  height: positive,
  vocabulary: names.min(1),
  batchSize: positive,
  // A time-budgeted run has a budget instead of a step count.
  steps: positive.optional(),
  epochs: positive.optional(),
  time: z.number().positive().optional(),
  sizes: z
    .array(z.looseObject({ width: positive, height: positive, from: z.number().min(0).max(1) }))
    .min(1)
    .optional(),
  learningRate: z.number().positive(),
  warmupSteps: count.optional(),
  logEvery: positive.optional(),
  validateEvery: positive.optional(),
  checkpointEvery: positive.optional(),
  seed: count,
  boxes: z.boolean().optional(),
  workers: positive.optional(),
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
