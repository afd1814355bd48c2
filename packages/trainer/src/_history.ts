import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@litter/dataset';
import type { HistoryRow, StepRow, ValidationRow } from './history.js';
import { RUN_FILES } from './run-dir.js';

/** The row types, for the modules that write and read the history through this one. */
export type { HistoryRow, StepRow, ValidationRow };

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
/** The validation rows of `rows` after step `step` (none when `step` is undefined: no best validation yet). */
export function validationsAfter(rows: readonly HistoryRow[], step: number | undefined): number {
  if (step === undefined) return 0;
  return rows.filter((row) => row.event === 'validation' && row.step > step).length;
}

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
