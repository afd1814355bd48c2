import { createHash, randomBytes } from 'node:crypto';
import { cp, link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ModelError } from './errors.js';
// Registers the custom layers, so every model saved by litter loads back.
import './lrn.js';
import './conv-bn-relu.js';

/** File names inside a model directory. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** Options of {@link saveModel}. */
export interface SaveModelOptions {
  /** Stored in model.json as `userDefinedMetadata` (e.g. vocabulary, input size); read back with {@link readModelMetadata}. */
  metadata?: Record<string, unknown>;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Copies what else lives in the old directory (a trainer's optimizer.json, state.json ...) into the new one. */
async function carryOver(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.name === MODEL_JSON || entry.name === WEIGHTS_BIN) continue;
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isFile()) {
      // A hard link costs nothing and the old directory is deleted right after; copy across file systems.
      await link(source, target).catch(() => cp(source, target));
    } else {
      await cp(source, target, { recursive: true, verbatimSymlinks: true });
    }
  }
}

/**
 * Saves a model as `dir/model.json` + `dir/weights.bin` (the tfjs layers-model format that
 * `tf.loadLayersModel('file://...')` of tfjs-node also reads), atomically: everything is written to a sibling
 * staging directory first and then renamed into place, so a crash leaves either the old model or the new one,
 * never a mix. Other files already in `dir` are kept. Parent directories are created.
 *
 * @throws {ModelError} `model-io` when the directory cannot be written.
 * @example
 * await saveModel(model, 'runs/1/checkpoints/last', { metadata: { vocabulary } });
 */
export async function saveModel(
  model: tfl.LayersModel,
  dir: string,
  options: SaveModelOptions = {},
): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const staging = path.join(parent, `.${path.basename(target)}.saving-${suffix}`);
  const retired = path.join(parent, `.${path.basename(target)}.old-${suffix}`);
  try {
    await mkdir(staging, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weightData =
          artifacts.weightData === undefined
            ? new ArrayBuffer(0)
            : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
        const modelJson: tf.io.ModelJSON = {
          modelTopology: artifacts.modelTopology as object,
          format: artifacts.format ?? 'layers-model',
          generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
          convertedBy: artifacts.convertedBy ?? null,
          weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
          ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
          ...(options.metadata ? { userDefinedMetadata: options.metadata as Record<string, object> } : {}),
          // Read back by loadModel: weights of the right length but other content are refused, not loaded.
          [CHECKSUM_FIELD]: sha256(new Uint8Array(weightData)),
        } as tf.io.ModelJSON;
        await writeFile(path.join(staging, WEIGHTS_BIN), new Uint8Array(weightData));
        await writeFile(path.join(staging, MODEL_JSON), JSON.stringify(modelJson));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
    if (await exists(target)) {
      await carryOver(target, staging);
      await rename(target, retired);
      await rename(staging, target);
      await rm(retired, { recursive: true, force: true });
    } else {
      await rename(staging, target);
    }
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw new ModelError('model-io', `cannot save the model to ${target}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Resolves a model directory or a path to its model.json. */
function modelJsonPath(dirOrFile: string): string {
  const resolved = path.resolve(dirOrFile);
  return resolved.endsWith('.json') ? resolved : path.join(resolved, MODEL_JSON);
}

async function readModelJson(jsonPath: string): Promise<tf.io.ModelJSON> {
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (error) {
    throw new ModelError(
      'model-not-found',
      `no saved model at ${jsonPath} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): give a directory written by saveModel`,
      { cause: error },
    );
  }
  try {
    const json = JSON.parse(text) as tf.io.ModelJSON;
    if (typeof json !== 'object' || json === null || json.modelTopology == null)
      throw new Error('no modelTopology');
    return json;
  } catch (error) {
    throw new ModelError('model-io', `${jsonPath} is not a tfjs model.json: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Loads a model written by {@link saveModel} (a directory, or the path of its model.json). The model is not
 * compiled. Custom layers of model packages must be registered first (import the package; litter's LRN
 * layer is always registered).
 *
 * @throws {ModelError} `model-not-found` when there is no model.json; `model-io` when it or its weights are
 *   unreadable, truncated, or use an unknown layer.
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  const jsonPath = modelJsonPath(dir);
  const modelJson = await readModelJson(jsonPath);
  const base = path.dirname(jsonPath);
  try {
    const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      const buffers: ArrayBuffer[] = [];
      for (const group of manifest) {
        for (const file of group.paths) {
          const weightsPath = path.resolve(base, file);
          if (path.relative(base, weightsPath).startsWith('..'))
            throw new Error(`weights path ${file} leaves the model directory`);
          const bytes = await readFile(weightsPath);
          buffers.push(
            bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
          );
        }
      }
      const specs = tf.io.getWeightSpecs(manifest);
      const data = tf.io.CompositeArrayBuffer.join(buffers);
      const expected = specs.reduce((sum, spec) => sum + byteSize(spec), 0);
      if (data.byteLength !== expected) {
        throw new Error(
          `weights are ${data.byteLength} bytes, model.json describes ${expected}: the save was cut short`,
        );
      }
      const checksum = (modelJson as unknown as Record<string, unknown>)[CHECKSUM_FIELD];
      const weightsPath = path.resolve(base, manifest[0]?.paths[0] ?? WEIGHTS_BIN);
      // Models saved before the checksum existed have none: they load as before.
      if (typeof checksum === 'string' && sha256(new Uint8Array(data)) !== checksum) {
        throw new WeightsProblem(
          'model-io',
          `${weightsPath} does not match the checksum in model.json (the file is damaged or was replaced): use another checkpoint or train again`,
        );
      }
      const nonFinite = countNonFinite(specs, data);
      if (nonFinite > 0) {
        throw new WeightsProblem(
          'model-invalid',
          `${weightsPath} holds ${nonFinite} NaN or infinite weights (the training diverged, or the file is damaged): use another checkpoint or train again with a lower learning rate`,
        );
      }
      return [specs, data];
    });
    return await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    if (error instanceof WeightsProblem) throw new ModelError(error.code, error.message);
    throw new ModelError('model-io', `cannot load the model at ${base}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The field of model.json that holds the SHA-256 (hex) of its weights. */
const CHECKSUM_FIELD = 'litterWeightsSha256';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A problem with the weights themselves, raised inside tfjs' loader and rethrown as it is. */
class WeightsProblem extends Error {
  constructor(
    readonly code: 'model-io' | 'model-invalid',
    message: string,
  ) {
    super(message);
  }
}

/** How many float32 weights are NaN or infinite. */
function countNonFinite(specs: readonly tf.io.WeightsManifestEntry[], data: ArrayBuffer): number {
  let offset = 0;
  let count = 0;
  for (const spec of specs) {
    const size = byteSize(spec);
    if ((spec.quantization?.dtype ?? spec.dtype) === 'float32' && offset % 4 === 0) {
      const values = new Float32Array(data, offset, size / 4);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) count++;
    }
    offset += size;
  }
  return count;
}

/** Bytes of one weight as stored (float32/int32 = 4 bytes, quantised ones as their quantisation dtype). */
function byteSize(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes: Record<string, number> = {
    float32: 4,
    int32: 4,
    bool: 1,
    uint8: 1,
    uint16: 2,
    float16: 2,
    int8: 1,
    int16: 2,
  };
  return count * (bytes[dtype] ?? 4);
}

/** The `metadata` given to {@link saveModel}, or `undefined` when there was none. */
export async function readModelMetadata(dir: string): Promise<Record<string, unknown> | undefined> {
  const json = await readModelJson(modelJsonPath(dir));
  return json.userDefinedMetadata as Record<string, unknown> | undefined;
}
