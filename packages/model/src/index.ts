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
  type BoxHead,
  type BoxLossOptions,
  type BoxTargets,
  boxHeadOf,
  classificationLoss,
  type DecodedBoxes,
  maskedBoxLoss,
  orderBoxes,
  pooledBoxHead,
  registerBoxHead,
} from './box-head.js';
export {
  addCenterNetHead,
  CENTERNET,
  type CenterNetHeadOptions,
  type CenterNetTargets,
  centerNetHead,
  centerNetTargets,
  decodeCenterNet,
  detectionScores,
  focalLoss,
} from './centernet.js';
export {
  type CreateModelOptions,
  checkCreateOptions,
  contractProblems,
  isModelFactory,
  type ModelFactory,
} from './contract.js';
export { ConvBatchNormRelu, type ConvBatchNormReluArgs, isBatchNormLayer } from './conv-bn-relu.js';
export { ModelError, type ModelErrorCode } from './errors.js';
export { GradientScale, type GradientScaleArgs } from './gradient-scale.js';
export {
  loadModel,
  MODEL_JSON,
  readModelMetadata,
  type SaveModelOptions,
  saveModel,
  WEIGHTS_BIN,
} from './io.js';
export { LocalResponseNormalization, type LocalResponseNormalizationArgs } from './lrn.js';
export {
  builtinModelNames,
  importPackage,
  type ModelRegistration,
  type ResolveModelOptions,
  registeredModels,
  registerModel,
  resolveModel,
} from './resolve.js';
export { classificationHead, initializerSeeds, seedCnn } from './seed-cnn.js';
export {
  registerTrainingKernels,
  restoreOriginalKernels,
  type TrainingKernelBackend,
} from './training-kernels.js';
