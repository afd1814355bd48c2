export type { HistoryRow, StepRow, ValidationRow } from './_history.js';
export { TrainerError, type TrainerErrorCode } from './errors.js';
export { type DatasetPredictions, type EvaluateOptions, evaluate, predictDataset } from './evaluate.js';
export { formatEvaluation } from './format.js';
export {
  averagePrecision,
  type BoxMetrics,
  type BoxPredictions,
  boxIoU,
  type ClassMetrics,
  type ComputeEvaluationOptions,
  computeBoxMetrics,
  computeEvaluation,
  computeThresholdMetrics,
  type Evaluation,
  type ThresholdMetrics,
  tuneThresholds,
} from './metrics.js';
export {
  createParallelTrainer,
  type OptimizerWeight,
  type ParallelStepOptions,
  type ParallelTrainer,
  type ParallelTrainerOptions,
  type StepTiming,
} from './parallel/index.js';
export { type RunReport, type WriteRunReportOptions, writeRunReport } from './report.js';
export {
  type ClassPrediction,
  type LoadedRun,
  type LoadRunOptions,
  loadRun,
  type Prediction,
  type PredictOptions,
  predictImages,
} from './run.js';
export {
  type CheckpointEvent,
  type RunConfig,
  type StepEndEvent,
  type TrainBeginEvent,
  type TrainEndEvent,
  type TrainerCallbacks,
  type TrainOptions,
  type TrainResult,
  type TrainSplit,
  train,
  type ValidationEvent,
} from './train.js';
