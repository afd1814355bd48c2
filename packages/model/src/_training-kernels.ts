import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  KernelBackend,
  KernelFunc,
  NamedAttrMap,
  NamedTensorInfoMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { batchNormReluKernels } from './_batchnorm-kernels.js';
import {
  makeBatchMatMul,
  makeConv2dBackpropInputPhases,
  makeLrn,
  makeLrnGrad,
  makeMaxPoolGrad,
  makeSum,
  makeTile,
  makeConv2dBackpropFilter as makeWasmConv2dBackpropFilter,
} from './_wasm-kernels.js';

/*
 * Convolution gradient kernels composed from a backend's own forward kernels.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter (so no conv net can train on it) and its
 * Conv2DBackpropInput is a scalar loop; tfjs-backend-cpu's Conv2DBackpropFilter reads element by element
 * through a TensorBuffer (about 80x slower than its Conv2D). Both gradients are convolutions themselves, so we
 * run them through the backend's Conv2D (XNNPACK on wasm):
 *
 * - dW[kh, kw, ci, co] = sum over n, i, j of x[n, i*s + kh - top, j*s + kw - left, ci] * dy[n, i, j, co]:
 *   a convolution of x (batch as channels: [Ci, H, W, N]) with dy as the filter ([Ho, Wo, N, Co]) whose
 *   dilation is the forward stride, then cropped to [Ci, kh, kw, Co] and transposed to [kh, kw, Ci, Co].
 * - dx is the full correlation of dy with the spatially reversed, in/out-swapped filter. For stride s > 1, dy
 *   first gets s - 1 zeros between its rows and columns.
 */

/** The backends whose kernels this file composes. */
export type TrainingKernelBackend = 'wasm' | 'cpu';

/** A backend's kernel runner: `run(kernelName, backend, inputs, attrs)`. */
type Run = (name: string, backend: KernelBackend, inputs: NamedTensorInfoMap, attrs?: object) => TensorInfo;

function runnerFor(backendName: TrainingKernelBackend): Run {
  return (name, backend, inputs, attrs = {}) => {
    const kernel = tf.getKernel(name, backendName);
    if (kernel === undefined)
      throw new Error(`@litter/model: the ${backendName} backend has no ${name} kernel`);
    return kernel.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo;
  };
}

/** Keeps track of intermediate results and frees them (backend data is reference counted, so sharing is safe). */
class Scratch {
  private readonly infos: TensorInfo[] = [];
  constructor(private readonly backend: KernelBackend) {}
  keep<T extends TensorInfo>(info: T): T {
    this.infos.push(info);
    return info;
  }
  dispose(): void {
    for (const info of this.infos) this.backend.disposeData(info.dataId);
    this.infos.length = 0;
  }
}

type Shape4 = [number, number, number, number];

function assertChannelsLast(dataFormat: string, kernel: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(
      `@litter/model: composed ${kernel} supports only dataFormat NHWC (channelsLast), got ${dataFormat}`,
    );
  }
}

const makeConv2dBackpropFilter =
  (run: Run): KernelFunc =>
  ({ inputs, backend: anyBackend, attrs }) => {
    const backend = anyBackend as KernelBackend;
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
      attrs as unknown as Conv2DBackpropFilterAttrs;
    assertChannelsLast(dataFormat, 'Conv2DBackpropFilter');
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filterShape as Shape4,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    );
    const [, height, width, inChannels] = x.shape as Shape4;
    const [, outHeight, outWidth, outChannels] = dy.shape as Shape4;
    const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    // Pad the far side just enough for the last output row/column; rows the forward pass never read are cropped.
    const bottom = Math.max(0, filterHeight + (outHeight - 1) * strideHeight - height - top);
    const right = Math.max(0, filterWidth + (outWidth - 1) * strideWidth - width - left);

    const scratch = new Scratch(backend);
    try {
      const xT = scratch.keep(run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] })); // [Ci, H, W, N]
      const dyT = scratch.keep(run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] })); // [Ho, Wo, N, Co]
      let grad = scratch.keep(
        run(
          'Conv2D',
          backend,
          { x: xT, filter: dyT },
          {
            strides: [1, 1],
            pad: [
              [0, 0],
              [top, bottom],
              [left, right],
              [0, 0],
            ],
            dataFormat: 'NHWC',
            dilations: [strideHeight, strideWidth],
            dimRoundingMode: undefined,
          },
        ),
      ); // [Ci, >= kh, >= kw, Co]
      if (grad.shape[1] !== filterHeight || grad.shape[2] !== filterWidth) {
        grad = scratch.keep(
          run(
            'Slice',
            backend,
            { x: grad },
            { begin: [0, 0, 0, 0], size: [inChannels, filterHeight, filterWidth, outChannels] },
          ),
        );
      }
      return run('Transpose', backend, { x: grad }, { perm: [1, 2, 0, 3] });
    } finally {
      scratch.dispose();
    }
  };

function makeConv2dBackpropInput(run: Run, original: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as KernelBackend;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
      attrs as unknown as Conv2DBackpropInputAttrs;
    assertChannelsLast(dataFormat, 'Conv2DBackpropInput');
    const info = tf.backend_util.computeConv2DInfo(
      inputShape as Shape4,
      filter.shape as Shape4,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    );
    const { strideHeight, strideWidth, filterHeight, filterWidth } = info;
    const [batch, height, width] = inputShape as Shape4;
    const [, outHeight, outWidth, outChannels] = dy.shape as Shape4;
    // dy with s - 1 zeros between rows and columns spans these many rows/columns.
    const spreadHeight = (outHeight - 1) * strideHeight + 1;
    const spreadWidth = (outWidth - 1) * strideWidth + 1;
    const top = filterHeight - 1 - info.padInfo.top;
    const left = filterWidth - 1 - info.padInfo.left;
    const bottom = height - spreadHeight - top + filterHeight - 1;
    const right = width - spreadWidth - left + filterWidth - 1;
    if (top < 0 || left < 0 || bottom < 0 || right < 0) {
      // Padding wider than the filter (explicit padding only): keep the backend's own kernel.
      if (original === undefined) throw new Error('@litter/model: unsupported Conv2DBackpropInput padding');
      return original(args);
    }

    const scratch = new Scratch(backend);
    try {
      let spread = dy;
      let padBottom = bottom;
      let padRight = right;
      if (strideHeight > 1 || strideWidth > 1) {
        // Insert zeros with rank-3 pads: columns first ([N*Ho*Wo, 1, Co] -> [N*Ho*Wo, sw, Co]), then rows.
        const cells = scratch.keep(
          run('Reshape', backend, { x: dy }, { shape: [batch * outHeight * outWidth, 1, outChannels] }),
        );
        const paddedCells = scratch.keep(
          run(
            'PadV2',
            backend,
            { x: cells },
            {
              paddings: [
                [0, 0],
                [0, strideWidth - 1],
                [0, 0],
              ],
              constantValue: 0,
            },
          ),
        );
        const rows = scratch.keep(
          run(
            'Reshape',
            backend,
            { x: paddedCells },
            { shape: [batch * outHeight, 1, outWidth * strideWidth * outChannels] },
          ),
        );
        const paddedRows = scratch.keep(
          run(
            'PadV2',
            backend,
            { x: rows },
            {
              paddings: [
                [0, 0],
                [0, strideHeight - 1],
                [0, 0],
              ],
              constantValue: 0,
            },
          ),
        );
        const image = scratch.keep(
          run(
            'Reshape',
            backend,
            { x: paddedRows },
            { shape: [batch, outHeight * strideHeight, outWidth * strideWidth, outChannels] },
          ),
        );
        // The padded image ends with s - 1 zero rows and columns too many. Where the convolution pads the far
        // side anyway, they stand in for that padding; otherwise they are cut off.
        const extraRows = strideHeight - 1;
        const extraColumns = strideWidth - 1;
        if (padBottom >= extraRows && padRight >= extraColumns) {
          spread = image;
          padBottom -= extraRows;
          padRight -= extraColumns;
        } else {
          spread = scratch.keep(
            run(
              'Slice',
              backend,
              { x: image },
              { begin: [0, 0, 0, 0], size: [batch, spreadHeight, spreadWidth, outChannels] },
            ),
          );
        }
      }
      const reversed = scratch.keep(run('Reverse', backend, { x: filter }, { dims: [0, 1] }));
      const swapped = scratch.keep(run('Transpose', backend, { x: reversed }, { perm: [0, 1, 3, 2] })); // [kh, kw, Co, Ci]
      return run(
        'Conv2D',
        backend,
        { x: spread, filter: swapped },
        {
          strides: [1, 1],
          pad: [
            [0, 0],
            [top, padBottom],
            [left, padRight],
            [0, 0],
          ],
          dataFormat: 'NHWC',
          dilations: [1, 1],
          dimRoundingMode: undefined,
        },
      );
    } finally {
      scratch.dispose();
    }
  };
}

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
 * cpu `Conv2DBackpropFilter`. On wasm also the faster JavaScript `BatchMatMul` (transposed cases), `MaxPoolGrad`,
 * `LRN`, `LRNGrad`, `Sum` (leading axes) and `Tile` (leading axes) of `_wasm-kernels.ts`. Idempotent; {@link initBackend} calls it.
 * The backend package must be imported first (its kernels registered).
 */
export function registerTrainingKernels(backendName: TrainingKernelBackend): void {
  if (originals.has(backendName)) return;
  if (tf.getKernel('Conv2D', backendName) === undefined) {
    throw new Error(
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
      // On wasm, layers with small patches (the first) gather patches instead (_wasm-kernels.ts).
      kernelFunc: backendName === 'wasm' ? makeWasmConv2dBackpropFilter(composedFilter) : composedFilter,
    },
    saved,
  );
  // Batch norm + ReLU in training (ConvBatchNormRelu), new kernels on both backends.
  for (const config of batchNormReluKernels(backendName)) replaceKernel(config, saved);
  if (backendName === 'wasm') {
    const original = tf.getKernel(tf.Conv2DBackpropInput, backendName);
    replaceKernel(
      {
        kernelName: tf.Conv2DBackpropInput,
        backendName,
        // Strides > 1 split by phase (_wasm-kernels.ts); stride 1 and the rest through the composed convolution.
        kernelFunc: makeConv2dBackpropInputPhases(makeConv2dBackpropInput(run, original?.kernelFunc)),
        // The fallback is wasm's own kernel, which binds its C++ function in its setup.
        ...(original?.setupFunc ? { setupFunc: original.setupFunc } : {}),
      },
      saved,
    );
    // JavaScript kernels on the wasm heap (_wasm-kernels.ts), each falling back to wasm's own.
    const wrappers: [string, (original: KernelFunc) => KernelFunc][] = [
      [tf.BatchMatMul, makeBatchMatMul],
      [tf.MaxPoolGrad, makeMaxPoolGrad],
      [tf.LRN, makeLrn],
      [tf.LRNGrad, makeLrnGrad],
      [tf.Sum, makeSum],
      [tf.Tile, makeTile],
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
