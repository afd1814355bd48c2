import os from 'node:os';
import path from 'node:path';
import { type CacheEvent, defaultCachePath, loadDataset } from '@litter/dataset';
import type { ArgsDef } from 'citty';
import { datasetCacheFlags, stringFlag } from '../../_args.js';
import { chooseInputSize } from '../../_input-size.js';
import { type Io, resolvePath } from '../../_io.js';
import { datasetPath } from '../../_paths.js';
import { parseOption, RUN_OPTIONS } from '../../_train-options.js';

/** Arguments every cache command takes. */
export const cacheArgs = {
  dataset: {
    type: 'positional',
    required: true,
    valueHint: 'DATASET',
    description: 'Folder with labels.json (or the file)',
  },
  'cache-path': {
    type: 'string',
    valueHint: 'FILE',
    description:
      'The cache file (default: labels.litter-cache next to labels.json); a file there that is not a litter cache is never replaced or deleted',
  },
} as const satisfies ArgsDef;

/** The image size a cache is built for; the same defaults as `litter train`, so that train finds it. */
export const sizeArgs = {
  width: {
    type: 'string',
    valueHint: 'PX',
    description: 'Image width (default: as litter train, from the images and the cores)',
  },
  height: {
    type: 'string',
    valueHint: 'PX',
    description: 'Image height (default: as litter train, from the images and the cores)',
  },
} as const satisfies ArgsDef;

export interface CacheTarget {
  labelsPath: string;
  cachePath: string;
  /** loadDataset options from --full-hash and --skip-bad-images. */
  options: { fullHash?: boolean; skipBadImages?: boolean };
}

export function cacheTarget(
  io: Io,
  args: { dataset: string; 'cache-path'?: unknown; 'full-hash'?: unknown; 'skip-bad-images'?: unknown },
): CacheTarget {
  const given = datasetPath(io, args.dataset);
  const labelsPath = given.endsWith('.json') ? given : path.join(given, 'labels.json');
  const cachePathFlag = stringFlag('cache-path', args['cache-path'] as string | undefined);
  return {
    labelsPath,
    cachePath: cachePathFlag === undefined ? defaultCachePath(labelsPath) : resolvePath(io, cachePathFlag),
    options: datasetCacheFlags(args),
  };
}

/** The size of `--width`/`--height`, else the one `litter train` chooses for the dataset (`chooseInputSize`). */
export async function sizeOf(
  args: { width?: unknown; height?: unknown },
  labelsPath: string,
): Promise<{ width: number; height: number }> {
  const width = parseOption(RUN_OPTIONS.width, args.width as string | undefined);
  const height = parseOption(RUN_OPTIONS.height, args.height as string | undefined);
  if (width !== undefined && height !== undefined) return { width, height };
  const chosen = await chooseInputSize(labelsPath, os.availableParallelism(), { width, height });
  return { width: chosen.width, height: chosen.height };
}

/** Thrown from `onCache` to stop loadDataset before it decodes anything: checking must not rebuild. */
class NotCurrent extends Error {
  constructor(readonly event: Exclude<CacheEvent, { action: 'hit' | 'written' }>) {
    super(event.reason);
  }
}

export type CacheCheck =
  | {
      status: 'current';
      width: number;
      height: number;
      images: number;
      vocabulary: readonly string[];
      fingerprint: string;
    }
  | { status: 'missing' | 'stale'; reason: string };

/**
 * Whether the cache matches labels.json, the images and the size, as loadDataset would decide, without
 * rebuilding: a current cache is read whole (its CRC checked); anything else stops at loadDataset's verdict.
 */
export async function checkCache(
  target: CacheTarget,
  size: { width: number; height: number },
): Promise<CacheCheck> {
  try {
    const dataset = await loadDataset(target.labelsPath, {
      ...size,
      ...target.options,
      cachePath: target.cachePath,
      onCache: (event) => {
        if (event.action === 'build' || event.action === 'rebuild') throw new NotCurrent(event);
      },
    });
    return {
      status: 'current',
      width: dataset.width,
      height: dataset.height,
      images: dataset.size,
      vocabulary: dataset.vocabulary,
      fingerprint: dataset.fingerprint,
    };
  } catch (error) {
    if (error instanceof NotCurrent) {
      return { status: error.event.action === 'build' ? 'missing' : 'stale', reason: error.event.reason };
    }
    throw error;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
