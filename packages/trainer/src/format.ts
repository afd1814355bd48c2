import type { Evaluation, ThresholdMetrics } from './metrics.js';

const number = (value: number, digits = 3): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

function table(rows: string[][], alignLeft: readonly boolean[]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) =>
        alignLeft[column] ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ')
      .trimEnd(),
  );
}

function section(title: string, metrics: ThresholdMetrics, size: number): string[] {
  const header = ['class', 'visible', 'threshold', 'precision', 'recall', 'F1', 'AP'];
  const rows = metrics.classes.map((m) => [
    m.name,
    `${m.support}/${size}`,
    number(m.threshold, 2),
    number(m.precision),
    number(m.recall),
    number(m.f1),
    number(m.averagePrecision),
  ]);
  return [
    title,
    ...table([header, ...rows], [true, false, false, false, false, false, false]),
    `exact match ${number(metrics.exactMatch)}   Hamming loss ${number(metrics.hammingLoss)}   ` +
      `micro F1 ${number(metrics.microF1)}   macro F1 ${number(metrics.macroF1)}`,
  ];
}

/**
 * The evaluation as a readable plain-text table (what `evaluation.txt` holds and the CLI prints).
 *
 * @example
 * console.log(formatEvaluation(result.evaluation));
 * // Evaluation: 49 images, 2 classes, loss 0.2310, mean average precision 0.912
 * //
 * // At threshold 0.5
 * // class   visible  threshold  precision  recall     F1     AP
 * // Cube      30/49       0.50      0.923   0.800  0.857  0.951
 * // ...
 */
export function formatEvaluation(evaluation: Evaluation, options: { title?: string } = {}): string {
  const loss = evaluation.loss === undefined ? '' : `, loss ${number(evaluation.loss, 4)}`;
  const lines = [
    `${options.title ?? 'Evaluation'}: ${evaluation.size} images, ${evaluation.vocabulary.length} classes${loss}, ` +
      `mean average precision ${number(evaluation.meanAveragePrecision)}`,
    '',
    ...section('At threshold 0.5', evaluation.fixed, evaluation.size),
  ];
  if (evaluation.tuned) {
    lines.push('', ...section('At the thresholds tuned on validation', evaluation.tuned, evaluation.size));
  }
  return `${lines.join('\n')}\n`;
}
