import { describe, expect, it } from 'vitest';
import {
  describeScheduleChange,
  finished,
  formatSeconds,
  learningRateAt,
  progressiveSizes,
  progressOf,
  stageAt,
  type TrainingSchedule,
} from './schedule.js';

const timed = (seconds: number, sizes = progressiveSizes({ width: 120, height: 90 }, 2 / 3, 0.3)) =>
  ({
    length: { seconds },
    learningRate: 3e-3,
    schedule: 'cosine',
    warmupSteps: 30,
    sizes,
  }) satisfies TrainingSchedule;

describe('the training schedule', () => {
  it('measures progress in steps or in seconds of training', () => {
    expect(progressOf({ steps: 200 }, { step: 50, seconds: 999 })).toBe(0.25);
    expect(progressOf({ seconds: 120 }, { step: 5000, seconds: 30 })).toBe(0.25);
    expect(progressOf({ seconds: 120 }, { step: 1, seconds: 500 })).toBe(1);
    expect(finished({ seconds: 120 }, { step: 1, seconds: 119.9 })).toBe(false);
    expect(finished({ seconds: 120 }, { step: 1, seconds: 120 })).toBe(true);
    expect(finished({ steps: 10 }, { step: 10, seconds: 0 })).toBe(true);
  });

  it('warms up linearly over steps, then decays by a cosine of the run fraction to 0', () => {
    const s = timed(120);
    expect(learningRateAt(s, { step: 0, seconds: 0 })).toBeCloseTo(3e-3 / 30, 12);
    expect(learningRateAt(s, { step: 14, seconds: 0 })).toBeCloseTo(3e-3 / 2, 12);
    expect(learningRateAt(s, { step: 30, seconds: 0 })).toBeCloseTo(3e-3, 12);
    expect(learningRateAt(s, { step: 100, seconds: 60 })).toBeCloseTo(1.5e-3, 12);
    expect(learningRateAt(s, { step: 200, seconds: 120 })).toBeCloseTo(0, 12);
    expect(learningRateAt({ ...s, schedule: 'constant' }, { step: 200, seconds: 90 })).toBe(3e-3);
    // the same as the step-counted cosine train() always had
    const steps = { ...s, length: { steps: 200 } };
    expect(learningRateAt(steps, { step: 50, seconds: 1 })).toBeCloseTo(
      3e-3 * 0.5 * (1 + Math.cos(Math.PI / 4)),
      12,
    );
  });

  it('lays progressive resizing on the run and never goes back to a smaller size', () => {
    const sizes = progressiveSizes({ width: 120, height: 90 }, 2 / 3, 0.3);
    expect(sizes).toEqual([
      { width: 80, height: 60, from: 0 },
      { width: 120, height: 90, from: 0.3 },
    ]);
    expect(progressiveSizes({ width: 120, height: 90 }, 2 / 3, 0)).toEqual([
      { width: 120, height: 90, from: 0 },
    ]);
    const s = timed(100, sizes);
    expect(stageAt(s, { step: 10, seconds: 29.9 })).toBe(0);
    expect(stageAt(s, { step: 10, seconds: 30 })).toBe(1);
    // a resumed run with a longer budget: 30 s is now only 10% of it, but the run was already at 120x90
    const longer = timed(300, sizes);
    expect(stageAt(longer, { step: 10, seconds: 30 })).toBe(0);
    expect(stageAt(longer, { step: 10, seconds: 30 }, 1)).toBe(1);
  });

  it('says how a longer length changes a resumed run', () => {
    const progress = { step: 300, seconds: 120 };
    const text = describeScheduleChange(timed(120), timed(600), progress, 1);
    expect(text).toBe(
      'length 2m -> 10m: training goes on from 2m; the learning rate is now 2.7e-3 (was 0) and decays to 0 at 10m.',
    );
    const early = describeScheduleChange(timed(120), timed(600), { step: 30, seconds: 20 }, 0);
    expect(early).toContain('120x90 from 3m (was 36s)');
    expect(describeScheduleChange(timed(120), timed(120), progress, 1)).toBeUndefined();
  });

  it('formats durations', () => {
    expect(formatSeconds(0)).toBe('0s');
    expect(formatSeconds(90)).toBe('1m30s');
    expect(formatSeconds(120)).toBe('2m');
    expect(formatSeconds(3900)).toBe('1h5m');
  });
});
