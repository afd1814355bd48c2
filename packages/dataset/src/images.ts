import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { imageFileProblem, imageSizeProblem, MAX_IMAGE_PIXELS } from './limits.js';

export { imageSizeProblem, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS } from './limits.js';

import { CorruptImageError, type DecodeTarget, decodePngInto, readPngSize } from './_png.js';
import { DatasetError } from './errors.js';

/** An RGB colour: `[r, g, b]` (0-255), `#rrggbb`, `#rgb`, `'black'` or `'white'`. */
export type Background = readonly [number, number, number] | string;

/**
 * The colour that transparent pixels are flattened onto: black, which is also what the seed got from
 * PIL's `convert('RGB')` on Blender's transparent renders (fully transparent pixels are stored as 0, 0, 0).
 */
export const DEFAULT_BACKGROUND: readonly [number, number, number] = [0, 0, 0];

/** How an image is turned into pixels. */
export interface DecodeImageOptions {
  /** Output width; give it with `height`. @default the image's own width */
  width?: number;
  /** Output height; give it with `width`. @default the image's own height */
  height?: number;
  /** Colour that transparency is flattened onto. @default DEFAULT_BACKGROUND (black) */
  background?: Background;
}

/**
 * Decodes one image (path or file bytes) the way {@link loadDataset} does: RGB, 8 bits per channel, height
 * first (`pixels[(row * width + column) * 3 + channel]`), transparency flattened onto `background`, resized
 * to `width` x `height` when given (stretched, the aspect ratio is not kept). PNG (8 or 16 bit, grey, palette,
 * RGBA), JPEG and whatever else sharp reads.
 *
 * @returns `height * width * 3` bytes
 * @throws DatasetError `image-missing`, `image-corrupt`, `options-invalid`
 * @example
 * const pixels = await decodeImage('photo.png', { width: 64, height: 64 });
 * const red = pixels[(row * 64 + column) * 3];
 */
export async function decodeImage(
  source: string | Uint8Array,
  options: DecodeImageOptions = {},
): Promise<Uint8Array> {
  const name = typeof source === 'string' ? source : 'the image';
  const bytes = typeof source === 'string' ? await readImageFile(source) : source;
  const size = checkSize(options.width, options.height);
  const background = parseBackground(options.background ?? DEFAULT_BACKGROUND);
  try {
    const declared = await imageSizeOf(bytes);
    const tooLarge = imageSizeProblem(declared.width, declared.height);
    if (tooLarge) throw new CorruptImageError(tooLarge);
    const own = size ?? declared;
    const target: DecodeTarget = { ...own, resize: size !== undefined, background };
    const out = new Uint8Array(target.width * target.height * 3);
    const fast = decodePngInto(bytes, out, 0, target);
    if (fast.status === 'ok') return out;
    return (await decodeWithSharp(bytes, target)).data;
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      'image-corrupt',
      `${name} cannot be decoded (${describe(error)}): replace the file`,
      {
        cause: error,
      },
    );
  }
}

/**
 * The width and height of an image file without decoding it.
 *
 * @throws DatasetError `image-missing`, `image-corrupt`
 */
export async function imageSize(source: string | Uint8Array): Promise<{ width: number; height: number }> {
  const bytes = typeof source === 'string' ? await readImageFile(source) : source;
  try {
    return await imageSizeOf(bytes);
  } catch (error) {
    const name = typeof source === 'string' ? source : 'the image';
    throw new DatasetError('image-corrupt', `${name} cannot be read (${describe(error)}): replace the file`, {
      cause: error,
    });
  }
}

/** @internal Size from the PNG header, or sharp's metadata for other formats. */
export async function imageSizeOf(bytes: Uint8Array): Promise<{ width: number; height: number }> {
  const png = readPngSize(bytes);
  if (png) return png;
  const { width, height } = await sharp(bytes).metadata();
  if (!width || !height) throw new CorruptImageError('no image size in the file');
  return { width, height };
}

/**
 * @internal Decodes with sharp: flatten onto the background, sRGB, 8 bits, no alpha, resized when allowed
 * and needed. Returns the decoded size even when it differs from the target and resizing is not allowed.
 */
export async function decodeWithSharp(
  bytes: Uint8Array,
  target: DecodeTarget,
): Promise<{ data: Uint8Array; width: number; height: number }> {
  const [r, g, b] = target.background;
  const input = sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS });
  const meta = await input.metadata();
  // CMYK (print JPEGs) is converted to sRGB through a CMYK profile (the file's own, else libvips' default);
  // without this, libvips' default pipeline gave colours about 10 levels off.
  let pipeline = (meta.space === 'cmyk' ? input.pipelineColourspace('cmyk') : input)
    .flatten({ background: { r, g, b } })
    .toColourspace('srgb')
    .removeAlpha();
  if (target.resize) {
    // Resize only when needed: at the same size the pixels stay exactly as decoded.
    const own = readPngSize(bytes) ?? { width: meta.width, height: meta.height };
    if (own.width !== target.width || own.height !== target.height) {
      pipeline = pipeline.resize(target.width, target.height, { fit: 'fill' });
    }
  }
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new CorruptImageError(`sharp gave ${info.channels} channels, 3 expected`);
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

/** @internal Parses a {@link Background} into `[r, g, b]`. */
export function parseBackground(background: Background): [number, number, number] {
  if (typeof background === 'string') {
    const named: Record<string, [number, number, number]> = { black: [0, 0, 0], white: [255, 255, 255] };
    const known = named[background.toLowerCase()];
    if (known) return [...known];
    const long = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(background);
    if (long) return [parseInt(long[1]!, 16), parseInt(long[2]!, 16), parseInt(long[3]!, 16)];
    const short = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(background);
    if (short)
      return [
        parseInt(short[1]!.repeat(2), 16),
        parseInt(short[2]!.repeat(2), 16),
        parseInt(short[3]!.repeat(2), 16),
      ];
  } else if (
    Array.isArray(background) &&
    background.length === 3 &&
    background.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)
  ) {
    return [background[0], background[1], background[2]];
  }
  throw new DatasetError(
    'options-invalid',
    `background ${JSON.stringify(background)} is not a colour: use [r, g, b] (0-255), '#rrggbb', 'black' or 'white'`,
  );
}

/** @internal Validates a target size: both or neither, positive integers. */
export function checkSize(
  width: number | undefined,
  height: number | undefined,
): { width: number; height: number } | undefined {
  if (width === undefined && height === undefined) return undefined;
  const ok = (v: number | undefined) => v !== undefined && Number.isInteger(v) && v >= 1 && v <= 65535;
  if (!ok(width) || !ok(height)) {
    throw new DatasetError(
      'options-invalid',
      `width and height must be given together as whole numbers of pixels in [1, 65535], got width ${width} and height ${height}`,
    );
  }
  return { width: width!, height: height! };
}

async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    const tooLarge = imageFileProblem((await stat(path)).size);
    if (tooLarge) {
      throw new DatasetError('image-corrupt', `${path} is not read (${tooLarge}): replace the file`);
    }
    return await readFile(path);
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new DatasetError(
      code === 'ENOENT' ? 'image-missing' : 'image-corrupt',
      `${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}: check the path`,
      { cause: error },
    );
  }
}

/** @internal */
export function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.trim();
}
