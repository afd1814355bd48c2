import { describe, expect, it } from 'vitest';
import { DatasetError } from './errors.js';
import { SeededRandom } from './random.js';
import { EpochSampler } from './sampler.js';

const indices = Array.from({ length: 23 }, (_, i) => i * 2 + 1);

/** Draws `n` batches. */
const draw = (sampler: EpochSampler, n: number) => Array.from({ length: n }, () => [...sampler.next()]);

describe('SeededRandom', () => {
  it('is deterministic per seed and restores exactly', () => {
    const a = new SeededRandom(7);
    const b = new SeededRandom(7);
    const c = new SeededRandom(8);
    const xs = Array.from({ length: 10 }, () => a.nextUint32());
    expect(Array.from({ length: 10 }, () => b.nextUint32())).toEqual(xs);
    expect(Array.from({ length: 10 }, () => c.nextUint32())).not.toEqual(xs);
    const saved = JSON.parse(JSON.stringify(a.state()));
    const next = [a.next(), a.int(1000), a.nextUint32()];
    const d = SeededRandom.fromState(saved);
    expect([d.next(), d.int(1000), d.nextUint32()]).toEqual(next);
  });

  it('draws integers in range, roughly uniformly', () => {
    const random = new SeededRandom(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[random.int(6)]++;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const x = random.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(() => random.int(0)).toThrow(DatasetError);
    expect(() => random.restore([0, 0, 0, 0])).toThrow(DatasetError);
  });
});

describe('EpochSampler', () => {
  it('gives every index once per epoch, reshuffled each epoch', () => {
    const sampler = new EpochSampler({ indices, batchSize: 5, seed: 3 });
    expect(sampler.batchesPerEpoch).toBe(5);
    const epochs: number[][] = [];
    for (let e = 0; e < 4; e++) {
      const batches = draw(sampler, 5);
      expect(batches.map((b) => b.length)).toEqual([5, 5, 5, 5, 3]);
      expect(sampler.epoch).toBe(e);
      epochs.push(batches.flat());
      expect([...batches.flat()].sort((a, b) => a - b)).toEqual(indices);
    }
    expect(new Set(epochs.map((e) => e.join())).size).toBe(4);
    expect(epochs[0]).not.toEqual(indices);
    expect(sampler.nextEpoch).toBe(4);
    sampler.next();
    expect(sampler.epoch).toBe(4);
  });

  it('drops the short last batch with dropLast', () => {
    const sampler = new EpochSampler({ indices, batchSize: 5, seed: 3, dropLast: true });
    expect(sampler.batchesPerEpoch).toBe(4);
    const batches = draw(sampler, 8);
    expect(batches.every((b) => b.length === 5)).toBe(true);
    expect(sampler.epoch).toBe(1);
    expect(new Set(batches.slice(0, 4).flat()).size).toBe(20);
  });

  it('keeps the given order without shuffle', () => {
    const sampler = new EpochSampler({ indices, batchSize: 10, shuffle: false });
    expect(draw(sampler, 4).flat()).toEqual([...indices, ...indices.slice(0, 10)]);
  });

  it('is deterministic for a seed', () => {
    const a = draw(new EpochSampler({ indices, batchSize: 4, seed: 11 }), 20);
    expect(draw(new EpochSampler({ indices, batchSize: 4, seed: 11 }), 20)).toEqual(a);
    expect(draw(new EpochSampler({ indices, batchSize: 4, seed: 12 }), 20)).not.toEqual(a);
  });

  it('saves and restores exactly, mid-epoch and at an epoch boundary, through JSON', () => {
    for (const [dropLast, skip] of [
      [false, 3],
      [false, 6],
      [true, 4],
      [false, 0],
      [true, 13],
    ] as const) {
      const options = { indices, batchSize: 4, seed: 5, dropLast };
      const original = new EpochSampler(options);
      draw(original, skip);
      const state = JSON.parse(JSON.stringify(original.state()));
      const expected = draw(original, 15);
      const restored = new EpochSampler({ ...options, seed: 999 }); // the seed comes from the state
      draw(restored, 2);
      restored.restore(state);
      expect(restored.epoch).toBe(state.epoch);
      expect(draw(restored, 15)).toEqual(expected);
    }
  });

  it('refuses a state from another sampler', () => {
    const state = new EpochSampler({ indices, batchSize: 4 }).state();
    expect(() => new EpochSampler({ indices: indices.slice(1), batchSize: 4 }).restore(state)).toThrow(
      /other indices/,
    );
    expect(() => new EpochSampler({ indices: [...indices].reverse(), batchSize: 4 }).restore(state)).toThrow(
      DatasetError,
    );
    expect(() => new EpochSampler({ indices, batchSize: 5 }).restore(state)).toThrow(/batch size 4, now 5/);
  });

  it('rejects impossible options', () => {
    expect(() => new EpochSampler({ indices: [], batchSize: 4 })).toThrow(DatasetError);
    expect(() => new EpochSampler({ indices, batchSize: 0 })).toThrow(DatasetError);
    expect(() => new EpochSampler({ indices, batchSize: 24, dropLast: true })).toThrow(
      /every batch would be dropped/,
    );
    expect(draw(new EpochSampler({ indices, batchSize: 100 }), 1)[0]).toHaveLength(23);
  });
});
