export { type AlignedDataset, alignToVocabulary } from './align.js';
export { type EarlyStoppingOptions, earlyStopping } from './callbacks.js';
export {
  type BoxPredictions,
  boxIoU,
  COCO_IOU_THRESHOLDS,
  cocoAveragePrecision,
  computeDetectionMetrics,
  type DetectionClassMetrics,
  type DetectionMetrics,
} from './detection.js';
export { TrainerError, type TrainerErrorCode } from './errors.js';
export { type DatasetPredictions, type EvaluateOptions, evaluate, predictDataset } from './evaluate.js';
export { formatEvaluation } from './format.js';
export {
  type Affine,
  augmentGeometry,
  GEOMETRY_DEFAULTS,
  type GeometryBatch,
  type GeometryOptions,
  IDENTITY,
  randomAffine,
  transformBox,
  warpImage,
} from './geometry.js';
export type { HistoryRow, StepRow, ValidationFigures, ValidationRow } from './history.js';
export {
  commonSize,
  type InputSizeOptions,
  inputSizeFor,
  PIXELS_PER_CORE,
  pixelBudget,
} from './input-size.js';
export {
  averagePrecision,
  type BoxMetrics,
  type ClassMetrics,
  type ComputeEvaluationOptions,
  computeBoxMetrics,
  computeEvaluation,
  computeThresholdMetrics,
  type Evaluation,
  type PrecisionRecallCurve,
  type PrecisionRecallPoint,
  precisionRecallCurve,
  precisionRecallCurves,
  type ThresholdMetrics,
  tuneThresholds,
} from './metrics.js';
export {
  BEST_METRICS,
  type BestMetric,
  CHECKPOINT_KINDS,
  type CheckpointKind,
  type ColorJitter,
  type EvaluationSplit,
  isParallelBackend,
  type OptionSpec,
  type OptionValue,
  optionProblem,
  type ResolvedSettings,
  resolveSettings,
  resumeProblems,
  SCHEDULES,
  type Schedule,
  type SettingsContext,
  type StopReason,
  TRAIN_OPTIONS,
  type TrainOptionName,
  type TrainSettings,
} from './options.js';
export {
  createParallelTrainer,
  type OptimizerWeight,
  type ParallelStepOptions,
  type ParallelTrainer,
  type ParallelTrainerOptions,
  type StepTiming,
} from './parallel/index.js';
export {
  type ClassPrediction,
  type LoadedRun,
  type LoadRunOptions,
  loadRun,
  type Prediction,
  type PredictOptions,
  predictImages,
} from './predict.js';
export { type RunReport, type WriteRunReportOptions, writeRunReport } from './report.js';
export {
  type ClaimOptions,
  claimRunDir,
  isOwnRunDir,
  RUN_LOCK,
  RUN_MARKER,
  type RunClaim,
} from './run-claim.js';
export {
  type BestRecord,
  type CheckpointState,
  RUN_FILES,
  type RunConfig,
  type RunEvaluation,
  readRunConfig,
} from './run-dir.js';
export {
  describeScheduleChange,
  finished,
  formatSeconds,
  learningRateAt,
  type Progress,
  progressiveSizes,
  progressOf,
  type SizeStage,
  stageAt,
  type TrainingLength,
  type TrainingSchedule,
} from './schedule.js';
export { train } from './train.js';
export type {
  CheckpointEvent,
  StepEndEvent,
  TrainBeginEvent,
  TrainEndEvent,
  TrainerCallbacks,
  TrainOptions,
  TrainResult,
  TrainSplit,
  ValidationEvent,
} from './train-types.js';
