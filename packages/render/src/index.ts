/**
 * @litter/render: training data for litter, rendered by headless Blender from Node.js. Objects dropped with
 * rigid-body physics, an orbiting (or random) camera, domain randomisation; labels.json in the seed's format
 * (and COCO), boxes from the projected mesh or from the pixels an object covers; parallel, resumable, sharded.
 */
export {
  type BlenderInfo,
  type FindBlenderOptions,
  findBlender,
  installHint,
  isSupportedBlender,
  locateBlender,
  MIN_BLENDER,
  parseBlenderVersion,
  TESTED_BLENDER,
  TOO_NEW_BLENDER,
} from './blender.js';
export { DEFAULTS } from './defaults.js';
export { MAX_LISTED_PROBLEMS, RenderError, type RenderErrorCode } from './errors.js';
export {
  type BoxArray,
  type CocoDataset,
  cocoDataset,
  type EnvironmentRecord,
  labelEntries,
  type ObjectRecord,
  type SceneRecord,
  type SurfaceRecord,
  type ViewRecord,
  visibleBox,
} from './labels.js';
export { type MergeResult, mergeRenders } from './merge.js';
export { relabel } from './relabel.js';
export {
  defaultWorkers,
  type RenderBeginEvent,
  type RenderCallbacks,
  type RenderEndEvent,
  type RenderOptions,
  type RenderResult,
  type RenderSceneEvent,
  type RenderViewEvent,
  render,
  SCENES_PER_WORKER,
} from './render.js';
export {
  type FileObject,
  fingerprint,
  MESH_FORMATS,
  type MeshFormat,
  type ObjectSpec,
  orbitGrid,
  PRIMITIVES,
  type Primitive,
  type PrimitiveObject,
  parseObjectFlag,
  parseSceneFile,
  type RenderFlags,
  type RenderSettings,
  type ResolveSettingsOptions,
  resolveSettings,
  type SceneFile,
  sceneFileSchema,
  settingsDifferences,
  type Visibility,
} from './settings.js';
export { parseShard, type Shard, shardFromEnv, shardScenes } from './shard.js';
