/* The rows of a run's history: `metrics.jsonl` (written and read by `_history.ts`). */

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

/** A validation's figures (at threshold 0.5), as its `metrics.jsonl` row and the `onValidation` event carry them. */
export interface ValidationFigures {
  step: number;
  /** Epochs done, fractional (as {@link StepRow.epoch}). */
  epoch: number;
  /** Validation loss (mean sigmoid cross entropy). */
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
  /** Seconds spent in training steps so far (as {@link StepRow.elapsedSeconds}). */
  elapsedSeconds: number;
}

/** One validation: a line of `metrics.jsonl` with `"event":"validation"`. */
export interface ValidationRow extends ValidationFigures {
  event: 'validation';
  /** As {@link StepRow.seconds}. */
  seconds?: number;
  /** The image size validated at (it changes with progressive resizing). */
  width?: number;
  height?: number;
}

/** A row of the run's history (`metrics.jsonl`, `metrics.csv`, {@link TrainResult.history}). */
export type HistoryRow = StepRow | ValidationRow;
