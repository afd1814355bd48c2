/**
 * @litter/dataset: Blender render datasets for multi-label image classification, without an ML framework.
 * labels.json parsing and validation, vocabulary, multi-hot encoding, image decoding, a CBOR cache, splits
 * by scene, a seeded epoch sampler and batches.
 */

export { isProcessAlive, temporaryName, writeFileAtomic, writeJsonAtomic } from './atomic.js';
export {
  type Batch,
  type Batcher,
  type BatcherOptions,
  createBatcher,
  getBatch,
} from './batcher.js';
export { builtModule } from './built-module.js';
export { CACHE_FORMAT_VERSION } from './cache-format.js';
export {
  type CacheEvent,
  clearCache,
  type Dataset,
  defaultCachePath,
  type LoadDatasetOptions,
  loadDataset,
  type SkippedImage,
} from './dataset.js';
export type { DecodeProgress } from './decode-progress.js';
export { type EncodedLabels, encodeLabels, toImageBox } from './encode.js';
export { DatasetError, type DatasetErrorCode, MAX_LISTED_PROBLEMS } from './errors.js';
export {
  type Background,
  DEFAULT_BACKGROUND,
  type DecodeImageOptions,
  decodeImage,
  imageSize,
  imageSizeProblem,
  MAX_IMAGE_FILE_BYTES,
  MAX_IMAGE_PIXELS,
} from './images.js';
export { type LabelEntry, type NormalizedBox, parseLabels, readLabels } from './labels.js';
export { type RandomState, SeededRandom } from './random.js';
export { EpochSampler, type EpochSamplerOptions, type SamplerState } from './sampler.js';
export { sceneOf } from './scenes.js';
export { type Split, type SplitOptions, splitDataset } from './split.js';
export { buildVocabulary, parseVocabulary, readVocabularyFile } from './vocabulary.js';
