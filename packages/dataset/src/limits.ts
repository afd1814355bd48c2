/**
 * The most pixels an image may declare: 4096 x 4096, the largest size `litter train` trains at (its
 * `--width` and `--height` go up to 4096). A larger image is refused before any decoding, by the built-in
 * decoder, sharp (`limitInputPixels`) and `litter inspect` alike, so that decoding one image costs at most
 * what a legitimate image of this size costs (64 MiB of RGBA), whatever its header or data say.
 */
export const MAX_IMAGE_PIXELS = 4096 * 4096;

/**
 * The largest image file read: what an uncompressed 16-bit RGBA PNG of {@link MAX_IMAGE_PIXELS} takes
 * (8 bytes a pixel), with room for metadata. A larger file is refused without being read.
 */
export const MAX_IMAGE_FILE_BYTES = 8 * MAX_IMAGE_PIXELS + 64 * 1024 * 1024;

/**
 * Why an image of this declared size is not decoded, or undefined when it may be.
 */
export function imageSizeProblem(width: number, height: number): string | undefined {
  if (width * height <= MAX_IMAGE_PIXELS) return undefined;
  return `it is ${width}x${height}, more than the ${MAX_IMAGE_PIXELS.toLocaleString('en-US')} pixels (4096x4096) an image may have`;
}

/**
 * Why an image file of `bytes` bytes is not read, or undefined when it may be.
 */
export function imageFileProblem(bytes: number): string | undefined {
  if (bytes <= MAX_IMAGE_FILE_BYTES) return undefined;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return `the file is ${mib(bytes)}, more than the ${mib(MAX_IMAGE_FILE_BYTES)} an image of at most 4096x4096 needs`;
}
