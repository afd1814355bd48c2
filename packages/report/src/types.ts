/** A box: `[x1, y1, x2, y2]` normalised to [0, 1], y DOWN (image rows); `null` where the class is absent. */
export type ReportBox = readonly number[] | null;

/** One validation image with the model's output. */
export interface ReportSample {
  /** Absolute path of the PNG or JPEG. */
  imagePath: string;
  /** Multi-hot ground truth, one value per class (1 visible, 0 not). */
  labels: readonly number[];
  /** Sigmoid probabilities, one per class, in [0, 1]. */
  probabilities: readonly number[];
  /** True box per class. */
  trueBoxes?: readonly ReportBox[];
  /** Predicted box per class (drawn where the class is predicted visible). */
  predictedBoxes?: readonly ReportBox[];
  /** Per class, the IoU of the predicted with the true box where both are there (shown for correct detections). */
  iou?: readonly (number | null)[];
}

/**
 * The figures of one class in the report's class table: the trainer's evaluation of the samples at the report's
 * thresholds (`@litter/trainer`'s `ClassMetrics` is one). The report shows them as they are.
 */
export interface ReportClassMetrics {
  name: string;
  threshold: number;
  /** Samples where the class is visible. */
  support: number;
  precision: number;
  recall: number;
  f1: number;
  averagePrecision: number;
  /** Localisation of the correct detections, with a box head (`count` 0: no mean IoU to show). */
  box?: { count: number; meanIoU: number };
}

/** One operating point of a precision-recall curve. */
export interface ReportCurvePoint {
  threshold: number;
  precision: number;
  recall: number;
}

/** A class's precision-recall curve as the trainer computed it (`@litter/trainer`'s `precisionRecallCurve`). */
export interface ReportCurve {
  /** Highest threshold (lowest recall) first; empty when the class has no positives. */
  points: readonly ReportCurvePoint[];
  averagePrecision: number;
}

/** Everything the report shows, as plain data (no dependency on the trainer): it computes no metric itself. */
export interface ReportData {
  /** Heading, e.g. the run directory's name. */
  title: string;
  /** Class names, in index order. */
  classes: readonly string[];
  /** Training loss against step. */
  history: readonly { step: number; loss: number }[];
  /** Validation loss and metrics against step. */
  validation: readonly { step: number; loss?: number; exactMatch?: number; macroF1?: number }[];
  /** Validation images with predictions: the image grid shows the worst of them. */
  samples: readonly ReportSample[];
  /** Decision threshold per class. @default 0.5 for every class */
  thresholds?: readonly number[];
  /** Per class, the figures of the class table (none: no table). */
  metrics?: readonly ReportClassMetrics[];
  /** Per class, its precision-recall curve over the samples (none: no precision-recall chart). */
  curves?: readonly ReportCurve[];
  /** Overall metrics for the summary table, e.g. `{ 'exact match': 0.93, backend: 'wasm' }`. */
  summary?: Readonly<Record<string, number | string>>;
}

/** What the model got right or wrong per class on one image (true negatives left out). */
export interface Outcome {
  name: string;
  probability: number;
  result: 'TP' | 'FP' | 'FN';
  iou?: number;
}
