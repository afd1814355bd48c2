/*
 * `ResizeNearestNeighborGrad` for the cpu backend. tfjs-backend-cpu 4.22's own reads `dy` at the *images'* batch
 * offset (`b * imagesStrides[0]`), so for a batch of more than one image every image after the first gets the
 * gradient of the wrong pixels (wasm's is right). The CenterNet head's neck upsamples with tfjs-layers'
 * `UpSampling2D`, whose gradient is this kernel: on cpu it trained on wrong gradients before this one.
 */

import type * as tf from '@tensorflow/tfjs-core';
import type { DataId, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

interface CpuBackendLike {
  data: { get(dataId: DataId): { values?: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): TensorInfo;
}

/**
 * The source index of output index `i` along one axis, as tfjs's `resizeNearestNeighbor` forward computes it
 * (align corners, half-pixel centres).
 */
function sourceIndex(
  i: number,
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  halfPixelCenters: boolean,
): number {
  const ratio =
    (alignCorners && outSize > 1 ? inSize - 1 : inSize) /
    (alignCorners && outSize > 1 ? outSize - 1 : outSize);
  const fraction = halfPixelCenters ? ratio * (i + 0.5) : ratio * i;
  const nearest = Math.min(inSize - 1, alignCorners ? Math.round(fraction) : Math.floor(fraction));
  return halfPixelCenters ? Math.max(0, nearest) : nearest;
}

/**
 * The gradient of nearest-neighbour resizing: each `dy` pixel added to the input pixel the forward pass copied it
 * from (a scatter over `dy`, with the forward's own index rule).
 */
export const resizeNearestNeighborGradCpu: KernelFunc = ({ inputs, backend, attrs }) => {
  const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo };
  const { alignCorners = false, halfPixelCenters = false } = (attrs ?? {}) as {
    alignCorners?: boolean;
    halfPixelCenters?: boolean;
  };
  const cpu = backend as unknown as CpuBackendLike;
  const [batch, height, width, depth] = images.shape as [number, number, number, number];
  const [, outHeight, outWidth] = dy.shape as [number, number, number, number];
  const dyValues = cpu.data.get(dy.dataId).values as Float32Array;
  const output = new Float32Array(batch * height * width * depth);
  const columns = Array.from({ length: outWidth }, (_, c) =>
    sourceIndex(c, width, outWidth, alignCorners, halfPixelCenters),
  );
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const row = sourceIndex(r, height, outHeight, alignCorners, halfPixelCenters);
      const from = (b * outHeight + r) * outWidth * depth;
      const to = (b * height + row) * width * depth;
      for (let c = 0; c < outWidth; c++) {
        const source = from + c * depth;
        const target = to + columns[c]! * depth;
        for (let d = 0; d < depth; d++) output[target + d]! += dyValues[source + d]!;
      }
    }
  }
  return cpu.makeTensorInfo(
    [batch, height, width, depth],
    'float32',
    output as unknown as tf.backend_util.BackendValues,
  );
};
