import { describe, expect, it } from 'vitest';
import { TrainerError } from './errors.js';
import { type OptionSpec, optionProblem, resolveSettings, TRAIN_OPTIONS } from './options.js';
import { optionSchema, runConfigSchema } from './run-schemas.js';

const context = { backend: 'cpu', cores: 2 };
const jitter = TRAIN_OPTIONS.colorJitter;

describe('TRAIN_OPTIONS', () => {
  it('checks named numbers (colorJitter): every name, each in [min, max)', () => {
    expect(
      optionProblem(jitter, { brightness: 0.2, contrast: 0, saturation: 0.5, hue: 0.03 }),
    ).toBeUndefined();
    for (const bad of [
      { brightness: 0.2, contrast: 0, saturation: 0.5 },
      { brightness: 1, contrast: 0, saturation: 0.5, hue: 0 },
      { brightness: -0.1, contrast: 0, saturation: 0.5, hue: 0 },
      { brightness: 0.2, contrast: 0, saturation: 0.5, hue: 0, extra: 0 },
      [0.2, 0.2, 0.2, 0.2],
      null,
    ]) {
      expect(optionProblem(jitter, bad), JSON.stringify(bad)).toMatch(
        /brightness, contrast, saturation, hue/,
      );
    }
  });

  it('resolveSettings refuses a bad colorJitter naming it, and leaves it out when not given', () => {
    expect(() => resolveSettings({ colorJitter: { brightness: 2 } as never }, context)).toThrow(
      expect.objectContaining({
        code: 'invalid-options',
        message: expect.stringMatching(/colorJitter must be/),
      }),
    );
    expect(() => resolveSettings({ colorJitter: { brightness: 2 } as never }, context)).toThrow(TrainerError);
    expect(resolveSettings({}, context).colorJitter).toBeUndefined();
  });

  it('gives every option a distinct kebab-case flag and a description', () => {
    const flags = Object.values(TRAIN_OPTIONS).map((spec) => spec.flag);
    expect(new Set(flags).size).toBe(flags.length);
    for (const spec of Object.values(TRAIN_OPTIONS)) {
      expect(spec.flag).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(spec.description.length).toBeGreaterThan(5);
    }
  });
});

describe("config.json's options are checked as TRAIN_OPTIONS defines them", () => {
  it('accepts what the option accepts and refuses what it refuses', () => {
    for (const [name, spec] of Object.entries(TRAIN_OPTIONS) as [string, OptionSpec][]) {
      const schema = optionSchema(spec);
      const bad: unknown[] = ['x', null, Number.NaN];
      if ('min' in spec && spec.type !== 'numbers') bad.push(spec.min - 1);
      for (const value of bad) {
        expect(schema.safeParse(value).success, `${name} ${String(value)}`).toBe(
          optionProblem(spec, value) === undefined,
        );
      }
      if ('default' in spec && spec.default !== undefined) {
        expect(schema.safeParse(spec.default).success, name).toBe(true);
      }
    }
  });

  it('reads a config.json field of the wrong kind as a damaged file', () => {
    const config = {
      format: 1,
      model: 'lite',
      width: 16,
      height: 16,
      vocabulary: ['a'],
      batchSize: 8,
      learningRate: 0.003,
      seed: 0,
      dataset: { root: '/d', labelsPath: '/d/labels.json', size: 1 },
      split: { train: [0], validation: [], test: [] },
    };
    expect(runConfigSchema.safeParse(config).success).toBe(true);
    expect(runConfigSchema.safeParse({ ...config, schedule: 'linear' }).success).toBe(false);
    expect(runConfigSchema.safeParse({ ...config, batchSize: undefined }).success).toBe(false);
    expect(runConfigSchema.safeParse({ ...config, colorJitter: { brightness: 0.1 } }).success).toBe(false);
  });
});
