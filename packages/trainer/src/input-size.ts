import { TrainerError } from './errors.js';

/** Options of {@link inputSizeFor}. */
export interface InputSizeOptions {
  /** Most pixels (width x height) a training image may have. @default pixelBudget(2) */
  pixels?: number;
  /** Each side is rounded to a multiple of this. @default 2 */
  multiple?: number;
  /** Smallest side. @default 16 */
  minSide?: number;
}

/** Pixels per training image per core of the default budget: see {@link pixelBudget}. */
export const PIXELS_PER_CORE = 5400;

/**
 * The default pixel budget of a training image on `cores` cores: 5,400 pixels a core (10,800 on 2 cores, i.e.
 * 120x90 for 4:3 images), at least 4,096 (64x64) and at most 65,536 (256x256).
 *
 * Why: on 2 cores, blender-five's best recipe levelled off near 0.86 held-out exact match at 80x60 and reached
 * 0.89-0.92 at 120x90 (BENCHMARKS.md, time to accuracy, an earlier session's runs: the small objects need the
 * pixels); 120x90 is 10,800 pixels. More cores train more images a second, so the budget grows with them (an
 * assumption: only 2 cores were measured).
 */
export function pixelBudget(cores: number): number {
  return Math.min(65536, Math.max(4096, Math.round(PIXELS_PER_CORE * Math.max(1, cores))));
}

/** The size most of `sizes` have (ties: the larger), e.g. of a sample of a dataset's images. */
export function commonSize(sizes: readonly { width: number; height: number }[]): {
  width: number;
  height: number;
} {
  if (sizes.length === 0) throw new TrainerError('invalid-options', 'no image sizes to choose from');
  const counts = new Map<string, { width: number; height: number; count: number }>();
  for (const { width, height } of sizes) {
    const key = `${width}x${height}`;
    const entry = counts.get(key) ?? { width, height, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  const [best] = [...counts.values()].sort(
    (a, b) => b.count - a.count || b.width * b.height - a.width * a.height,
  );
  return { width: best!.width, height: best!.height };
}

/**
 * The training image size for images of `native` size: the aspect ratio kept, at most `pixels` pixels, never
 * larger than the images themselves (upscaling adds no detail), each side a multiple of `multiple` and at
 * least `minSide`.
 * @example inputSizeFor({ width: 160, height: 120 }, { pixels: 10800 }) // { width: 120, height: 90 }
 * @example inputSizeFor({ width: 128, height: 128 }, { pixels: 10800 }) // { width: 102, height: 102 }
 */
export function inputSizeFor(
  native: { width: number; height: number },
  options: InputSizeOptions = {},
): { width: number; height: number } {
  const pixels = options.pixels ?? pixelBudget(2);
  const multiple = options.multiple ?? 2;
  const minSide = options.minSide ?? 16;
  if (!(native.width > 0 && native.height > 0) || !(pixels > 0)) {
    throw new TrainerError(
      'invalid-options',
      `cannot choose an input size for ${native.width}x${native.height} images in ${pixels} pixels`,
    );
  }
  const scale = Math.min(1, Math.sqrt(pixels / (native.width * native.height)));
  const side = (value: number) => {
    const rounded = Math.floor((value * scale) / multiple) * multiple;
    return Math.max(minSide, Math.min(rounded, Math.max(minSide, value)));
  };
  return { width: side(native.width), height: side(native.height) };
}
