import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@litter/dataset';
import { RUN_FILES } from './run-dir.js';

/** One logged training step: a line of `metrics.jsonl` with `"event":"step"`. */
export interface StepRow {
  event: 'step';
  /** Optimizer steps done (1-based: the row of the first step has step 1). */
  step: number;
  /** Epochs done, fractional: step / batches per epoch (an epoch is ceil(train images / batch size) steps). */
  epoch: number;
  /** This step's training loss (mean sigmoid cross entropy, plus the box loss when training boxes). */
  loss: number;
  learningRate: number;
  /** Training throughput over the last few steps. */
  imagesPerSecond: number;
  /** Seconds spent in training steps since the run began (not counting validation and checkpoints). */
  elapsedSeconds: number;
  /** Seconds of training since the run began, validations and checkpoints included (a time budget's clock). */
  seconds?: number;
}

/** One validation: a line of `metrics.jsonl` with `"event":"validation"` (metrics at threshold 0.5). */
export interface ValidationRow {
  event: 'validation';
  step: number;
  epoch: number;
  loss: number;
  exactMatch: number;
  macroF1: number;
  microF1: number;
  hammingLoss: number;
  meanAveragePrecision: number;
  /** With a box head, at threshold 0.5: mean IoU and share with IoU >= 0.5 of the correctly detected objects. */
  meanIoU?: number;
  shareIoU50?: number;
  /** With a box head: COCO's mean AP at IoU 0.5 and averaged over 0.5:0.95 (one box per class per image). */
  ap50?: number;
  ap?: number;
  elapsedSeconds: number;
  /** As {@link StepRow.seconds}. */
  seconds?: number;
  /** The image size validated at (it changes with progressive resizing). */
  width?: number;
  height?: number;
}

/** A row of the run's history (`metrics.jsonl`, `metrics.csv`, {@link TrainResult.history}). */
export type HistoryRow = StepRow | ValidationRow;

const CSV_COLUMNS = [
  'event',
  'step',
  'epoch',
  'loss',
  'learningRate',
  'imagesPerSecond',
  'exactMatch',
  'macroF1',
  'microF1',
  'hammingLoss',
  'meanAveragePrecision',
  'meanIoU',
  'shareIoU50',
  'ap50',
  'ap',
  'elapsedSeconds',
  'seconds',
] as const;

const csvLine = (row: HistoryRow): string =>
  `${CSV_COLUMNS.map((column) => {
    const value = (row as unknown as Record<string, unknown>)[column];
    return value === undefined ? '' : String(value);
  }).join(',')}\n`;

const CSV_HEADER = `${CSV_COLUMNS.join(',')}\n`;

/** The rows of a run's `metrics.jsonl` (none when it is missing), skipping a last line cut short by a crash. */
export async function readHistory(runDir: string): Promise<HistoryRow[]> {
  const text = await readFile(join(runDir, RUN_FILES.metrics), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as HistoryRow];
      } catch {
        return []; // a line cut short by a crash
      }
    });
}

/** `metrics.jsonl` and `metrics.csv`, appended to as the run goes. */
export class MetricsLog {
  private constructor(
    private readonly jsonlPath: string,
    private readonly csvPath: string,
    readonly rows: HistoryRow[],
  ) {}

  /**
   * Starts the log of a run. When resuming from `resumeStep`, rows after it (written after the checkpoint, before
   * the interruption) are dropped, so that the resumed run does not log those steps twice.
   */
  static async open(runDir: string, resumeStep?: number): Promise<MetricsLog> {
    const jsonlPath = join(runDir, RUN_FILES.metrics);
    const csvPath = join(runDir, RUN_FILES.metricsCsv);
    const rows =
      resumeStep === undefined ? [] : (await readHistory(runDir)).filter((row) => row.step <= resumeStep);
    await writeFileAtomic(jsonlPath, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
    await writeFileAtomic(csvPath, CSV_HEADER + rows.map(csvLine).join(''));
    return new MetricsLog(jsonlPath, csvPath, rows);
  }

  async append(row: HistoryRow): Promise<void> {
    this.rows.push(row);
    // One write call per line: a crash loses at most the line being written, which open() then skips.
    await appendFile(this.jsonlPath, `${JSON.stringify(row)}\n`);
    await appendFile(this.csvPath, csvLine(row));
  }
}
