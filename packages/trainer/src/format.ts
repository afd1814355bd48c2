import type { DetectionMetrics } from './detection.js';
import type { BoxMetrics, Evaluation, ThresholdMetrics } from './metrics.js';

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
  const boxes = metrics.box !== undefined;
  const header = ['class', 'visible', 'threshold', 'precision', 'recall', 'F1', 'AP'];
  // Localisation columns over the class's true positives: how many, mean IoU, share with IoU >= 0.5.
  if (boxes) header.push('boxes', 'IoU', 'IoU>=.5');
  const rows = metrics.classes.map((m) => [
    m.name,
    `${m.support}/${size}`,
    number(m.threshold, 2),
    number(m.precision),
    number(m.recall),
    number(m.f1),
    number(m.averagePrecision),
    ...(boxes ? boxCells(m.box) : []),
  ]);
  const lines = [
    title,
    ...table([header, ...rows], [true, ...header.slice(1).map(() => false)]),
    `exact match ${number(metrics.exactMatch)}   Hamming loss ${number(metrics.hammingLoss)}   ` +
      `micro F1 ${number(metrics.microF1)}   macro F1 ${number(metrics.macroF1)}`,
  ];
  if (metrics.box) {
    const [count, iou, share] = boxCells(metrics.box);
    lines.push(`boxes of the ${count} correctly detected objects: mean IoU ${iou}   IoU >= 0.5 for ${share}`);
  }
  return lines;
}

/** COCO's APs per class and their means (one box per class per image, scored by the class probability). */
function detectionSection(detection: DetectionMetrics): string[] {
  const header = ['class', 'objects', 'AP50', 'AP75', 'AP'];
  const rows = detection.classes.map((m) => [
    m.name,
    String(m.objects),
    ...(m.objects === 0 ? ['-', '-', '-'] : [number(m.ap50), number(m.ap75), number(m.ap)]),
  ]);
  return [
    'Detection (COCO average precision, one box per class per image)',
    ...table([header, ...rows], [true, false, false, false, false]),
    `AP50 ${number(detection.ap50)}   AP75 ${number(detection.ap75)}   AP (IoU 0.5:0.95) ${number(detection.ap)}`,
  ];
}

/** Count, mean IoU and share with IoU >= 0.5; `-` for the ratios when there is no true positive. */
function boxCells(box: BoxMetrics | undefined): string[] {
  if (!box) return ['-', '-', '-'];
  const none = box.count === 0;
  return [String(box.count), none ? '-' : number(box.meanIoU), none ? '-' : number(box.shareIoU50)];
}

/**
 * The evaluation as a readable plain-text table (what `evaluation.txt` holds and the CLI prints). With a box head,
 * three more columns per class (true positives with a box, their mean IoU, the share with IoU >= 0.5) and a line
 * for all classes pooled.
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
export function formatEvaluation(
  evaluation: Evaluation,
  options: {
    title?: string;
    /** The tuned thresholds were tuned on these same images (validation): say that their figures flatter. */
    tunedHere?: boolean;
  } = {},
): string {
  const loss = evaluation.loss === undefined ? '' : `, loss ${number(evaluation.loss, 4)}`;
  const lines = [
    `${options.title ?? 'Evaluation'}: ${evaluation.size} images, ${evaluation.vocabulary.length} classes${loss}, ` +
      `mean average precision ${number(evaluation.meanAveragePrecision)}`,
    '',
    ...section('At threshold 0.5', evaluation.fixed, evaluation.size),
  ];
  if (evaluation.tuned) {
    const title = options.tunedHere
      ? 'At the thresholds tuned on these same images (optimistic: a test split measures them honestly)'
      : 'At the thresholds tuned on validation';
    lines.push('', ...section(title, evaluation.tuned, evaluation.size));
  }
  if (evaluation.detection) lines.push('', ...detectionSection(evaluation.detection));
  return `${lines.join('\n')}\n`;
}
