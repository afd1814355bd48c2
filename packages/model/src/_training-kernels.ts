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
import { ModelError } from './errors.js';

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

/** A backend's kernel runner: `run(kernelName, backend, inputs, attrs)`. */
export type Run = (
  name: string,
  backend: KernelBackend,
  inputs: NamedTensorInfoMap,
  attrs?: object,
) => TensorInfo;

/** The kernels of a registered backend (`wasm`, `cpu`), run directly. */
export function runnerFor(backendName: string): Run {
  return (name, backend, inputs, attrs = {}) => {
    const kernel = tf.getKernel(name, backendName);
    if (kernel === undefined)
      throw new ModelError('unsupported', `@litter/model: the ${backendName} backend has no ${name} kernel`);
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
    throw new ModelError(
      'unsupported',
      `@litter/model: composed ${kernel} supports only dataFormat NHWC (channelsLast), got ${dataFormat}`,
    );
  }
}

export const makeConv2dBackpropFilter =
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

export function makeConv2dBackpropInput(run: Run, original: KernelFunc | undefined): KernelFunc {
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
      if (original === undefined)
        throw new ModelError('unsupported', '@litter/model: unsupported Conv2DBackpropInput padding');
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
