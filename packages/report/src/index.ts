export {
  type AnnotatedImage,
  type AnnotateOptions,
  type AnnotationBox,
  annotateImage,
  PREDICTED_BOX_COLOR,
  renderAnnotatedImage,
  TRUE_BOX_COLOR,
} from './annotate.js';
export { ReportError, type ReportErrorCode } from './errors.js';
export {
  type PrecisionRecallCurve,
  type PrecisionRecallPoint,
  precisionRecallCurve,
} from './precision-recall.js';
export {
  type ClassRow,
  type Outcome,
  type ReportBox,
  type ReportData,
  type ReportSample,
  rankSamples,
  sampleError,
  type WriteReportOptions,
  type WriteReportResult,
  writeReport,
} from './report.js';
