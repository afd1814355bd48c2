import { TrainerError } from './errors.js';

/**
 * One image's geometric transform, in normalised coordinates (0..1 across the image, y down): output point
 * `(u, v)` shows input point `(x0 + u' / sx, y0 + v / sy)` with `u' = flip ? 1 - u : u`, `sx = scale * stretchX`
 * and `sy = scale * stretchY`. `scale > 1` zooms in (a crop resized to the full image), `< 1` zooms out (the
 * border pixels are repeated); a stretch above 1 zooms in along one axis only (objects wider or taller than
 * rendered); `x0, y0` shift.
 */
export interface Affine {
  scale: number;
  x0: number;
  y0: number;
  flip: boolean;
  /** @default 1 */
  stretchX?: number;
  /** @default 1 */
  stretchY?: number;
}

/** The transform's zoom along x and along y. */
const scales = ({ scale, stretchX = 1, stretchY = 1 }: Affine) =>
  [scale * stretchX, scale * stretchY] as const;

/** The identity transform. */
export const IDENTITY: Affine = { scale: 1, x0: 0, y0: 0, flip: false };

/** Options of {@link randomAffine} and {@link augmentGeometry}. */
export interface GeometryOptions {
  /**
   * Range of the zoom factor, drawn uniformly: `[1, 1.4]` crops up to 1/1.4 of each side (a random resized crop
   * that keeps the aspect ratio); values below 1 zoom out.
   * @default [1, 1.3]
   */
  scale?: readonly [min: number, max: number];
  /**
   * Shift beyond the crop's own freedom, as a fraction of the image, each way (0: the crop stays inside the
   * image when zoomed in).
   * @default 0.05
   */
  translate?: number;
  /** Mirror left-right with probability 1/2. @default true */
  flip?: boolean;
  /** Chance that an image is transformed at all (the others keep {@link IDENTITY}). @default 1 */
  probability?: number;
  /**
   * Stretch along one axis (x or y, even odds) by a factor drawn uniformly from `[1, 1 + stretch]`, on top of
   * `scale`: a crop along that axis, so that objects appear wider or taller than rendered (their boxes too) and
   * nothing is filled in. Two more draws per image when above 0.
   * @default 0
   */
  stretch?: number;
}

/** The defaults of {@link GeometryOptions}. */
export const GEOMETRY_DEFAULTS = {
  scale: [1, 1.3],
  translate: 0.05,
  flip: true,
  probability: 1,
  stretch: 0,
} as const;

function checkOptions(options: GeometryOptions): Required<GeometryOptions> {
  const scale = options.scale ?? GEOMETRY_DEFAULTS.scale;
  const translate = options.translate ?? GEOMETRY_DEFAULTS.translate;
  const probability = options.probability ?? GEOMETRY_DEFAULTS.probability;
  if (!(scale[0] > 0 && scale[1] >= scale[0] && Number.isFinite(scale[1]))) {
    throw new TrainerError(
      'invalid-options',
      `geometry scale must be [min, max] with 0 < min <= max, got ${JSON.stringify(scale)}`,
    );
  }
  if (!(translate >= 0 && translate <= 1)) {
    throw new TrainerError('invalid-options', `geometry translate must be in [0, 1], got ${translate}`);
  }
  if (!(probability >= 0 && probability <= 1)) {
    throw new TrainerError('invalid-options', `geometry probability must be in [0, 1], got ${probability}`);
  }
  const stretch = options.stretch ?? GEOMETRY_DEFAULTS.stretch;
  if (!(stretch >= 0 && Number.isFinite(stretch))) {
    throw new TrainerError('invalid-options', `geometry stretch must be 0 or more, got ${stretch}`);
  }
  return { scale, translate, probability, stretch, flip: options.flip ?? GEOMETRY_DEFAULTS.flip };
}

/**
 * Draws one image's transform. Always draws five numbers from `rng` (seven with `stretch`), whatever else the
 * options say, so a resumed run draws the same transforms as an uninterrupted one.
 */
export function randomAffine(rng: { next(): number }, options: GeometryOptions = {}): Affine {
  const { scale: range, translate, flip, probability, stretch } = checkOptions(options);
  const [apply, s, x, y, mirror] = [rng.next(), rng.next(), rng.next(), rng.next(), rng.next()];
  const [axis, factor] = stretch > 0 ? [rng.next(), rng.next()] : [0, 0];
  if (apply >= probability) return { ...IDENTITY };
  const scale = range[0] + s * (range[1] - range[0]);
  const stretched = 1 + factor * stretch;
  const [stretchX, stretchY] = axis < 0.5 ? [stretched, 1] : [1, stretched];
  // The crop window is 1 / zoom wide: its origin may go from 0 to 1 - 1 / zoom (or the other way when it is
  // wider than the image), plus `translate` either side.
  const origin = (r: number, zoom: number) => {
    const free = 1 - 1 / zoom;
    return Math.min(0, free) - translate + r * (Math.abs(free) + 2 * translate);
  };
  const affine = {
    scale,
    x0: origin(x, scale * stretchX),
    y0: origin(y, scale * stretchY),
    flip: flip && mirror < 0.5,
  };
  return stretch > 0 ? { ...affine, stretchX, stretchY } : affine;
}

/**
 * Warps one HWC image with 3 channels (bilinear, border pixels repeated outside the image) into `target`.
 * Pixel `(row, column)` has its centre at `((column + 0.5) / width, (row + 0.5) / height)`.
 */
export function warpImage(
  source: Float32Array | Uint8Array,
  target: Float32Array | Uint8Array,
  height: number,
  width: number,
  affine: Affine,
): void {
  const { x0, y0, flip } = affine;
  const [sx, sy] = scales(affine);
  // Sample positions within rounding of a pixel centre take that pixel exactly (identity, flips, whole shifts).
  const snap = (v: number) => (Math.abs(v - Math.round(v)) < 1e-9 ? Math.round(v) : v);
  const columns = new Int32Array(2 * width);
  const columnWeights = new Float32Array(width);
  for (let j = 0; j < width; j++) {
    const u = (j + 0.5) / width;
    const x = snap((x0 + (flip ? 1 - u : u) / sx) * width - 0.5);
    const clamped = Math.min(width - 1, Math.max(0, x));
    const left = Math.floor(clamped);
    columns[2 * j] = left;
    columns[2 * j + 1] = Math.min(width - 1, left + 1);
    columnWeights[j] = clamped - left;
  }
  const round = target instanceof Uint8Array;
  for (let i = 0; i < height; i++) {
    const y = Math.min(height - 1, Math.max(0, snap((y0 + (i + 0.5) / height / sy) * height - 0.5)));
    const top = Math.floor(y);
    const bottom = Math.min(height - 1, top + 1);
    const wy = y - top;
    for (let j = 0; j < width; j++) {
      const wx = columnWeights[j]!;
      const a = (top * width + columns[2 * j]!) * 3;
      const b = (top * width + columns[2 * j + 1]!) * 3;
      const c = (bottom * width + columns[2 * j]!) * 3;
      const d = (bottom * width + columns[2 * j + 1]!) * 3;
      const out = (i * width + j) * 3;
      for (let k = 0; k < 3; k++) {
        const upper = source[a + k]! + (source[b + k]! - source[a + k]!) * wx;
        const lower = source[c + k]! + (source[d + k]! - source[c + k]!) * wx;
        const value = upper + (lower - upper) * wy;
        target[out + k] = round ? Math.round(value) : value;
      }
    }
  }
}

/**
 * Moves a box `[x1, y1, x2, y2]` (normalised, y down) with the pixels: `x' = (x - x0) * sx` (then `1 - x'`
 * when flipped), `y' = (y - y0) * sy` ({@link Affine}), clipped to the image. `undefined` when nothing of it is
 * left in the image.
 */
export function transformBox(
  box: ArrayLike<number>,
  affine: Affine,
): [x1: number, y1: number, x2: number, y2: number] | undefined {
  const { x0, y0, flip } = affine;
  const [sx, sy] = scales(affine);
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  let x1 = clip((Math.min(box[0]!, box[2]!) - x0) * sx);
  let x2 = clip((Math.max(box[0]!, box[2]!) - x0) * sx);
  const y1 = clip((Math.min(box[1]!, box[3]!) - y0) * sy);
  const y2 = clip((Math.max(box[1]!, box[3]!) - y0) * sy);
  if (flip) [x1, x2] = [1 - x2, 1 - x1];
  return x2 > x1 && y2 > y1 ? [x1, y1, x2, y2] : undefined;
}

/** A batch's buffers as `@litter/dataset`'s `Batch` has them (image-major). */
export interface GeometryBatch {
  images: Float32Array | Uint8Array;
  labels: Float32Array;
  boxes: Float32Array;
  boxMask: Float32Array;
}

/**
 * Box-aware geometric augmentation of the first `count` images of a batch, in place: each image gets a
 * {@link randomAffine} transform; its pixels are warped ({@link warpImage}) and its boxes moved with them
 * ({@link transformBox}). An object pushed wholly out of the image is no longer visible: its label and box
 * mask become 0. Five draws from `rng` per image (the run's seeded generator).
 *
 * @example
 * augmentGeometry(batch, batch.size, { height, width, classes }, rng, { scale: [1, 1.3] });
 */
export function augmentGeometry(
  batch: GeometryBatch,
  count: number,
  shape: { height: number; width: number; classes: number },
  rng: { next(): number },
  options: GeometryOptions = {},
): void {
  const { height, width, classes } = shape;
  const pixels = height * width * 3;
  const copy = batch.images instanceof Uint8Array ? new Uint8Array(pixels) : new Float32Array(pixels);
  for (let n = 0; n < count; n++) {
    const affine = randomAffine(rng, options);
    const [sx, sy] = scales(affine);
    if (sx === 1 && sy === 1 && affine.x0 === 0 && affine.y0 === 0 && !affine.flip) continue;
    const image = batch.images.subarray(n * pixels, (n + 1) * pixels);
    copy.set(image);
    warpImage(copy, image, height, width, affine);
    for (let c = 0; c < classes; c++) {
      const k = n * classes + c;
      if (batch.boxMask[k]! < 0.5) continue; // absent, or visible without a box: nothing to move
      const moved = transformBox(batch.boxes.subarray(k * 4, k * 4 + 4), affine);
      if (moved) {
        batch.boxes.set(moved, k * 4);
      } else {
        batch.labels[k] = 0;
        batch.boxMask[k] = 0;
      }
    }
  }
}
