/*
 * The training kernels litter registers on wasm and cpu: the convolution gradients composed from a backend's own
 * forward kernels (`_training-kernels.ts`), batch norm + ReLU (`_batchnorm-kernels.ts`) and wasm's JavaScript
 * kernels (`_wasm-kernels.ts`). This module registers them and puts the backend's own back.
 */

import type { KernelFunc } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { batchNormReluKernels } from './_batchnorm-kernels.js';
import { resizeNearestNeighborGradCpu } from './_resize-grad.js';
import { makeConv2dBackpropFilter, makeConv2dBackpropInput, runnerFor } from './_training-kernels.js';
import {
  makeBatchMatMul,
  makeConv2d,
  makeConv2dBackpropInputPhases,
  makeIdentity,
  makeLrn,
  makeLrnGrad,
  makeMaxPoolGrad,
  makeSum,
  makeTile,
  makeConv2dBackpropFilter as makeWasmConv2dBackpropFilter,
} from './_wasm-kernels.js';
import { ModelError } from './errors.js';

/** The backends whose kernels litter composes. */
export type TrainingKernelBackend = 'wasm' | 'cpu';

/** Per backend: the kernels we registered, and the ones they replaced, to restore them. */
const originals = new Map<TrainingKernelBackend, { replaced: string[]; saved: tf.KernelConfig[] }>();

function replaceKernel(
  config: tf.KernelConfig,
  state: { replaced: string[]; saved: tf.KernelConfig[] },
): void {
  const original = tf.getKernel(config.kernelName, config.backendName);
  state.replaced.push(config.kernelName);
  if (original !== undefined) {
    state.saved.push(original);
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  tf.registerKernel(config);
}

/**
 * Registers the composed convolution gradients for a backend, so conv nets train on it (wasm) or train fast
 * (cpu): on wasm `Conv2DBackpropFilter` (missing there) and `Conv2DBackpropInput` (a scalar loop there); on
 * cpu `Conv2DBackpropFilter` and a correct `ResizeNearestNeighborGrad` (`_resize-grad.ts`). On wasm also `Conv2D` in SIMD (4n -> 8n channels) and the faster JavaScript `BatchMatMul` (transposed cases), `MaxPoolGrad`,
 * `LRN`, `LRNGrad`, `Sum` (leading axes), `Tile` (leading axes) and `Identity` (shared data) of `_wasm-kernels.ts`. Idempotent; {@link initBackend} calls it.
 * The backend package must be imported first (its kernels registered).
 */
export function registerTrainingKernels(backendName: TrainingKernelBackend): void {
  if (originals.has(backendName)) return;
  if (tf.getKernel('Conv2D', backendName) === undefined) {
    throw new ModelError(
      'unsupported',
      `@litter/model: import the ${backendName} backend package before registering its training kernels`,
    );
  }
  const run = runnerFor(backendName);
  const saved = { replaced: [] as string[], saved: [] as tf.KernelConfig[] };
  const composedFilter = makeConv2dBackpropFilter(run);
  replaceKernel(
    {
      kernelName: tf.Conv2DBackpropFilter,
      backendName,
      // On wasm, SIMD (channels in 4s and 8s) or gathered patches (the first layer) instead (_wasm-kernels.ts).
      kernelFunc: backendName === 'wasm' ? makeWasmConv2dBackpropFilter(composedFilter) : composedFilter,
    },
    saved,
  );
  // Batch norm + ReLU in training (ConvBatchNormRelu), new kernels on both backends.
  for (const config of batchNormReluKernels(backendName)) replaceKernel(config, saved);
  // cpu's own reads dy at the wrong batch offset (_resize-grad.ts): the CenterNet neck's UpSampling2D needs it.
  if (backendName === 'cpu') {
    replaceKernel(
      { kernelName: tf.ResizeNearestNeighborGrad, backendName, kernelFunc: resizeNearestNeighborGradCpu },
      saved,
    );
  }
  if (backendName === 'wasm') {
    const original = tf.getKernel(tf.Conv2DBackpropInput, backendName);
    replaceKernel(
      {
        kernelName: tf.Conv2DBackpropInput,
        backendName,
        // By stride phase (_wasm-kernels.ts; stride 1 is one phase); paddings it cannot express composed.
        kernelFunc: makeConv2dBackpropInputPhases(makeConv2dBackpropInput(run, original?.kernelFunc)),
        // The fallback is wasm's own kernel, which binds its C++ function in its setup.
        ...(original?.setupFunc ? { setupFunc: original.setupFunc } : {}),
      },
      saved,
    );
    // JavaScript kernels on the wasm heap (_wasm-kernels.ts), each falling back to wasm's own.
    const wrappers: [string, (original: KernelFunc) => KernelFunc][] = [
      [tf.Conv2D, makeConv2d],
      [tf.BatchMatMul, makeBatchMatMul],
      [tf.MaxPoolGrad, makeMaxPoolGrad],
      [tf.LRN, makeLrn],
      [tf.LRNGrad, makeLrnGrad],
      [tf.Sum, makeSum],
      [tf.Tile, makeTile],
      [tf.Identity, makeIdentity],
    ];
    for (const [kernelName, wrap] of wrappers) {
      const own = tf.getKernel(kernelName, backendName);
      if (own === undefined) continue;
      replaceKernel(
        {
          kernelName,
          backendName,
          kernelFunc: wrap(own.kernelFunc),
          ...(own.setupFunc ? { setupFunc: own.setupFunc } : {}),
        },
        saved,
      );
    }
  }
  originals.set(backendName, saved);
}

/**
 * Puts back the backend's own convolution gradient kernels (all, or only those named), for tests and
 * benchmarks that compare against them. Without a Conv2DBackpropFilter of its own, wasm then has none.
 */
export function restoreOriginalKernels(
  backendName: TrainingKernelBackend,
  kernelNames?: readonly string[],
): void {
  const state = originals.get(backendName);
  if (state === undefined) return;
  const restore = state.replaced.filter((name) => kernelNames === undefined || kernelNames.includes(name));
  for (const kernelName of restore) {
    tf.unregisterKernel(kernelName, backendName);
    const original = state.saved.find((config) => config.kernelName === kernelName);
    if (original !== undefined) tf.registerKernel(original);
  }
  state.replaced = state.replaced.filter((name) => !restore.includes(name));
  state.saved = state.saved.filter((config) => !restore.includes(config.kernelName));
  if (state.replaced.length === 0) originals.delete(backendName);
}
