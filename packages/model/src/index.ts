export {
  registerTrainingKernels,
  restoreOriginalKernels,
  type TrainingKernelBackend,
} from './_training-kernels.js';
export {
  type BackendInfo,
  type BackendName,
  type BackendProbe,
  type InitBackendOptions,
  initBackend,
  type ModuleImporter,
  probeBackends,
} from './backend.js';
export {
  type CreateModelOptions,
  checkCreateOptions,
  contractProblems,
  isModelFactory,
  type ModelFactory,
} from './contract.js';
export { ConvBatchNormRelu, type ConvBatchNormReluArgs, isBatchNormLayer } from './conv-bn-relu.js';
export { ModelError, type ModelErrorCode } from './errors.js';
export {
  loadModel,
  MODEL_JSON,
  readModelMetadata,
  type SaveModelOptions,
  saveModel,
  WEIGHTS_BIN,
} from './io.js';
export { LocalResponseNormalization, type LocalResponseNormalizationArgs } from './lrn.js';
export { BUILTIN_MODELS, type ResolveModelOptions, resolveModel } from './resolve.js';
export { classificationHead, initializerSeeds, seedCnn } from './seed-cnn.js';
