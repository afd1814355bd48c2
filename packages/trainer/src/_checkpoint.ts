import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '@litter/dataset';
import { saveModel } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { makeTemporaryDirectory, readJson, replaceDirectory } from './_io.js';
import { TrainerError } from './errors.js';
import type { OptimizerWeight } from './parallel/_protocol.js';
import { type CheckpointState, CHECKPOINT_FILES as FILES } from './run-dir.js';

interface OptimizerManifest {
  format: 1;
  className: string;
  config: tf.serialization.ConfigDict;
  weights: {
    name: string;
    dtype: 'float32' | 'int32';
    shape: number[];
    byteOffset: number;
    length: number;
  }[];
}

/**
 * An optimizer's state with its values copied out: what `optimizer.bin`/`optimizer.json` hold. The in-process
 * loop takes it from its tfjs optimizer ({@link snapshotOptimizer}), the data-parallel one from its workers.
 */
export interface OptimizerSnapshot {
  className: string;
  config: tf.serialization.ConfigDict;
  /** As `tf.Optimizer.getWeights()` lists them (for Adam: iterations, first moments, second moments). */
  weights: OptimizerWeight[];
}

/**
 * Writes a whole checkpoint (model.json + weights.bin, optimizer.json + optimizer.bin, state.json,
 * thresholds.json, vocabulary.json) into a temporary folder and swaps it in, so `dir` always holds one complete
 * checkpoint.
 */
export async function saveCheckpoint(
  dir: string,
  model: tfl.LayersModel,
  optimizer: OptimizerSnapshot,
  state: CheckpointState,
): Promise<void> {
  const temporary = await makeTemporaryDirectory(dir);
  await saveModel(model, temporary);
  await saveOptimizer(optimizer, temporary);
  await writeJsonAtomic(join(temporary, FILES.thresholds), state.thresholds);
  await writeJsonAtomic(join(temporary, FILES.vocabulary), state.vocabulary);
  // state.json last: a folder with it is complete.
  await writeJsonAtomic(join(temporary, FILES.state), state);
  await replaceDirectory(temporary, dir);
}

/** Copies a tfjs optimizer's state out of its tensors. */
export async function snapshotOptimizer(optimizer: tf.Optimizer): Promise<OptimizerSnapshot> {
  // getWeights() returns [iterations (a new scalar), ...first moments, ...second moments (the live variables)].
  const weights = await optimizer.getWeights();
  try {
    const copied: OptimizerWeight[] = [];
    for (const { name, tensor } of weights) {
      const dtype = tensor.dtype === 'int32' ? 'int32' : 'float32';
      const values =
        dtype === 'int32' ? Int32Array.from(await tensor.data()) : Float32Array.from(await tensor.data());
      copied.push({ name, dtype, shape: tensor.shape, values });
    }
    return { className: optimizer.getClassName(), config: optimizer.getConfig(), weights: copied };
  } finally {
    weights[0]?.tensor.dispose();
  }
}

async function saveOptimizer(optimizer: OptimizerSnapshot, dir: string): Promise<void> {
  const manifest: OptimizerManifest = {
    format: 1,
    className: optimizer.className,
    config: optimizer.config,
    weights: [],
  };
  const chunks: Uint8Array[] = [];
  let byteOffset = 0;
  for (const { name, dtype, shape, values } of optimizer.weights) {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    manifest.weights.push({ name, dtype, shape, byteOffset, length: values.length });
    chunks.push(bytes);
    byteOffset += bytes.byteLength;
  }
  await writeFileAtomic(join(dir, FILES.optimizerWeights), Buffer.concat(chunks));
  await writeJsonAtomic(join(dir, FILES.optimizer), manifest);
}

/**
 * Reads the optimizer state saved by {@link saveCheckpoint}, checking that it is `className`'s (the optimizer
 * this run uses).
 */
export async function readOptimizer(dir: string, className: string): Promise<OptimizerSnapshot> {
  const manifest = await readJson<OptimizerManifest>(join(dir, FILES.optimizer), 'checkpoint-corrupt');
  if (manifest.className !== className) {
    throw new TrainerError(
      'resume-mismatch',
      `${dir} holds ${manifest.className} optimizer state but this run uses ${className}`,
    );
  }
  const buffer = await readFile(join(dir, FILES.optimizerWeights));
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const weights = manifest.weights.map(({ name, dtype, shape, byteOffset, length }): OptimizerWeight => {
    const slice = bytes.slice(byteOffset, byteOffset + length * 4);
    if (slice.byteLength !== length * 4) {
      throw new TrainerError(
        'checkpoint-corrupt',
        `${join(dir, FILES.optimizerWeights)} is truncated: start a new run`,
      );
    }
    const values = dtype === 'int32' ? new Int32Array(slice.buffer) : new Float32Array(slice.buffer);
    return { name, dtype, shape, values };
  });
  return { className: manifest.className, config: manifest.config, weights };
}

/** Restores a saved state (step count, moments) into a fresh tfjs optimizer. */
export async function restoreOptimizer(optimizer: tf.Optimizer, snapshot: OptimizerSnapshot): Promise<void> {
  const tensors = snapshot.weights.map(({ name, dtype, shape, values }) => ({
    name,
    tensor: tf.tensor(values, shape, dtype),
  }));
  try {
    // setWeights copies each tensor into a new variable, so ours can go.
    await optimizer.setWeights(tensors);
  } finally {
    for (const { tensor } of tensors) tensor.dispose();
  }
}
