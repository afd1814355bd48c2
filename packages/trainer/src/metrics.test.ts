import { describe, expect, it } from 'vitest';
import { TrainerError } from './errors.js';
import { formatEvaluation } from './format.js';
import { averagePrecision, computeEvaluation, computeThresholdMetrics, tuneThresholds } from './metrics.js';

// Four images, two classes (A, B). Every expected value below was worked out by hand from this table:
//   image  p(A)  A   p(B)  B
//   0      0.9   1   0.2   0
//   1      0.6   0   0.7   1
//   2      0.4   1   0.4   1
//   3      0.1   0   0.8   0
const probabilities = new Float32Array([0.9, 0.2, 0.6, 0.7, 0.4, 0.4, 0.1, 0.8]);
const labels = new Float32Array([1, 0, 0, 1, 1, 1, 0, 0]);
const vocabulary = ['A', 'B'];

describe('averagePrecision', () => {
  it('sums recall steps times precision, highest score first', () => {
    // A: 0.9 hit (R 1/2, P 1), 0.6 miss, 0.4 hit (R 1, P 2/3): 1/2 + 1/2 * 2/3
    expect(averagePrecision([0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0])).toBeCloseTo(5 / 6, 10);
    // B: 0.8 miss, 0.7 hit (R 1/2, P 1/2), 0.4 hit (R 1, P 2/3): 1/4 + 1/3
    expect(averagePrecision([0.2, 0.7, 0.4, 0.8], [0, 1, 1, 0])).toBeCloseTo(7 / 12, 10);
  });

  it('treats tied scores as one threshold', () => {
    // all three enter together: recall 1 at precision 1/3 (not 1 if the positive were ranked first)
    expect(averagePrecision([0.5, 0.5, 0.5], [0, 0, 1])).toBeCloseTo(1 / 3, 10);
    expect(averagePrecision([0.5, 0.5, 0.5], [1, 0, 0])).toBeCloseTo(1 / 3, 10);
  });

  it('is 1 for a perfect ranking and 0 without positives', () => {
    expect(averagePrecision([0.1, 0.9, 0.8], [0, 1, 1])).toBe(1);
    expect(averagePrecision([0.1, 0.9], [0, 0])).toBe(0);
  });
});

describe('computeEvaluation at threshold 0.5', () => {
  const evaluation = computeEvaluation(probabilities, labels, vocabulary, { loss: 0.25 });

  it('counts per class', () => {
    const [a, b] = evaluation.fixed.classes;
    // A predicted on images 0, 1: tp image 0, fp image 1, fn image 2, tn image 3
    expect(a).toMatchObject({ name: 'A', threshold: 0.5, support: 2, predicted: 2 });
    expect(a).toMatchObject({ truePositives: 1, falsePositives: 1, falseNegatives: 1, trueNegatives: 1 });
    expect([a!.precision, a!.recall, a!.f1]).toEqual([0.5, 0.5, 0.5]);
    // B predicted on images 1, 3: tp image 1, fp image 3, fn image 2, tn image 0
    expect(b).toMatchObject({ truePositives: 1, falsePositives: 1, falseNegatives: 1, trueNegatives: 1 });
    expect(a!.averagePrecision).toBeCloseTo(5 / 6, 6);
    expect(b!.averagePrecision).toBeCloseTo(7 / 12, 6);
  });

  it('summarises over images and classes', () => {
    // only image 0 is entirely right; 4 of 8 label bits are wrong (image 1: A, image 2: A and B, image 3: B)
    expect(evaluation.fixed.exactMatch).toBe(0.25);
    expect(evaluation.fixed.hammingLoss).toBe(0.5);
    expect(evaluation.fixed.microF1).toBe(0.5);
    expect(evaluation.fixed.macroF1).toBe(0.5);
    expect(evaluation.meanAveragePrecision).toBeCloseTo((5 / 6 + 7 / 12) / 2, 6);
    expect(evaluation.size).toBe(4);
    expect(evaluation.loss).toBe(0.25);
    expect(evaluation.tuned).toBeUndefined();
  });

  it('separates micro from macro F1 when classes differ in size', () => {
    // class X: 3 positives, all found (F1 1); class Y: 1 positive, missed, one false alarm (F1 0)
    const p = new Float32Array([0.9, 0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1]);
    const y = new Float32Array([1, 0, 1, 0, 1, 0, 0, 1]);
    const m = computeThresholdMetrics(p, y, ['X', 'Y'], [0.5, 0.5]);
    expect(m.macroF1).toBe(0.5);
    // pooled: tp 3, fp 1, fn 1 -> 6 / 8
    expect(m.microF1).toBe(0.75);
    expect(m.microPrecision).toBe(0.75);
    expect(m.exactMatch).toBe(0.5);
    expect(m.hammingLoss).toBe(0.25);
  });

  it('gives 0 rather than NaN for a class never present nor predicted', () => {
    const m = computeThresholdMetrics(new Float32Array([0.1, 0.2]), new Float32Array([0, 0]), ['Z'], [0.5]);
    expect(m.classes[0]).toMatchObject({
      precision: 0,
      recall: 0,
      f1: 0,
      averagePrecision: 0,
      trueNegatives: 2,
    });
    expect(m.exactMatch).toBe(1);
    expect(m.hammingLoss).toBe(0);
  });

  it('rejects mismatched shapes', () => {
    expect(() => computeEvaluation(new Float32Array(3), new Float32Array(4), ['A', 'B'])).toThrow(
      /@litter\/trainer: .*2 classes/,
    );
  });
});

describe('tuneThresholds', () => {
  it('maximises each class F1 with a threshold between scores', () => {
    // A: cutting between 0.4 and 0.1 predicts {0.9, 0.6, 0.4}: tp 2, fp 1 -> F1 0.8 (best); midpoint 0.25
    // B: cutting between 0.4 and 0.2 predicts {0.8, 0.7, 0.4}: tp 2, fp 1 -> F1 0.8 (best); midpoint 0.3
    const thresholds = tuneThresholds(probabilities, labels, 2);
    expect(thresholds[0]).toBeCloseTo(0.25, 6);
    expect(thresholds[1]).toBeCloseTo(0.3, 6);

    const evaluation = computeEvaluation(probabilities, labels, vocabulary, { thresholds });
    // predictions: image 0 (A), image 1 (A, B), image 2 (A, B), image 3 (B): images 0 and 2 right
    expect(evaluation.tuned!.exactMatch).toBe(0.5);
    expect(evaluation.tuned!.hammingLoss).toBe(0.25);
    expect(evaluation.tuned!.classes.map((m) => m.f1)).toEqual([0.8, 0.8]);
    expect(evaluation.fixed.exactMatch).toBe(0.25);
  });

  it('keeps 0.5 when it already separates best', () => {
    expect(tuneThresholds(new Float32Array([0.9, 0.3]), new Float32Array([1, 0]), 1)).toEqual([0.5]);
  });

  it('prefers the best interval nearest 0.5', () => {
    // cut below 0.95 -> F1 2/3 (interval (0.9, 0.95], 0.4 from 0.5); cut below 0.15 -> F1 2/3 (interval
    // (0, 0.15], 0.35 from 0.5): the second wins, at its midpoint 0.075
    const t = tuneThresholds(new Float32Array([0.95, 0.9, 0.2, 0.15]), new Float32Array([1, 0, 0, 1]), 1);
    expect(t[0]).toBeCloseTo(0.075, 6);
  });

  it('keeps 0.5 for classes with nothing to tune on', () => {
    const p = new Float32Array([0.1, 0.9, 0.2, 0.8]);
    expect(tuneThresholds(p, new Float32Array([0, 1, 0, 1]), 2)).toEqual([0.5, 0.5]);
  });
});

describe('formatEvaluation', () => {
  it('prints a row per class and the overall figures, for 0.5 and the tuned thresholds', () => {
    const thresholds = tuneThresholds(probabilities, labels, 2);
    const text = formatEvaluation(
      computeEvaluation(probabilities, labels, vocabulary, { thresholds, loss: 0.5 }),
      {
        title: 'Validation',
      },
    );
    const lines = text.split('\n');
    expect(lines[0]).toBe('Validation: 4 images, 2 classes, loss 0.5000, mean average precision 0.708');
    expect(lines).toContain('At threshold 0.5');
    expect(text).toMatch(/^A\s+2\/4\s+0\.50\s+0\.500\s+0\.500\s+0\.500\s+0\.833$/m);
    expect(text).toMatch(/^A\s+2\/4\s+0\.25\s+0\.667\s+1\.000\s+0\.800\s+0\.833$/m);
    expect(text).toContain('exact match 0.250   Hamming loss 0.500   micro F1 0.500   macro F1 0.500');
    expect(text).toContain('exact match 0.500   Hamming loss 0.250   micro F1 0.800   macro F1 0.800');
  });
});

describe('NaN and infinite scores', () => {
  // Before: NaN never equals itself, so the walk over tied scores never advanced (evaluate and report hung).
  const scores = new Float32Array([0.9, Number.NaN, 0.3, 0.7]);
  const labels = new Float32Array([1, 0, 1, 0]);
  it.each([
    ['averagePrecision', () => averagePrecision(scores, labels)],
    ['tuneThresholds', () => tuneThresholds(scores, labels, 1)],
    ['computeEvaluation', () => computeEvaluation(scores, labels, ['Cube'], { thresholds: [0.5] })],
    ['averagePrecision (Infinity)', () => averagePrecision([Number.POSITIVE_INFINITY, 0.2], [1, 0])],
  ])('%s throws a TrainerError naming the score instead of looping', (_, run) => {
    expect(run).toThrow(TrainerError);
    expect(run).toThrow(/score 1 is NaN|score 0 is Infinity/);
    try {
      run();
    } catch (error) {
      expect((error as TrainerError).code).toBe('non-finite-output');
    }
  });
});
