import { type OptionSpec, optionProblem, TRAIN_OPTIONS, type TrainSettings } from '@litter/trainer/options';
import { describe, expect, it } from 'vitest';
import { memoryIo } from '../test/_memory-io.js';
import { commonArgs, datasetCacheArgs } from './_args.js';
import { TRAIN_DEFAULTS } from './_defaults.js';
import {
  COMMAND_OPTIONS,
  helpLine,
  mergeTrainOptions,
  parseTrainFlags,
  RUN_OPTIONS,
  TRAIN_FLAGS,
  type TrainFlagName,
} from './_train-options.js';
import train from './commands/train.js';
import { main } from './main.js';

const names = Object.keys(TRAIN_FLAGS) as TrainFlagName[];
const flagOf = (name: TrainFlagName) => TRAIN_FLAGS[name].flag;

/** A valid flag value of each kind of option, and the value it parses to. */
function sample(spec: OptionSpec | { type: 'list' }): [string | boolean, unknown] {
  switch (spec.type) {
    case 'integer':
      return [String(spec.min + 1), spec.min + 1];
    case 'number': {
      const value = spec.max === undefined ? spec.min + 0.5 : (spec.min + spec.max) / 2;
      return [String(value), value];
    }
    case 'numbers':
      return [
        spec.names.map((_, i) => (spec.min + spec.max) / (i + 2)).join(','),
        Object.fromEntries(spec.names.map((name, i) => [name, (spec.min + spec.max) / (i + 2)])),
      ];
    case 'choice':
      return [spec.choices.at(-1)!, spec.choices.at(-1)];
    case 'boolean':
      return [true, true];
    case 'string':
      return ['x', 'x'];
    case 'list':
      return ['a,b', ['a', 'b']];
  }
}

describe("litter train's flags come from the option tables", () => {
  it('has a flag for every training option and no flag outside the tables', async () => {
    const args = (await (typeof train.args === 'function' ? train.args() : train.args)) ?? {};
    const shared = [...Object.keys(datasetCacheArgs), ...Object.keys(commonArgs)];
    const fromTables = names.map(flagOf);
    expect(Object.keys(args).sort()).toEqual(['dataset', ...fromTables, ...shared].sort());
    for (const name of Object.keys(TRAIN_OPTIONS)) expect(names).toContain(name);
    // One flag per option: no two entries of the tables share a flag.
    expect(new Set(fromTables).size).toBe(fromTables.length);
  });

  it('lists every option in --help with its description and default', async () => {
    const capture = memoryIo();
    await main(['train', '--help'], capture.io);
    const help = capture.stdout.replace(/\s+/g, ' ');
    for (const name of names) {
      expect(help).toContain(`--${flagOf(name)}`);
      expect(help).toContain(helpLine(name));
    }
    // The CLI's defaults (its recipe), not train()'s, and the texts of the options without a plain default.
    expect(helpLine('learningRate')).toBe(`Adam learning rate (default: ${TRAIN_DEFAULTS.learningRate})`);
    expect(helpLine('flip')).toMatch(/\(default: on; --no-flip turns it off\)$/);
    expect(helpLine('testTimeFlip')).toMatch(/\(default: on; --no-test-time-flip turns it off\)$/);
    expect(helpLine('workers')).toMatch(/\(default: one per core\)$/);
    expect(helpLine('zoomOut')).toMatch(/\(default: 0\.25, 0 with --boxes\)$/);
    expect(helpLine('shift')).toMatch(/\(default: 0\.03, 0 with --boxes\)$/);
    expect(helpLine('stretch')).toMatch(/\(default: 0, 0\.3 with --boxes\)$/);
    expect(helpLine('colorJitter')).toMatch(/\(default: 0\.2,0\.2,0\.2,0\.03; 0,0,0,0 turns it off\)$/);
    expect(helpLine('resume')).not.toMatch(/default/);
  });

  it('parses a value of every option into what the trainer accepts', () => {
    const args: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const name of names) {
      const spec = TRAIN_FLAGS[name] as OptionSpec | { type: 'list' };
      const [raw, value] = name === 'time' ? ['1m30s', 90] : sample(spec);
      args[flagOf(name)] = raw;
      expected[name] = value;
    }
    const flags = parseTrainFlags(args) as Record<string, unknown>;
    expect(flags).toEqual(expected);
    for (const [name, spec] of Object.entries(TRAIN_OPTIONS) as [string, OptionSpec][]) {
      expect(optionProblem(spec, flags[name]), name).toBeUndefined();
    }
    expect(Object.values(parseTrainFlags({})).every((value) => value === undefined)).toBe(true);
  });

  it('keeps the run options and the command options apart from the trainer options', () => {
    for (const name of [...Object.keys(RUN_OPTIONS), ...Object.keys(COMMAND_OPTIONS)]) {
      expect(Object.keys(TRAIN_OPTIONS)).not.toContain(name);
    }
  });
});

describe('mergeTrainOptions (the resume merge)', () => {
  const saved: Partial<TrainSettings> = {
    batchSize: 8,
    learningRate: 0.01,
    schedule: 'constant',
    flip: false,
    workers: 3,
    steps: 40,
    colorJitter: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.01 },
  };

  it('gives a new run the flags, else the CLI defaults, and no length', () => {
    const merged = mergeTrainOptions({ batchSize: 4, steps: 10 }, undefined);
    expect(merged.batchSize).toBe(4);
    expect(merged.learningRate).toBe(TRAIN_DEFAULTS.learningRate);
    expect(merged.schedule).toBe(TRAIN_DEFAULTS.schedule);
    expect(merged.flip).toBe(true);
    expect(merged.testTimeFlip).toBe(true);
    expect(merged).not.toHaveProperty('steps');
    expect(merged).not.toHaveProperty('workers');
    expect(merged.zoomOut).toBe(0.25);
    expect(merged.shift).toBe(0.03);
    expect(merged.colorJitter).toEqual({ brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.03 });
  });

  it('gives a new run with --boxes no zoom-out or shift (its boxes would not follow the smeared border), but jitter and a stretch', () => {
    const merged = mergeTrainOptions({ boxes: true }, undefined);
    expect(merged.zoomOut).toBe(0);
    expect(merged.shift).toBe(0);
    expect(merged.stretch).toBe(0.3);
    expect(mergeTrainOptions({}, undefined)).not.toHaveProperty('stretch');
    expect(merged.colorJitter).toEqual(TRAIN_DEFAULTS.colorJitter);
    // Given, they are what was given.
    expect(mergeTrainOptions({ boxes: true, zoomOut: 0.1 }, undefined).zoomOut).toBe(0.1);
    expect(mergeTrainOptions({ zoomOut: 0 }, undefined).zoomOut).toBe(0);
  });

  it("keeps a resumed run's settings unless given anew, never those it must be given", () => {
    const merged = mergeTrainOptions({ learningRate: 0.02 }, saved);
    expect(merged.learningRate).toBe(0.02);
    expect(merged.batchSize).toBe(8);
    expect(merged.schedule).toBe('constant');
    expect(merged.flip).toBe(false);
    expect(merged.colorJitter).toEqual(saved.colorJitter);
    expect(merged).not.toHaveProperty('workers');
    expect(merged).not.toHaveProperty('steps');
    // What the run's config.json lacks is left to train(): the default of runs made before the setting.
    expect(merged).not.toHaveProperty('warmupSteps');
    expect(merged).not.toHaveProperty('testTimeFlip');
    expect(merged).not.toHaveProperty('zoomOut');
  });
});
