import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { access, constants, mkdir, readFile, stat as statAsync, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import {
  type CacheHeader,
  type CacheKey,
  CacheWriter,
  cacheFileKind,
  openCache,
  staleTemporaries,
  writeCache,
} from './_cache.js';
import { type DecodeFailure, DecodePool, decodeImages, defaultConcurrency, threadsFor } from './_decode.js';
import type { FileStamp } from './_image-file.js';
import {
  imageNameProblems,
  isPlainFileName,
  outsideError,
  parseLabelsJson,
  readLabelsBytes,
  validateLabels,
  validateLabelsInSlices,
} from './_labels.js';
import { CACHE_FORMAT_VERSION } from './cache-format.js';
import type { DecodeProgress } from './decode-progress.js';
import { encodeLabels } from './encode.js';
import { DatasetError, problemsError } from './errors.js';
import { type Background, checkSize, DEFAULT_BACKGROUND, parseBackground } from './images.js';
import type { LabelEntry } from './label-entry.js';
import { resolveLabelsPath } from './labels.js';
import { sceneOf } from './scenes.js';
import { buildVocabulary, readVocabularyFile } from './vocabulary.js';

export type { DecodeProgress } from './decode-progress.js';

/** An image left out by `skipBadImages`, and why. */
export interface SkippedImage {
  image: string;
  reason: string;
}

/**
 * What happened with the cache, for the caller to tell the user:
 * - `hit`: the cache matched and was used.
 * - `build`: there was no cache; `reason` says so.
 * - `rebuild`: the cache was stale or damaged; `reason` says what changed (e.g. `image 0-3y-2p.png changed`).
 * - `written`: a new cache was written (`bytes` long).
 */
export type CacheEvent =
  | { action: 'hit'; path: string }
  | { action: 'build'; path: string; reason: string }
  | { action: 'rebuild'; path: string; reason: string }
  | { action: 'written'; path: string; bytes: number };

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions {
  /** Resize every image to this width (give `height` too). @default the first image's width */
  width?: number;
  /** Resize every image to this height (give `width` too). @default the first image's height */
  height?: number;
  /**
   * Pin the vocabulary (class index order): an array of names, or the path of a vocabulary file (a JSON
   * array such as a run's `vocabulary.json`, or one name per line). @default the sorted mesh names
   */
  vocabulary?: readonly string[] | string;
  /** Colour that transparent pixels are flattened onto. @default DEFAULT_BACKGROUND (black) */
  background?: Background;
  /** Use a cache file (read it when it matches, write it otherwise). @default true */
  cache?: boolean;
  /** Where the cache lives. @default `<labels name>.litter-cache` next to labels.json, e.g. `labels.litter-cache` */
  cachePath?: string;
  /**
   * Flush a new cache to disk (fsync of the file before it is renamed into place, then of its folder), so that
   * it survives a power loss or an operating system crash. Either way the cache is written to a temporary file
   * and renamed into place, so a crash or SIGKILL of the process leaves the previous cache or none, never a
   * partial one, and a damaged cache (wrong length or checksum) is rebuilt, never trusted. Without `durable`, a
   * power loss shortly after a write can leave a damaged cache (then rebuilt) where the previous one was. The
   * cache is derived data, so by default the flush (30-70 ms for 40 MB on the benchmark machine) is skipped.
   * @default false
   */
  durable?: boolean;
  /**
   * Fingerprint images by a SHA-256 of their content instead of their size and modification time. Slower to
   * check (every image is read on every open) but blind to `touch` and sure to notice a same-size edit
   * within the file system's time resolution. @default false
   */
  fullHash?: boolean;
  /** Leave out images that are missing or cannot be decoded (each is reported) instead of failing. @default false */
  skipBadImages?: boolean;
  /**
   * Images decoded at once: for built-in PNG decoding this thread and `concurrency - 1` worker threads; sharp
   * operations in flight. @default os.availableParallelism()
   */
  concurrency?: number;
  /**
   * Decode PNGs on worker threads as well as this one: always (at least one thread), never, or 'auto' (from
   * 200 images and `concurrency` 2). @default 'auto'
   */
  workerThreads?: boolean | 'auto';
  /** How to find the scene of an image (see {@link sceneOf}). @default the name's prefix before the first '-' */
  scenePattern?: RegExp | string;
  /** Called after each image is decoded (only when the cache is built). */
  onProgress?: (progress: DecodeProgress) => void;
  /** Told whether the cache was used, and why it was (re)built. */
  onCache?: (event: CacheEvent) => void;
  /** Called for each image left out by `skipBadImages`. */
  onSkip?: (skipped: SkippedImage) => void;
}

/**
 * A loaded dataset: pixels and labels in flat typed arrays, image n at index n everywhere.
 * Pixels are uint8 RGB, height first: pixel (row r, column c) of image n starts at
 * `((n * height + r) * width + c) * 3`.
 */
export interface Dataset {
  /** The folder of labels.json (absolute). */
  root: string;
  labelsPath: string;
  /** The cache file, or undefined with `cache: false`. */
  cachePath: string | undefined;
  /** Class names; index c of labels, boxes and boxMask is `vocabulary[c]`. */
  vocabulary: readonly string[];
  width: number;
  height: number;
  channels: 3;
  /** Number of images. */
  size: number;
  /** Image file names as in labels.json, in entry order (skipped ones left out). */
  images: readonly string[];
  /** The scene of each image. */
  scenes: readonly string[];
  /**
   * size * height * width * 3 bytes. Backed by a SharedArrayBuffer when decoding threads wrote it (a cold
   * build of 200 images or more), by an ArrayBuffer otherwise: copy it before transferring its buffer.
   */
  pixels: Uint8Array;
  /** size * C, multi-hot by vocabulary index. */
  labels: Float32Array;
  /** size * C * 4: [x1, y1, x2, y2] normalised to [0, 1], y DOWN (image rows); 0 where absent. */
  boxes: Float32Array;
  /** size * C: 1 where the class is visible (its box is valid). */
  boxMask: Float32Array;
  /** Images left out by `skipBadImages`. */
  skipped: readonly SkippedImage[];
  /** SHA-256 over the labels, options and images the dataset was built from (changes when any does). */
  fingerprint: string;
}

/** The default cache file of a labels file: `labels.json` -> `labels.litter-cache` in the same folder. */
export function defaultCachePath(labelsPath: string): string {
  const name = basename(labelsPath).replace(/\.json$/i, '');
  return join(dirname(resolve(labelsPath)), `${name}.litter-cache`);
}

/**
 * Loads a Blender render dataset: validates labels.json, decodes every image (or opens the cache when it
 * matches), encodes labels and boxes. The cache is fingerprinted by the labels file, every image (size and
 * modification time, or content with `fullHash`), the options that change the result and the cache format;
 * when any differs it is rebuilt and `onCache` says why.
 *
 * @param labelsPathOrDir labels.json or its folder
 * @throws DatasetError (see {@link DatasetErrorCode})
 * @example
 * const dataset = await loadDataset('examples/blender-cube-sphere', {
 *   width: 64, height: 64,
 *   onCache: (e) => console.log(e.action, 'reason' in e ? e.reason : ''),
 * });
 * console.log(dataset.size, dataset.vocabulary);
 */
export async function loadDataset(
  labelsPathOrDir: string,
  options: LoadDatasetOptions = {},
): Promise<Dataset> {
  const request = await requestOf(labelsPathOrDir, options);
  const labelsBytes = await readLabelsBytes(request.labelsPath);
  const labelsHash = createHash('sha256').update(labelsBytes).digest('hex');
  const cached = await fromCache(request, labelsBytes, labelsHash, options);
  return cached ?? (await buildDataset(request, labelsBytes, labelsHash, options));
}

/** What {@link loadDataset} was asked for: the files, the checked options and the cache key they make. */
interface LoadRequest {
  labelsPath: string;
  root: string;
  /** labels.json's file name, for messages. */
  file: string;
  size: { width: number; height: number } | undefined;
  background: [number, number, number];
  concurrency: number;
  /** The vocabulary given (order kept), if any. */
  pinned: readonly string[] | undefined;
  key: CacheKey;
  /** Undefined with `cache: false`. */
  cachePath: string | undefined;
}

async function requestOf(labelsPathOrDir: string, options: LoadDatasetOptions): Promise<LoadRequest> {
  const labelsPath = await resolveLabelsPath(labelsPathOrDir);
  const size = checkSize(options.width, options.height);
  const background = parseBackground(options.background ?? DEFAULT_BACKGROUND);
  const concurrency = options.concurrency ?? defaultConcurrency();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new DatasetError('options-invalid', `concurrency must be a whole number >= 1, got ${concurrency}`);
  }
  const pinned =
    typeof options.vocabulary === 'string'
      ? await readVocabularyFile(options.vocabulary)
      : options.vocabulary;
  const key: CacheKey = {
    size: size ? [size.width, size.height] : 'auto',
    background,
    vocabulary: pinned ? [...pinned] : 'auto',
    fullHash: options.fullHash ?? false,
    skipBadImages: options.skipBadImages ?? false,
  };
  const cachePath =
    options.cache === false ? undefined : resolve(options.cachePath ?? defaultCachePath(labelsPath));
  const root = dirname(labelsPath);
  return {
    labelsPath,
    root,
    file: basename(labelsPath),
    size,
    background,
    concurrency,
    pinned,
    key,
    cachePath,
  };
}

/** The dataset from its cache when the cache matches; undefined (after `onCache` says why) when it must be built. */
async function fromCache(
  request: LoadRequest,
  labelsBytes: Buffer,
  labelsHash: string,
  options: LoadDatasetOptions,
): Promise<Dataset | undefined> {
  const { cachePath, root, labelsPath } = request;
  if (!cachePath) return undefined;
  const cached = await tryCache(cachePath, root, labelsHash, request.key);
  if ('foreign' in cached) {
    // Say which of the dataset's files it is, if it is one.
    checkNotOwnFile(cachePath, labelsPath, namesIn(labelsBytes), root);
    throw cacheRefused(cachePath, cached.foreign);
  }
  if ('header' in cached) {
    options.onCache?.({ action: 'hit', path: cachePath });
    return datasetFromHeader(cached.header, cached.pixels, root, labelsPath, cachePath, options.scenePattern);
  }
  options.onCache?.({ action: cached.exists ? 'rebuild' : 'build', path: cachePath, reason: cached.reason });
  return undefined;
}

/**
 * Builds the dataset (and its cache). Decoding starts as soon as the image names are known to be safe, and
 * labels.json is validated meanwhile (in slices, so that the decoding threads keep getting work); a problem
 * stops the decoding.
 */
async function buildDataset(
  request: LoadRequest,
  labelsBytes: Buffer,
  labelsHash: string,
  options: LoadDatasetOptions,
): Promise<Dataset> {
  const { labelsPath, root, file, size, key, cachePath } = request;
  const raw = parseLabelsJson(labelsBytes.toString('utf8'), file);
  const names = safeImageNames(raw, labelsPath, file);
  if (cachePath) {
    checkNotOwnFile(cachePath, labelsPath, names, root);
    await checkWritable(cachePath);
  }
  const realRoot = realpathSync.native(root);
  const pool = DecodePool.start(threadsFor(raw.length, request.concurrency, options.workerThreads ?? 'auto'));
  const writer = cachePath ? new CacheWriter(cachePath, { durable: options.durable ?? false }) : undefined;
  const stop = new AbortController();
  const decoding = decodeImages(
    names.map((image, index) => ({ index, image, path: imagePath(root, image) })),
    {
      realRoot,
      width: size?.width,
      height: size?.height,
      background: request.background,
      concurrency: request.concurrency,
      fullHash: key.fullHash,
      onProgress: options.onProgress,
      pool,
      signal: stop.signal,
      // Write the cache's pixels while the rest is decoded.
      onContiguous: writer
        ? (pixels, done, imageBytes) => {
            writer.begin(pixels);
            writer.advance(done * imageBytes);
          }
        : undefined,
    },
  );
  decoding.catch(() => {}); // awaited below; this only keeps a failure during validation from going unhandled
  try {
    const entries = await validateLabelsInSlices(raw, file);
    const vocabulary = buildVocabulary(entries, request.pinned);
    const decoded = await decoding;
    if (decoded.outside.length > 0) throw outsideError(root, realRoot, file, decoded.outside);
    // The streamed pixels have gaps where images failed: start over below if some are skipped.
    if (decoded.failures.length > 0) await writer?.abort();
    const skipped = handleFailures(decoded.failures, key.skipBadImages, labelsPath, size !== undefined);
    for (const s of skipped) options.onSkip?.({ image: entries[s.index]!.image, reason: s.reason });
    const { kept, pixels } = withoutSkipped(entries, skipped, decoded, labelsPath);
    const header = cacheHeader(entries, kept, vocabulary, skipped, decoded, pixels, labelsHash, key);
    if (cachePath && writer) {
      const bytes = await explainWriteErrors(cachePath, () =>
        skipped.length > 0 || !writer.begun
          ? writeCache(cachePath, header, pixels, { durable: options.durable ?? false })
          : writer.finish(header),
      );
      options.onCache?.({ action: 'written', path: cachePath, bytes });
    }
    return datasetFromHeader(header, pixels, root, labelsPath, cachePath, options.scenePattern);
  } catch (error) {
    stop.abort();
    await decoding.catch(() => {});
    await writer?.abort();
    throw error;
  }
}

/** The image names of labels.json's entries, once they are safe to open (else the full validation's error). */
function safeImageNames(raw: unknown[], labelsPath: string, file: string): string[] {
  const names = raw.map((entry) => (entry as { image?: unknown } | null)?.image);
  if (
    !names.every((name) => typeof name === 'string' && name !== '') ||
    imageNameProblems(raw, file).length > 0
  ) {
    validateLabels(raw, file); // throws, listing every problem
  }
  if (raw.length === 0) {
    throw new DatasetError('no-images', `${labelsPath} lists no images: add entries or pick another dataset`);
  }
  return names as string[];
}

type Decoded = Awaited<ReturnType<typeof decodeImages>>;
type Skipped = ReturnType<typeof handleFailures>;

/** The entries and pixels without the skipped images (the gaps closed in place, keeping the buffer). */
function withoutSkipped(entries: LabelEntry[], skipped: Skipped, decoded: Decoded, labelsPath: string) {
  const skippedSet = new Set(skipped.map((s) => s.index));
  const kept = entries.filter((_, index) => !skippedSet.has(index));
  if (kept.length === 0) {
    throw new DatasetError(
      'no-images',
      `every image of ${labelsPath} was skipped (${skipped.length}): check the image files`,
    );
  }
  const imageBytes = decoded.width * decoded.height * 3;
  let pixels = decoded.pixels;
  if (skipped.length > 0) {
    let to = 0;
    entries.forEach((_, from) => {
      if (skippedSet.has(from)) return;
      if (to !== from) pixels.copyWithin(to * imageBytes, from * imageBytes, (from + 1) * imageBytes);
      to++;
    });
    pixels = pixels.subarray(0, kept.length * imageBytes);
  }
  return { kept, pixels };
}

/** The cache header of a built dataset: what it was built from (the fingerprint) and its labels. */
function cacheHeader(
  entries: LabelEntry[],
  kept: LabelEntry[],
  vocabulary: string[],
  skipped: Skipped,
  decoded: Decoded,
  pixels: Uint8Array,
  labelsHash: string,
  key: CacheKey,
): CacheHeader {
  const encoded = encodeLabels(kept, vocabulary);
  const stamps = decoded.stamps.map((stamp) => stamp ?? { size: -1, mtimeMs: -1 });
  const images = entries.map((e) => e.image);
  return {
    magic: 'litter-dataset-cache',
    formatVersion: CACHE_FORMAT_VERSION,
    fingerprint: fingerprintOf(labelsHash, key, images, stamps),
    createdAt: new Date().toISOString(),
    labelsHash,
    key,
    vocabulary,
    width: decoded.width,
    height: decoded.height,
    channels: 3,
    count: kept.length,
    entries: images,
    skipped: skipped.map(({ index, reason }) => ({ index, reason })),
    sizes: Float64Array.from(stamps, (s) => s.size),
    mtimes: Float64Array.from(stamps, (s) => s.mtimeMs),
    hashes: key.fullHash ? stamps.map((s) => s.hash ?? '') : null,
    labels: encoded.labels,
    boxes: encoded.boxes,
    boxMask: encoded.boxMask,
    pixelsByteLength: pixels.length,
  };
}

function datasetFromHeader(
  header: CacheHeader,
  pixels: Uint8Array,
  root: string,
  labelsPath: string,
  cachePath: string | undefined,
  scenePattern: RegExp | string | undefined,
): Dataset {
  const skippedSet = new Set(header.skipped.map((s) => s.index));
  const images = header.entries.filter((_, index) => !skippedSet.has(index));
  return {
    root,
    labelsPath,
    cachePath,
    vocabulary: header.vocabulary,
    width: header.width,
    height: header.height,
    channels: 3,
    size: header.count,
    images,
    scenes: images.map((image) => sceneOf(image, scenePattern)),
    pixels,
    labels: header.labels,
    boxes: header.boxes,
    boxMask: header.boxMask,
    skipped: header.skipped.map(({ index, reason }) => ({ image: header.entries[index]!, reason })),
    fingerprint: header.fingerprint,
  };
}

type CacheAttempt =
  | { header: CacheHeader; pixels: Uint8Array }
  | { exists: boolean; reason: string }
  | { foreign: string };

/** Opens the cache if it matches the request; otherwise says why not. */
async function tryCache(
  cachePath: string,
  root: string,
  labelsHash: string,
  key: CacheKey,
): Promise<CacheAttempt> {
  const opened = await openCache(cachePath);
  if (opened.status === 'missing') return { exists: false, reason: 'no cache file yet' };
  if (opened.status === 'foreign') return { foreign: opened.reason };
  if (opened.status === 'invalid') return { exists: true, reason: opened.reason };
  const { header } = opened;
  const stale = (reason: string) => {
    void opened.close();
    return { exists: true, reason };
  };
  if (header.formatVersion !== CACHE_FORMAT_VERSION) {
    return stale(`the cache has format ${header.formatVersion}, now ${CACHE_FORMAT_VERSION}`);
  }
  if (header.labelsHash !== labelsHash) return stale('labels.json changed');
  const keyChange = describeKeyChange(header, key);
  if (keyChange) return stale(`options changed: ${keyChange}`);

  if (key.fullHash) {
    const change = await describeImageChanges(header, root);
    if (change) return stale(change);
  }
  if (!key.fullHash) {
    // Synchronously, before the pixels are read (which a changed image makes useless): 2,000 stat calls
    // through the thread pool cost this thread as much as the calls themselves (queueing each request, then
    // its callback), and the pool's threads took CPU from it on top.
    const change = describeStampChanges(header, statImages(root, header.entries));
    if (change) return stale(change);
  }
  const pixels = await opened.readPixels();
  if (!(pixels instanceof Uint8Array)) return { exists: true, reason: pixels.reason };
  return { header, pixels };
}

function describeKeyChange(header: CacheHeader, key: CacheKey): string | undefined {
  const was = header.key;
  if (key.size !== 'auto' && (header.width !== key.size[0] || header.height !== key.size[1])) {
    return `size ${header.width}x${header.height} -> ${key.size[0]}x${key.size[1]}`;
  }
  // A cache resized to WxH may hold images of other sizes: reuse it for 'auto' only if it was built so.
  if (key.size === 'auto' && was.size !== 'auto')
    return `size ${header.width}x${header.height} -> the images' own size`;
  if (was.background.join() !== key.background.join()) {
    return `background ${was.background.join(',')} -> ${key.background.join(',')}`;
  }
  if (JSON.stringify(was.vocabulary) !== JSON.stringify(key.vocabulary)) {
    return `vocabulary ${was.vocabulary === 'auto' ? 'from the labels' : `[${was.vocabulary.join(', ')}]`} -> ${key.vocabulary === 'auto' ? 'from the labels' : `[${key.vocabulary.join(', ')}]`}`;
  }
  if (key.fullHash && !was.fullHash) return 'fullHash (the cache has no content hashes)';
  if (header.skipped.length > 0 && !key.skipBadImages)
    return 'skipBadImages is off but the cache skipped images';
  return undefined;
}

/** Size and modification time of each image (-1 for a missing one). */
function statImages(root: string, images: readonly string[]): { sizes: Float64Array; mtimes: Float64Array } {
  const sizes = new Float64Array(images.length).fill(-1);
  const mtimes = new Float64Array(images.length).fill(-1);
  images.forEach((image, index) => {
    try {
      const stats = statSync(imagePath(root, image), { throwIfNoEntry: false });
      if (stats) {
        sizes[index] = stats.size;
        mtimes[index] = stats.mtimeMs;
      }
    } catch {
      // Unreadable (EACCES, ELOOP, ...): stamped as missing, so the cache is rebuilt and the build says why.
    }
  });
  return { sizes, mtimes };
}

/**
 * `join(root, image)` for an absolute, normalised `root`; a plain file name (the usual image name) is
 * appended as it is, since normalising it changes nothing (join takes 5 ms for 2,000 names).
 */
function imagePath(root: string, image: string): string {
  return isPlainFileName(image) ? `${root.endsWith(sep) ? root : root + sep}${image}` : join(root, image);
}

function describeStampChanges(
  header: CacheHeader,
  now: { sizes: Float64Array; mtimes: Float64Array },
): string | undefined {
  const changed: string[] = [];
  for (let index = 0; index < header.entries.length && changed.length <= 3; index++) {
    if (now.sizes[index] !== header.sizes[index] || now.mtimes[index] !== header.mtimes[index]) {
      changed.push(header.entries[index]!);
    }
  }
  return describeChanged(changed, 'size or modification time');
}

/** With fullHash: compares every image's size and content hash with the cache's. */
async function describeImageChanges(header: CacheHeader, root: string): Promise<string | undefined> {
  const changed: string[] = [];
  for (let index = 0; index < header.entries.length && changed.length <= 3; index++) {
    const image = header.entries[index]!;
    let hash: string | undefined;
    try {
      const bytes = await readFile(join(root, image));
      if (bytes.length === header.sizes[index]) hash = createHash('sha256').update(bytes).digest('hex');
    } catch {
      // Missing now.
    }
    // A file stamped as missing (-1) that is still missing is unchanged.
    const unchanged = hash === undefined ? header.sizes[index] === -1 : hash === header.hashes?.[index];
    if (!unchanged) changed.push(image);
  }
  return describeChanged(changed, 'content');
}

function describeChanged(changed: readonly string[], what: string): string | undefined {
  if (changed.length === 0) return undefined;
  const named = changed.slice(0, 3).join(', ');
  return `image${changed.length > 1 ? 's' : ''} ${named}${changed.length > 3 ? ' and more' : ''} changed (${what})`;
}

function fingerprintOf(
  labelsHash: string,
  key: CacheKey,
  images: readonly string[],
  stamps: readonly FileStamp[],
): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ formatVersion: CACHE_FORMAT_VERSION, labelsHash, key }));
  images.forEach((image, index) => {
    const stamp = stamps[index]!;
    hash.update(`\n${image}\t${stamp.size}\t${key.fullHash ? stamp.hash : stamp.mtimeMs}`);
  });
  return hash.digest('hex');
}

/** Turns decoding failures into an error, or (with skipBadImages) into the list of skipped images. */
function handleFailures(
  failures: readonly DecodeFailure[],
  skipBadImages: boolean,
  labelsPath: string,
  resized: boolean,
): DecodeFailure[] {
  if (failures.length === 0) return [];
  const sizes = failures.filter((f) => f.kind === 'size');
  if (sizes.length > 0) {
    throw problemsError(
      'image-size-mismatch',
      `the images of ${labelsPath} differ in size (${sizes.length} differ from the first):`,
      sizes.map((f) => `${f.image}: ${f.reason}`),
      resized
        ? undefined
        : 'Pass width and height (e.g. { width: 128, height: 128 }) to resize every image to one size.',
    );
  }
  if (skipBadImages) return [...failures];
  const code = failures[0]!.kind === 'missing' ? 'image-missing' : 'image-corrupt';
  throw problemsError(
    code,
    `${failures.length} image${failures.length === 1 ? '' : 's'} of ${labelsPath} cannot be loaded:`,
    failures.map((f) => `${f.image}: ${f.reason}`),
    'Restore or replace these files, or pass skipBadImages: true to leave them out.',
  );
}

/** The error for a cache path that holds something litter must not replace or delete. */
function cacheRefused(cachePath: string, reason: string): DatasetError {
  return new DatasetError(
    'cache-path-refused',
    `the cache path ${cachePath} is refused: ${reason}. litter writes and deletes only its own cache files; pass another cachePath (by default the cache is labels.litter-cache next to labels.json), or move that file away yourself`,
  );
}

/** The real path of `path` when it exists, else the real path of its folder joined with its name. */
function realPathOf(path: string): string {
  try {
    return realpathSync.native(path);
  } catch {
    try {
      return join(realpathSync.native(dirname(path)), basename(path));
    } catch {
      return resolve(path);
    }
  }
}

/** Refuses a cache path that is labels.json or one of its images (links followed), present or not. */
function checkNotOwnFile(
  cachePath: string,
  labelsPath: string,
  images: readonly string[],
  root: string,
): void {
  const real = realPathOf(cachePath);
  if (real === realPathOf(labelsPath))
    throw cacheRefused(cachePath, `it is the dataset's ${basename(labelsPath)}`);
  // One realpath per image (about 5 ms for 2,000), on builds and clears only.
  const image = images.find((name) => realPathOf(imagePath(root, name)) === real);
  if (image !== undefined) throw cacheRefused(cachePath, `it is the dataset's image ${image}`);
}

/**
 * Deletes a dataset's cache file and the temporary files of killed writers, but only files litter wrote:
 * a file at `cachePath` that is not a litter cache (recognised by its first bytes), or that is labels.json or
 * one of its images, is refused and left alone. Returns the paths deleted (none when there was no cache).
 *
 * @param labelsPathOrDir labels.json or its folder
 * @throws DatasetError `cache-path-refused`, `labels-not-found`
 * @example
 * const removed = await clearCache('data/blender-five');
 */
export async function clearCache(
  labelsPathOrDir: string,
  options: { cachePath?: string } = {},
): Promise<string[]> {
  const labelsPath = await resolveLabelsPath(labelsPathOrDir);
  const cachePath = resolve(options.cachePath ?? defaultCachePath(labelsPath));
  const names = await listedImages(labelsPath);
  checkNotOwnFile(cachePath, labelsPath, names, dirname(labelsPath));
  const removed: string[] = [];
  const kind = await cacheFileKind(cachePath);
  if (kind === 'other')
    throw cacheRefused(cachePath, 'it is not a litter cache (its first bytes are not a cache header)');
  if (kind === 'not-a-file') throw cacheRefused(cachePath, 'it is not a regular file');
  if (kind === 'cache') {
    await unlink(cachePath);
    removed.push(cachePath);
  }
  for (const file of await staleTemporaries(cachePath)) {
    await unlink(file).catch(() => {});
    removed.push(file);
  }
  return removed;
}

/** The image names of a labels file as far as it can be read (a broken one still names its images). */
async function listedImages(labelsPath: string): Promise<string[]> {
  return namesIn(await readLabelsBytes(labelsPath));
}

function namesIn(labelsBytes: Buffer): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(labelsBytes.toString('utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((entry) => {
    const image = (entry as { image?: unknown } | null)?.image;
    return typeof image === 'string' && image !== '' ? [image] : [];
  });
}

/** Fails early, before decoding, when the cache's folder cannot be written. */
async function checkWritable(cachePath: string): Promise<void> {
  const folder = dirname(cachePath);
  try {
    await mkdir(folder, { recursive: true });
    await access(folder, constants.W_OK);
    if (!(await statAsync(folder)).isDirectory())
      throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
  } catch (error) {
    throw notWritable(cachePath, error);
  }
}

async function explainWriteErrors(cachePath: string, write: () => Promise<number>): Promise<number> {
  try {
    return await write();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR') {
      throw notWritable(cachePath, error);
    }
    throw new DatasetError(
      'cache-write-failed',
      `writing the cache ${cachePath} failed (${code ?? (error as Error).message}): free disk space, pass another cachePath, or cache: false`,
      { cause: error },
    );
  }
}

function notWritable(cachePath: string, error: unknown): DatasetError {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  return new DatasetError(
    'cache-not-writable',
    `cannot write the cache ${cachePath}: its folder is not writable (${code}). Pass cachePath: '<a writable folder>/labels.litter-cache' to keep the cache elsewhere, or cache: false to load without one.`,
    { cause: error },
  );
}
