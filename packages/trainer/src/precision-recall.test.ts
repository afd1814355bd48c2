import { describe, expect, it } from 'vitest';
import { averagePrecision, precisionRecallCurve } from './metrics.js';

describe('precisionRecallCurve', () => {
  it('matches a hand-computed curve and average precision, ties included', () => {
    // 3 positives. Thresholds, highest first: 0.9 -> 1 TP (P 1, R 1/3); 0.8 -> +1 FP (P 1/2, R 1/3);
    // 0.6 (tied pair) -> +1 TP +1 FP (P 2/4, R 2/3); 0.3 -> +1 TP (P 3/5, R 1); 0.1 -> +1 FP (P 3/6, R 1).
    // AP = 1/3 * 1 + 0 * 1/2 + 1/3 * 1/2 + 1/3 * 3/5 + 0 * 1/2 = (1 + 0.5 + 0.6) / 3 = 0.7
    const curve = precisionRecallCurve([0.9, 0.8, 0.6, 0.6, 0.3, 0.1], [1, 0, 1, 0, 1, 0]);
    expect(curve.positives).toBe(3);
    expect(curve.averagePrecision).toBeCloseTo(0.7, 12);
    const expected = [
      [0.9, 1, 1 / 3],
      [0.8, 1 / 2, 1 / 3],
      [0.6, 1 / 2, 2 / 3],
      [0.3, 3 / 5, 1],
      [0.1, 1 / 2, 1],
    ];
    expect(curve.points).toHaveLength(expected.length);
    curve.points.forEach((p, i) => {
      const [threshold, precision, recall] = expected[i]!;
      expect(p.threshold).toBe(threshold);
      expect(p.precision).toBeCloseTo(precision!, 12);
      expect(p.recall).toBeCloseTo(recall!, 12);
    });
  });

  it('gives AP 1 for a perfect ranking and less when one negative outranks a positive', () => {
    expect(precisionRecallCurve([0.1, 0.8, 0.2, 0.7], [0, 1, 0, 1]).averagePrecision).toBe(1);
    // Ranking: P N P -> AP = 1/2 * 1 + 1/2 * 2/3
    expect(precisionRecallCurve([0.9, 0.8, 0.3], [1, 0, 1]).averagePrecision).toBeCloseTo(5 / 6, 12);
  });

  it('depends only on the order of the scores', () => {
    const labels = [1, 0, 1, 1, 0, 0, 1];
    const scores = [0.2, 0.4, 0.9, 0.5, 0.1, 0.7, 0.3];
    const logits = scores.map((s) => Math.log(s / (1 - s)));
    expect(precisionRecallCurve(logits, labels).averagePrecision).toBeCloseTo(
      precisionRecallCurve(scores, labels).averagePrecision,
      12,
    );
  });

  it('scores one tie of everything at the base rate', () => {
    const curve = precisionRecallCurve([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 1]);
    expect(curve.points).toEqual([{ threshold: 0.5, precision: 0.5, recall: 1 }]);
    expect(curve.averagePrecision).toBe(0.5);
  });

  it('has no curve and average precision 0 without positives, as averagePrecision (one convention)', () => {
    const curve = precisionRecallCurve([0.3, 0.9], [0, 0]);
    expect(curve.points).toEqual([]);
    expect(curve.averagePrecision).toBe(0);
    expect(averagePrecision([0.3, 0.9], [0, 0])).toBe(0);
  });

  it('gives the same average precision as averagePrecision', () => {
    const scores = [0.2, 0.4, 0.9, 0.5, 0.1, 0.7, 0.3, 0.7];
    const targets = [1, 0, 1, 1, 0, 0, 1, 1];
    expect(precisionRecallCurve(scores, targets).averagePrecision).toBe(averagePrecision(scores, targets));
  });

  it('rejects mismatched lengths and non-finite scores', () => {
    expect(() => precisionRecallCurve([0.5], [1, 0])).toThrow(/1 scores but 2 targets/);
    expect(() => precisionRecallCurve([0.5, Number.NaN], [1, 0])).toThrow(/score 1 is NaN/);
  });
});
