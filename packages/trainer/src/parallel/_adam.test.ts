import { describe, expect, it } from 'vitest';
import { FlatAdam, weightRange } from './_adam.js';

/** Deterministic values in [-0.5, 0.5). */
function values(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296 - 0.5;
  });
}

describe('weightRange', () => {
  it.each([
    [10, 1],
    [10, 3],
    [7, 4],
    [3, 5],
    [144597, 16],
  ])('splits %i weights over %i workers in order, without gaps or overlaps', (size, workers) => {
    const ranges = Array.from({ length: workers }, (_, k) => weightRange(size, workers, k));
    expect(ranges[0]!.start).toBe(0);
    expect(ranges.at(-1)!.end).toBe(size);
    ranges.slice(1).forEach((range, k) => {
      expect(range.start).toBe(ranges[k]!.end);
    });
    const lengths = ranges.map((r) => r.end - r.start);
    expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(1);
  });
});

describe('FlatAdam', () => {
  it.each([1, 2, 3])(
    'updates split over worker ranges give the bits of one whole update (%i gradient parts)',
    (partCount) => {
      const size = 1001;
      const whole = { adam: new FlatAdam(size), weights: values(size, 1) };
      // Shared weights and moments, each range updated by its own optimizer (as the workers do).
      const weights = values(size, 1);
      const first = new Float32Array(size);
      const second = new Float32Array(size);
      const workers = 3;
      const split = Array.from({ length: workers }, () => new FlatAdam(size, { first, second }));
      for (let step = 0; step < 4; step++) {
        const parts = Array.from({ length: partCount }, (_, k) => values(size, 100 * step + k + 2));
        whole.adam.update(whole.weights, parts, 1e-2);
        split.forEach((adam, k) => {
          adam.update(weights, parts, 1e-2, weightRange(size, workers, k));
        });
      }
      expect(Array.from(weights)).toEqual(Array.from(whole.weights));
      expect(Array.from(first)).toEqual(Array.from(whole.adam.firstMoment));
      expect(Array.from(second)).toEqual(Array.from(whole.adam.secondMoment));
      expect(split.map((adam) => adam.iterations)).toEqual([4, 4, 4]);
      // The update moved the weights, so equal arrays mean something.
      expect(weights.some((w, i) => Math.abs(w - values(size, 1)[i]!) > 1e-3)).toBe(true);
    },
  );

  it('restores only the moments of its range, and the iteration count', () => {
    const layout = [
      { name: 'a', shape: [3], size: 3 },
      { name: 'b', shape: [2], size: 2 },
    ];
    const source = new FlatAdam(5);
    source.update(new Float32Array(5), [values(5, 7)], 1e-3);
    const state = source.getState(layout);
    const first = new Float32Array(5).fill(9);
    const second = new Float32Array(5).fill(9);
    const target = new FlatAdam(5, { first, second });
    target.setState(state, layout, { start: 1, end: 4 });
    expect(target.iterations).toBe(1);
    expect(Array.from(first)).toEqual([9, ...Array.from(source.firstMoment.subarray(1, 4)), 9]);
    expect(Array.from(second)).toEqual([9, ...Array.from(source.secondMoment.subarray(1, 4)), 9]);
  });

  it('refuses moments of another size', () => {
    expect(() => new FlatAdam(4, { first: new Float32Array(4), second: new Float32Array(3) })).toThrow(
      /4 weights/,
    );
  });
});
