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
  rankSamples,
  sampleError,
  type WriteReportOptions,
  type WriteReportResult,
  writeReport,
} from './report.js';
export type {
  Outcome,
  ReportBox,
  ReportClassMetrics,
  ReportCurve,
  ReportCurvePoint,
  ReportData,
  ReportSample,
} from './types.js';
