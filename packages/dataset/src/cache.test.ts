import { spawn, spawnSync } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { ensureBuilt } from '../../../test/built.js';
import { copyFixture, THREE_WIDE, tempDir } from '../test/helpers.js';
import { headerSchema, openCache, plainHeader, writeCache } from './_cache.js';
import { crc32 } from './_crc32.js';
import { CACHE_FORMAT_VERSION } from './cache-format.js';
import { type CacheEvent, clearCache, type LoadDatasetOptions, loadDataset } from './dataset.js';
import { DatasetError } from './errors.js';

/** Every file under `dir` (not following links) with its bytes, base64; folders and FIFOs as markers. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    out[path] = entry.isFile()
      ? (await readFile(path)).toString('base64')
      : entry.isDirectory()
        ? '<dir>'
        : '<other>';
  }
  return out;
}

/** Loads and returns the dataset with the cache events it caused. */
async function load(dir: string, options: LoadDatasetOptions = {}) {
  const events: CacheEvent[] = [];
  const dataset = await loadDataset(dir, { ...options, onCache: (e) => events.push(e) });
  return { dataset, events, actions: events.map((e) => e.action) };
}

const reasonOf = (events: CacheEvent[]) => {
  const e = events.find((x) => x.action === 'build' || x.action === 'rebuild');
  return e && 'reason' in e ? e.reason : undefined;
};

describe('cache', () => {
  it('is written next to labels.json, then reused with identical content', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const first = await load(dir);
    expect(first.actions).toEqual(['build', 'written']);
    expect(reasonOf(first.events)).toBe('no cache file yet');
    expect(first.dataset.cachePath).toBe(join(dir, 'labels.litter-cache'));
    const bytes = (await stat(join(dir, 'labels.litter-cache'))).size;
    expect(first.events[1]).toEqual({ action: 'written', path: join(dir, 'labels.litter-cache'), bytes });

    const second = await load(dir);
    expect(second.actions).toEqual(['hit']);
    const a = first.dataset;
    const b = second.dataset;
    expect(Buffer.from(b.pixels).equals(Buffer.from(a.pixels))).toBe(true);
    expect(b.pixels.buffer.byteLength).toBeGreaterThanOrEqual(b.pixels.length);
    for (const key of ['labels', 'boxes', 'boxMask'] as const) expect([...b[key]]).toEqual([...a[key]]);
    for (const key of [
      'vocabulary',
      'images',
      'scenes',
      'skipped',
      'width',
      'height',
      'size',
      'fingerprint',
    ] as const) {
      expect(b[key]).toEqual(a[key]);
    }
    expect(await readdir(dir)).toContain('labels.litter-cache');
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('is rebuilt when labels.json changes', async () => {
    const dir = await copyFixture(THREE_WIDE);
    await load(dir);
    const labels = JSON.parse(await readFile(join(dir, 'labels.json'), 'utf8')) as { meshes: object }[];
    labels[0]!.meshes = {};
    await writeFile(join(dir, 'labels.json'), JSON.stringify(labels));
    const again = await load(dir);
    expect(again.actions).toEqual(['rebuild', 'written']);
    expect(reasonOf(again.events)).toBe('labels.json changed');
    expect([...again.dataset.labels.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect((await load(dir)).actions).toEqual(['hit']);
  });

  it('is rebuilt when an image changes, naming it', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const before = await load(dir);
    await copyFile(join(dir, '2-0y-0p.png'), join(dir, '0-1y-0p.png'));
    const again = await load(dir);
    expect(again.actions).toEqual(['rebuild', 'written']);
    expect(reasonOf(again.events)).toBe('image 0-1y-0p.png changed (size or modification time)');
    expect(again.dataset.fingerprint).not.toBe(before.dataset.fingerprint);
    const n = again.dataset.images.indexOf('0-1y-0p.png');
    const m = again.dataset.images.indexOf('2-0y-0p.png');
    const bytes = 96 * 72 * 3;
    expect(
      Buffer.from(again.dataset.pixels.subarray(n * bytes, (n + 1) * bytes)).equals(
        Buffer.from(again.dataset.pixels.subarray(m * bytes, (m + 1) * bytes)),
      ),
    ).toBe(true);
    // A new modification time alone is a change too (without fullHash).
    const later = new Date(Date.now() + 5000);
    await utimes(join(dir, '1-1y-1p.png'), later, later);
    expect(reasonOf((await load(dir)).events)).toBe('image 1-1y-1p.png changed (size or modification time)');
  });

  it('is rebuilt, with a DatasetError, when an image can no longer be stat-ed (a link loop)', async () => {
    const dir = await copyFixture(THREE_WIDE);
    await load(dir);
    await rm(join(dir, '0-1y-0p.png'));
    await symlink('0-1y-0p.png', join(dir, '0-1y-0p.png')); // ELOOP, not ENOENT
    const events: CacheEvent[] = [];
    const error = await loadDataset(dir, { onCache: (e) => events.push(e) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).problems?.[0]).toMatch(/^0-1y-0p\.png: /);
    expect(events.map((e) => e.action)).toEqual(['rebuild']);
    expect(reasonOf(events)).toBe('image 0-1y-0p.png changed (size or modification time)');
  });

  it('with fullHash, follows content rather than modification times', async () => {
    const dir = await copyFixture(THREE_WIDE);
    expect(reasonOf((await load(dir)).events)).toBe('no cache file yet');
    expect(reasonOf((await load(dir, { fullHash: true })).events)).toBe(
      'options changed: fullHash (the cache has no content hashes)',
    );
    const later = new Date(Date.now() + 5000);
    await utimes(join(dir, '1-1y-1p.png'), later, later);
    expect((await load(dir, { fullHash: true })).actions).toEqual(['hit']);
    // Same size, other content (a changed text chunk, with its CRC fixed: the image stays valid).
    const path = join(dir, '1-1y-1p.png');
    const bytes = await readFile(path);
    const at = bytes.indexOf('tEXt');
    const length = bytes.readUInt32BE(at - 4);
    bytes[at + 4 + length - 1]! ^= 1;
    bytes.writeUInt32BE(crc32(bytes.subarray(at, at + 4 + length)), at + 4 + length);
    await writeFile(path, bytes);
    await utimes(path, later, later);
    const after = await load(dir, { fullHash: true });
    expect(reasonOf(after.events)).toBe('image 1-1y-1p.png changed (content)');
    expect((await load(dir, { fullHash: true })).actions).toEqual(['hit']);
  });

  it('is rebuilt when options change, saying which', async () => {
    const dir = await copyFixture(THREE_WIDE);
    await load(dir);
    expect(reasonOf((await load(dir, { width: 48, height: 36 })).events)).toBe(
      'options changed: size 96x72 -> 48x36',
    );
    expect(reasonOf((await load(dir, { width: 48, height: 36, background: 'white' })).events)).toBe(
      'options changed: background 0,0,0 -> 255,255,255',
    );
    expect(
      reasonOf(
        (
          await load(dir, {
            width: 48,
            height: 36,
            background: 'white',
            vocabulary: ['Sphere', 'Cube', 'Can'],
          })
        ).events,
      ),
    ).toBe('options changed: vocabulary from the labels -> [Sphere, Cube, Can]');
    expect(reasonOf((await load(dir)).events)).toBe("options changed: size 48x36 -> the images' own size");
    // Asking for the images' own size explicitly reuses a cache built without a size.
    expect((await load(dir, { width: 96, height: 72 })).actions).toEqual(['hit']);
  });

  it("never replaces or deletes a file that is not a litter cache, nor the dataset's own files", async () => {
    const dir = await copyFixture(THREE_WIDE);
    const notes = join(dir, 'notes.txt');
    await writeFile(notes, 'my notes');
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    const folder = join(dir, 'folder');
    await mkdir(folder);
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const missingImage = join(dir, '9-9y-9p.png');
    const labels = JSON.parse(await readFile(join(dir, 'labels.json'), 'utf8')) as unknown[];
    await writeFile(
      join(dir, 'labels.json'),
      JSON.stringify([...labels, { image: '9-9y-9p.png', meshes: {} }]),
    );
    const before = await snapshot(dir);
    const refused: [string, RegExp][] = [
      [join(dir, 'labels.json'), /is the dataset's labels\.json/],
      [join(dir, '0-0y-1p.png'), /is the dataset's image 0-0y-1p\.png/],
      [missingImage, /is the dataset's image 9-9y-9p\.png/],
      [notes, /is not a litter cache/],
      [empty, /is not a litter cache/],
      [folder, /is a folder|not a regular file/],
      [fifo, /not a regular file/],
    ];
    for (const [cachePath, reason] of refused) {
      for (const attempt of [
        () => loadDataset(dir, { cachePath, skipBadImages: true }),
        () => clearCache(dir, { cachePath }),
      ]) {
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, cachePath).toBeInstanceOf(DatasetError);
        expect((error as DatasetError).code, cachePath).toBe('cache-path-refused');
        expect((error as DatasetError).message, cachePath).toMatch(reason);
        expect((error as DatasetError).message, cachePath).toContain(cachePath);
      }
    }
    expect(await snapshot(dir)).toEqual(before);
    // A link to an image is that image.
    await symlink(join(dir, '0-0y-1p.png'), join(dir, 'link.litter-cache'));
    await expect(
      loadDataset(dir, { cachePath: join(dir, 'link.litter-cache'), skipBadImages: true }),
    ).rejects.toThrow(/is the dataset's image 0-0y-1p\.png/);
  });

  it("clearCache deletes the cache and killed writers' temporary files, nothing else", async () => {
    const dir = await copyFixture(THREE_WIDE);
    const { dataset } = await load(dir);
    const cache = dataset.cachePath!;
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout;
    const staleTemporary = `${cache}.tmp-${dead}-0123abcd`;
    const emptyTemporary = `${cache}.tmp-${dead}-89abcdef`;
    await copyFile(cache, staleTemporary);
    await writeFile(emptyTemporary, '');
    const lookalikes = [
      `${cache}.tmp-${dead}-notes.txt`,
      `${cache}.tmp-${dead}-0123abce`,
      `${cache}.tmp-1x-0123abcd`,
    ];
    await writeFile(lookalikes[0]!, 'mine');
    await writeFile(lookalikes[1]!, 'not a cache, though named like a temporary');
    await writeFile(lookalikes[2]!, 'mine too');
    expect((await clearCache(dir)).sort()).toEqual([cache, emptyTemporary, staleTemporary].sort());
    for (const file of lookalikes) expect(await readFile(file, 'utf8')).not.toBe('');
    expect(await clearCache(dir)).toEqual([]);
  });

  it('is rebuilt, never trusted and never crashing, when truncated or damaged', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const cache = join(dir, 'labels.litter-cache');
    const good = (await load(dir)).dataset;
    const size = (await stat(cache)).size;
    const original = await readFile(cache);

    const damage: [string, () => Promise<void>, RegExp][] = [
      ['truncated in the pixels', () => truncate(cache, Math.floor(size / 2)), /truncated/],
      ['truncated in the header', () => truncate(cache, size - 50), /truncated/],
      ['truncated at the start', () => truncate(cache, 200), /truncated/],
      [
        'a flipped pixel byte',
        async () => {
          const bytes = Buffer.from(original);
          bytes[1000]! ^= 0x40;
          await writeFile(cache, bytes);
        },
        /checksum mismatch/,
      ],
      [
        'a flipped header byte',
        async () => {
          const bytes = Buffer.from(original);
          bytes[size - 100]! ^= 0x01;
          await writeFile(cache, bytes);
        },
        /damaged|changed|checksum|truncated|unexpected/,
      ],
      [
        'extra bytes',
        () => writeFile(cache, Buffer.concat([original, Buffer.from('tail')])),
        /unexpected bytes/,
      ],
    ];
    for (const [what, doDamage, reason] of damage) {
      await writeFile(cache, original);
      await doDamage();
      const again = await load(dir);
      expect(again.actions, what).toEqual(['rebuild', 'written']);
      expect(reasonOf(again.events), what).toMatch(reason);
      expect(Buffer.from(again.dataset.pixels).equals(Buffer.from(good.pixels)), what).toBe(true);
      expect((await load(dir)).actions, what).toEqual(['hit']);
    }
  });

  it('checks the header as its schema does, without zod for a header this version wrote', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const { dataset } = await load(dir);
    const opened = await openCache(dataset.cachePath!);
    if (opened.status !== 'ok') throw new Error(`the cache did not open: ${JSON.stringify(opened)}`);
    await opened.close();
    const header = { ...opened.header, extra: 1 } as Record<string, unknown>;
    const key = header.key as Record<string, unknown>;
    const variants: Record<string, unknown>[] = [
      header,
      { ...header, hashes: ['a', 'b'], skipped: [{ index: 3, reason: 'gone', more: true }] },
      { ...header, key: { ...key, size: [96, 72], vocabulary: ['Cube'] } },
      // rejected by the schema
      { ...header, magic: 'something else' },
      { ...header, width: 0 },
      { ...header, height: 7.5 },
      { ...header, count: -1 },
      { ...header, formatVersion: Number.POSITIVE_INFINITY },
      { ...header, channels: 4 },
      { ...header, entries: [1] },
      // biome-ignore lint/suspicious/noSparseArray: a hole must fail like any non-string
      { ...header, entries: ['a', , 'b'] },
      { ...header, sizes: Array.from(header.sizes as Float64Array) },
      { ...header, labels: new Float64Array(3) },
      { ...header, skipped: [{ index: -1, reason: 'x' }] },
      { ...header, hashes: undefined },
      { ...header, key: { ...key, size: [96, 72, 1] } },
      { ...header, key: { ...key, background: [0, 0] } },
      { ...header, key: { ...key, fullHash: 'no' } },
      { ...header, pixelsByteLength: 2 ** 53 },
      Object.fromEntries(Object.entries(header).filter(([name]) => name !== 'boxMask')),
    ];
    let accepted = 0;
    for (const variant of variants) {
      const zod = headerSchema.safeParse(variant);
      const plain = plainHeader(variant);
      if (zod.success) {
        accepted++;
        expect(plain?.data).toStrictEqual(zod.data);
      } else {
        expect(plain).toBeUndefined();
      }
    }
    expect(accepted).toBe(3);
  });

  it('is rebuilt when its format version differs', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const cache = join(dir, 'labels.litter-cache');
    await load(dir);
    const opened = await openCache(cache);
    if (opened.status !== 'ok') throw new Error('expected a cache');
    const pixels = await opened.readPixels();
    if (!(pixels instanceof Uint8Array)) throw new Error(pixels.reason);
    await writeCache(cache, { ...opened.header, formatVersion: CACHE_FORMAT_VERSION + 1 }, pixels);
    expect(reasonOf((await load(dir)).events)).toBe(
      `the cache has format ${CACHE_FORMAT_VERSION + 1}, now ${CACHE_FORMAT_VERSION}`,
    );
  });

  it('is flushed to disk (file and folder) only with durable: true', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const probe = await open(join(dir, 'labels.json'), 'r');
    const FileHandlePrototype = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const sync = vi.spyOn(FileHandlePrototype, 'sync');
    try {
      const plain = await load(dir);
      expect(plain.actions).toEqual(['build', 'written']);
      expect(sync).not.toHaveBeenCalled();
      await rm(join(dir, 'labels.litter-cache'));
      const durable = await load(dir, { durable: true });
      expect(durable.actions).toEqual(['build', 'written']);
      expect(sync.mock.calls.length).toBeGreaterThanOrEqual(2); // the file, then its folder
      expect(Buffer.from(durable.dataset.pixels).equals(Buffer.from(plain.dataset.pixels))).toBe(true);
      expect((await load(dir)).actions).toEqual(['hit']);
    } finally {
      sync.mockRestore();
    }
  });

  it('can be turned off or put elsewhere', async () => {
    const dir = await copyFixture(THREE_WIDE);
    const off = await load(dir, { cache: false });
    expect(off.events).toEqual([]);
    expect(off.dataset.cachePath).toBeUndefined();
    const elsewhere = join(await tempDir(), 'sub', 'three.litter-cache');
    const there = await load(dir, { cachePath: elsewhere });
    expect(there.dataset.cachePath).toBe(elsewhere);
    expect((await load(dir, { cachePath: elsewhere })).actions).toEqual(['hit']);
    expect((await readdir(dir)).filter((f) => f.includes('litter-cache'))).toEqual([]);
  });

  it('in a read-only dataset folder: a clear error, or the cachePath override', async (context) => {
    const dir = await copyFixture(THREE_WIDE);
    const root = process.getuid?.() === 0;
    // root writes through permission bits; the immutable attribute stops it (where the file system has it).
    const lock = async () => {
      if (root) return spawnSync('chattr', ['+i', dir]).status === 0;
      await chmod(dir, 0o555);
      return true;
    };
    const unlock = () => (root ? spawnSync('chattr', ['-i', dir]) : undefined);
    if (!(await lock())) context.skip();
    try {
      const error = await loadDataset(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatasetError);
      expect((error as DatasetError).code).toBe('cache-not-writable');
      expect((error as DatasetError).message).toContain(join(dir, 'labels.litter-cache'));
      expect((error as DatasetError).message).toContain('cachePath');
      const cachePath = join(await tempDir(), 'labels.litter-cache');
      expect((await load(dir, { cachePath })).actions).toEqual(['build', 'written']);
      expect((await load(dir, { cachePath })).actions).toEqual(['hit']);
      expect((await load(dir, { cache: false })).dataset.size).toBe(75);
    } finally {
      await unlock();
      await chmod(dir, 0o755);
    }
  });

  it('survives a writer killed with SIGKILL mid-write: the old cache or none, never a partial one', async () => {
    ensureBuilt(); // the child runs the built package
    const dir = await copyFixture(THREE_WIDE);
    const cachePath = join(dir, 'labels.litter-cache');
    const fullSize = 75 * 96 * 72 * 3;

    /** Starts a child that (re)writes the cache slowly, and kills it once the temporary file is half written. */
    const killMidWrite = async (): Promise<number> => {
      const script = fileURLToPath(new URL('../test/_write-cache-child.mjs', import.meta.url));
      const child = spawn(process.execPath, [script, dir, cachePath], {
        env: { ...process.env, LITTER_DATASET_TEST_WRITE_PAUSE_MS: '20' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_, signal) => resolve(signal)),
      );
      const deadline = Date.now() + 60_000;
      let written = 0;
      while (Date.now() < deadline && child.exitCode === null) {
        const temporary = (await readdir(dir)).find((f) =>
          f.startsWith(`${basename(cachePath)}.tmp-${child.pid}-`),
        );
        written = temporary
          ? await stat(join(dir, temporary)).then(
              (s) => s.size,
              () => 0,
            )
          : 0;
        if (written > fullSize / 3) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      child.kill('SIGKILL');
      expect(await exited, output).toBe('SIGKILL');
      expect(output).not.toContain('finished');
      return written;
    };

    // 1. No cache before: none after.
    const written = await killMidWrite();
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(fullSize);
    expect((await readdir(dir)).some((f) => f.includes('.tmp-'))).toBe(true);
    await expect(stat(cachePath)).rejects.toThrow();
    const fresh = await load(dir);
    expect(reasonOf(fresh.events)).toBe('no cache file yet');
    // The killed writer's temporary file is cleaned up by the next write.
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);

    // 2. A good cache before (for 48x36); the killed child was replacing it (for 96x72): the old one survives.
    await load(dir, { width: 48, height: 36 });
    const before = await readFile(cachePath);
    await killMidWrite();
    expect((await readFile(cachePath)).equals(before)).toBe(true);
    expect((await load(dir, { width: 48, height: 36 })).actions).toEqual(['hit']);
  });
});
