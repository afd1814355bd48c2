import path from 'node:path';
import { TRAIN_DEFAULTS } from './_defaults.js';

/** The training image size `litter train` and `litter cache` use when none is given, and where it comes from. */
export interface ChosenSize {
  width: number;
  height: number;
  /** The size most of the images have (of a sample of up to 16). */
  native: { width: number; height: number };
  /** The pixel budget it was fitted into. */
  pixels: number;
  cores: number;
}

/**
 * The training size for a dataset from its images: the size most of an even sample of 16 of its images have,
 * scaled to the pixel budget of the cores (`pixelBudget` of @litter/trainer: 5,400 pixels a core) with its
 * aspect ratio kept, never upscaled (`inputSizeFor`). `width` or `height` alone fixes that side and the other
 * follows the aspect ratio.
 */
export async function chooseInputSize(
  labelsPath: string,
  cores: number,
  given: { width?: number | undefined; height?: number | undefined } = {},
): Promise<ChosenSize> {
  const { imageSize, readLabels } = await import('@litter/dataset');
  // The rule alone: @litter/trainer's index loads TensorFlow.js, which litter cache must not.
  const { commonSize, inputSizeFor, pixelBudget } = await import('@litter/trainer/input-size');
  const entries = await readLabels(labelsPath);
  const root = path.dirname(labelsPath.endsWith('.json') ? labelsPath : path.join(labelsPath, 'labels.json'));
  const count = Math.min(16, entries.length);
  const sample = Array.from({ length: count }, (_, i) => entries[Math.floor((i * entries.length) / count)]!);
  const sizes = (
    await Promise.all(
      sample.map((entry) => imageSize(path.resolve(root, entry.image)).catch(() => undefined)),
    )
  ).filter((size) => size !== undefined);
  // No readable image: loading the dataset says which are missing; any size will do until then.
  const native = sizes.length > 0 ? commonSize(sizes) : { width: 128, height: 128 };
  const pixels = pixelBudget(cores);
  const fitted = inputSizeFor(native, { pixels, minSide: TRAIN_DEFAULTS.minSide });
  const aspect = native.height / native.width;
  const width =
    given.width ??
    (given.height !== undefined ? Math.max(8, Math.round(given.height / aspect)) : fitted.width);
  const height =
    given.height ??
    (given.width !== undefined ? Math.max(8, Math.round(given.width * aspect)) : fitted.height);
  return { width, height, native, pixels, cores };
}
