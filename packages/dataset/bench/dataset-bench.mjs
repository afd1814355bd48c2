// Benchmark (not a test): @litter/dataset beside the seed's Python data path, on the same labels.json.
//
//   pnpm bench:dataset [LABELS] [--runs N] [--copies N] [--no-decoders]
//
// LABELS is a labels.json or its folder (relative paths from the repository root). Default: the test
// fixture test/fixtures/blender-three-wide replicated 27 times (2,025 images of 96x72) in a temporary
// folder; --copies N replicates LABELS (or the default fixture) N times. Each run measures, in a fresh
// process each, ours (cold cache build, warm cache open, batch assembly of 32; beside them the bare copy of
// the same 32 images, the floor of any batcher that copies, and a cold build with durable: true) and
// ../shared/anchors/seed_pipeline.py (PIL decode + pickle dump, pickle load, get_batch + numpy.stack of 32).
// Each run prints its figures, their ratios and the load average; the table gives the medians over the runs.
// Then the built-in PNG decoder against sharp alone and fast-png (pure JavaScript): cold builds with and without
// it, and each decoder one image at a time on the same files (--no-decoders skips this part).
// Runs on the built package (dist/): the package's `bench` script builds it first.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(packageDir, '../..');
const anchor = resolve(repoRoot, '../shared/anchors/seed_pipeline.py');
const python = '/usr/bin/python3';
const BATCH = 32;
const BATCHES = 200;

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4]);
} else if (process.argv[2] === '--decoders') {
  await decoders(process.argv[3]);
} else if (process.argv[2] === '--cold') {
  await coldBuild(process.argv[3], process.argv[4]);
} else {
  await main();
}

/** One measurement of ours in this (fresh) process; prints one JSON line. */
async function child(labelsPath, cachePath) {
  const { createBatcher, EpochSampler, getBatch, loadDataset, SeededRandom } = await import(
    '../dist/index.js'
  );
  rmSync(cachePath, { force: true });
  let t = performance.now();
  const cold = await loadDataset(labelsPath, { cachePath });
  const coldS = (performance.now() - t) / 1000;
  t = performance.now();
  const warm = await loadDataset(labelsPath, {
    cachePath,
    onCache: (e) => {
      if (e.action !== 'hit') throw new Error(`expected a cache hit, got ${JSON.stringify(e)}`);
    },
  });
  const warmS = (performance.now() - t) / 1000;
  const indices = Array.from({ length: warm.size }, (_, i) => i);
  const time = (fn) => {
    for (let i = 0; i < 20; i++) fn(); // warm-up (JIT, buffers)
    const start = performance.now();
    for (let i = 0; i < BATCHES; i++) fn();
    return (performance.now() - start) / BATCHES;
  };
  const uint8 = createBatcher(warm, {
    sampler: new EpochSampler({ indices, batchSize: BATCH, seed: 1 }),
    prefetch: 0,
  });
  const float32 = createBatcher(warm, {
    sampler: new EpochSampler({ indices, batchSize: BATCH, seed: 1 }),
    prefetch: 0,
    format: 'float32',
  });
  const random = new SeededRandom(1);
  // The floor of batch assembly: the bare copy of the same 32 images (same sampler, same order) into a reused
  // buffer, with nothing else (no labels, no checks). Random images of a dataset larger than the CPU caches
  // are copied at the memory's bandwidth, so no batcher that copies can beat this.
  const floorSampler = new EpochSampler({ indices, batchSize: BATCH, seed: 1 });
  const imageBytes = warm.width * warm.height * 3;
  const floorBuffer = new Uint8Array(BATCH * imageBytes);
  const source = warm.pixels;
  const copyFloor = () => {
    const batch = floorSampler.next();
    for (let k = 0; k < batch.length; k++) {
      const from = batch[k] * imageBytes;
      floorBuffer.set(source.subarray(from, from + imageBytes), k * imageBytes);
    }
  };
  // Alternately, three times each: whichever is timed first also pays for warming the CPU caches and TLB.
  const batchTimes = [];
  const floorTimes = [];
  for (let round = 0; round < 3; round++) {
    batchTimes.push(time(() => uint8.next()));
    floorTimes.push(time(copyFloor));
  }
  const batchMs = median(batchTimes);
  const floorMs = median(floorTimes);
  // The floor of a warm open in a new process: getting as much fresh memory as the pixels take, and writing
  // it once (page faults; no file involved). Median of 3.
  const faultTimes = [];
  for (let round = 0; round < 3; round++) {
    const start = performance.now();
    new Uint8Array(warm.pixels.length).fill(1);
    faultTimes.push((performance.now() - start) / 1000);
  }
  // A cold build that also flushes the cache to disk (durable: true), for the cost of the fsync.
  const durablePath = `${cachePath}-durable`;
  rmSync(durablePath, { force: true });
  t = performance.now();
  await loadDataset(labelsPath, { cachePath: durablePath, durable: true });
  const coldDurableS = (performance.now() - t) / 1000;
  rmSync(durablePath, { force: true });
  const result = {
    images: warm.size,
    width: warm.width,
    height: warm.height,
    cold_s: coldS,
    warm_s: warmS,
    cold_durable_s: coldDurableS,
    fresh_memory_s: median(faultTimes),
    batch_ms: batchMs,
    copy_floor_ms: floorMs,
    batch_float32_ms: time(() => float32.next()),
    get_batch_ms: time(() => getBatch(warm, BATCH, { random })),
    cache_bytes: statSync(cachePath).size,
    same: Buffer.compare(Buffer.from(cold.pixels), Buffer.from(warm.pixels)) === 0,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * The built-in PNG decoder beside sharp alone and fast-png (pure JavaScript), on the same files already in
 * memory, one image at a time on this thread (sharp: also with as many in flight as there are cores, on its own
 * threads). Each gives RGB at the image's size; every output is checked equal to ours. Prints one JSON line.
 */
async function decoders(labelsPath) {
  const { decodePngInto } = await import('../dist/_png.js');
  const { default: sharp } = await import('sharp');
  const { decode } = await import('fast-png');
  const root = dirname(labelsPath);
  const files = JSON.parse(readFileSync(labelsPath, 'utf8')).map((e) => readFileSync(join(root, e.image)));
  const { width, height } = await sharp(files[0]).metadata();
  const target = { width, height, resize: false, background: [0, 0, 0] };
  const bytes = width * height * 3;
  const ours = new Uint8Array(bytes * files.length);
  const viaSharp = (file) =>
    sharp(file)
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer();
  const viaFastPng = (file, out, offset) => {
    const png = decode(file);
    const { data, channels } = png;
    if (png.depth !== 8 || (channels !== 3 && channels !== 4)) throw new Error('fast-png: not 8-bit RGB(A)');
    for (let i = 0, o = offset; i < data.length; i += channels, o += 3) {
      const a = channels === 4 ? data[i + 3] : 255;
      out[o] = ((data[i] * a) / 255) | 0;
      out[o + 1] = ((data[i + 1] * a) / 255) | 0;
      out[o + 2] = ((data[i + 2] * a) / 255) | 0;
    }
  };
  const perImage = async (fn) => {
    const start = performance.now();
    for (let i = 0; i < files.length; i++) await fn(i);
    return (performance.now() - start) / files.length;
  };
  const times = { ours: [], sharp: [], sharpParallel: [], fastPng: [] };
  let same = true;
  const check = (label, pixels, i) => {
    if (Buffer.compare(Buffer.from(pixels), Buffer.from(ours.subarray(i * bytes, (i + 1) * bytes))) !== 0) {
      same = false;
      process.stderr.write(`${label} differs from ours on image ${i}\n`);
    }
  };
  const fast = new Uint8Array(bytes);
  for (let round = 0; round < 3; round++) {
    times.ours.push(
      await perImage((i) => {
        if (decodePngInto(files[i], ours, i * bytes, target).status !== 'ok') throw new Error('not ours');
      }),
    );
    times.sharp.push(
      await perImage(async (i) => {
        const pixels = await viaSharp(files[i]);
        if (round === 0) check('sharp', pixels, i);
      }),
    );
    const start = performance.now();
    const limit = cpus().length;
    let next = 0;
    await Promise.all(
      Array.from({ length: limit }, async () => {
        while (next < files.length) await viaSharp(files[next++]);
      }),
    );
    times.sharpParallel.push((performance.now() - start) / files.length);
    times.fastPng.push(
      await perImage((i) => {
        viaFastPng(files[i], fast, 0);
        if (round === 0) check('fast-png', fast, i);
      }),
    );
  }
  const result = Object.fromEntries(Object.entries(times).map(([k, v]) => [`${k}_ms`, median(v)]));
  process.stdout.write(`${JSON.stringify({ images: files.length, width, height, same, ...result })}\n`);
}

/** A cold build in this (fresh) process; with LITTER_DATASET_BENCH_SHARP_ONLY=1 every image goes to sharp. */
async function coldBuild(labelsPath, cachePath) {
  const { loadDataset } = await import('../dist/index.js');
  rmSync(cachePath, { force: true });
  const t = performance.now();
  const dataset = await loadDataset(labelsPath, { cachePath });
  const coldS = (performance.now() - t) / 1000;
  rmSync(cachePath, { force: true });
  process.stdout.write(`${JSON.stringify({ images: dataset.size, cold_s: coldS })}\n`);
}

/** Runs this script in a fresh process with `args`; returns its last stdout line as JSON. */
function childJson(args, env = {}) {
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  if (run.status !== 0) throw new Error(`${args[0]} failed (exit ${run.status})`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1));
}

/**
 * Whether the hand-written PNG decoder (about 500 lines) earns its place: cold builds with and without it
 * (every image to sharp instead), alternating, and the decoders one image at a time.
 */
function decoderReport(labelsPath, cachePath, runs) {
  const withOurs = [];
  const sharpOnly = [];
  const decoding = [];
  for (let run = 1; run <= runs; run++) {
    withOurs.push(childJson(['--cold', labelsPath, cachePath]).cold_s);
    sharpOnly.push(
      childJson(['--cold', labelsPath, cachePath], { LITTER_DATASET_BENCH_SHARP_ONLY: '1' }).cold_s,
    );
    decoding.push(childJson(['--decoders', labelsPath]));
    const d = decoding.at(-1);
    console.log(
      `decoders run ${run}: cold build ${withOurs.at(-1).toFixed(3)} s with the built-in decoder, ${sharpOnly.at(-1).toFixed(3)} s with sharp only | per image: ours ${d.ours_ms.toFixed(3)} ms, sharp ${d.sharp_ms.toFixed(3)} ms (${d.sharpParallel_ms.toFixed(3)} ms with ${cpus().length} in flight), fast-png ${d.fastPng_ms.toFixed(3)} ms${d.same ? '' : ' (OUTPUTS DIFFER)'}`,
    );
  }
  const m = (key) => median(decoding.map((d) => d[key]));
  const count = decoding[0].images;
  const rows = [
    ['', 'built-in', 'sharp only', 'fast-png', 'sharp / built-in'],
    [
      'cold build (images/s)',
      (count / median(withOurs)).toFixed(0),
      (count / median(sharpOnly)).toFixed(0),
      '',
      `${(median(sharpOnly) / median(withOurs)).toFixed(2)}x`,
    ],
    [
      'decode, one at a time (ms/image)',
      m('ours_ms').toFixed(3),
      m('sharp_ms').toFixed(3),
      m('fastPng_ms').toFixed(3),
      `${(m('sharp_ms') / m('ours_ms')).toFixed(2)}x`,
    ],
    [
      `  sharp, ${cpus().length} in flight (ms/image)`,
      '',
      m('sharpParallel_ms').toFixed(3),
      '',
      `${(m('sharpParallel_ms') / m('ours_ms')).toFixed(2)}x`,
    ],
  ];
  console.log(
    `\nPNG decoders, medians of ${runs} run(s), ${count} images of ${decoding[0].width}x${decoding[0].height}:`,
  );
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows)
    console.log(
      row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '),
    );
  console.log(
    `(outputs ${decoding.every((d) => d.same) ? 'identical' : 'NOT identical'} to the built-in decoder's; the last column: how many times faster the built-in decoder is)`,
  );
}

async function main() {
  // `pnpm bench:dataset -- ARGS` passes the `--` on.
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const skipDecoders = args.includes('--no-decoders');
  if (skipDecoders) args.splice(args.indexOf('--no-decoders'), 1);
  const option = (name, fallback) => {
    const at = args.indexOf(name);
    if (at < 0) return fallback;
    const value = Number(args[at + 1]);
    args.splice(at, 2);
    return value;
  };
  const runs = option('--runs', 3);
  const copies = option('--copies', undefined);
  const work = mkdtempSync(join(tmpdir(), 'litter-bench-'));
  try {
    const given = args[0]
      ? labelsFrom(args[0])
      : join(repoRoot, 'test/fixtures/blender-three-wide/labels.json');
    const labelsPath = copies !== undefined || !args[0] ? replicate(given, copies ?? 27, work) : given;
    const cachePath = join(work, 'bench.litter-cache');
    const entries = JSON.parse(readFileSync(labelsPath, 'utf8'));
    console.log(`@litter/dataset benchmark: ${entries.length} images from ${labelsPath}`);
    console.log(
      `machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`,
    );
    warmPageCache(labelsPath, entries);

    const seedReady = checkPython();
    const ours = [];
    const seed = [];
    for (let run = 1; run <= runs; run++) {
      const loadBefore = loadavg()[0];
      const mine = spawnSync(
        process.execPath,
        [fileURLToPath(import.meta.url), '--child', labelsPath, cachePath],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      if (mine.status !== 0) throw new Error(`our run failed (exit ${mine.status})`);
      ours.push(JSON.parse(mine.stdout.trim().split('\n').at(-1)));
      if (seedReady) {
        const theirs = spawnSync(
          python,
          [anchor, labelsPath, '--batches', String(BATCHES), '--batch-size', String(BATCH)],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'inherit'],
            // The seed leaves its pickle in a new temporary folder: make that one inside ours, removed at the end.
            env: { ...process.env, TMPDIR: work },
          },
        );
        if (theirs.status !== 0) throw new Error(`the seed's pipeline failed (exit ${theirs.status})`);
        seed.push(JSON.parse(theirs.stdout.trim().split('\n').at(-1)));
      }
      const o = ours.at(-1);
      const s = seed.at(-1);
      const ratios = s
        ? ` | ratios cold ${(s.cold_s / o.cold_s).toFixed(2)}x, warm ${(s.warm_s / o.warm_s).toFixed(2)}x, batch ${(s.batch_ms / o.batch_ms).toFixed(1)}x`
        : '';
      console.log(
        `run ${run} (load ${loadBefore.toFixed(2)} -> ${loadavg()[0].toFixed(2)}): ours cold ${o.cold_s.toFixed(3)} s, warm ${o.warm_s.toFixed(3)} s, batch ${o.batch_ms.toFixed(4)} ms (copy floor ${o.copy_floor_ms.toFixed(4)})` +
          (s
            ? ` | seed cold ${s.cold_s.toFixed(3)} s, warm ${s.warm_s.toFixed(3)} s, batch ${s.batch_ms.toFixed(4)} ms`
            : '') +
          ratios,
      );
      if (!o.same) throw new Error('the warm cache gave other pixels than the cold build');
    }
    report(ours, seed, entries.length);
    if (!skipDecoders) decoderReport(labelsPath, cachePath, runs);
    console.log(
      `load average at the end: ${loadavg()[0].toFixed(2)} (other work on the machine skews every figure)`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function labelsFrom(given) {
  const path = isAbsolute(given) ? given : resolve(process.env.INIT_CWD ?? process.cwd(), given);
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'labels.json') : path;
  if (!existsSync(file)) throw new Error(`no labels.json at ${file}`);
  return file;
}

/** Copies a dataset `copies` times into `dir` with renamed scenes (k<copy>s<scene>-...) and one labels.json. */
function replicate(labelsPath, copies, dir) {
  const source = dirname(labelsPath);
  const entries = JSON.parse(readFileSync(labelsPath, 'utf8'));
  const out = [];
  for (let k = 0; k < copies; k++) {
    for (const entry of entries) {
      const image = `k${k}s${entry.image}`;
      cpSync(join(source, entry.image), join(dir, image));
      out.push({ image, meshes: entry.meshes });
    }
  }
  const replicated = join(dir, 'labels.json');
  writeFileSync(replicated, JSON.stringify(out, null, 1));
  return replicated;
}

/** Reads every image once, so that neither side pays for the disk (the first would otherwise). */
function warmPageCache(labelsPath, entries) {
  const root = dirname(labelsPath);
  for (const entry of entries) readFileSync(join(root, entry.image));
  void readdirSync(root);
}

function checkPython() {
  if (!existsSync(anchor)) {
    console.log(`the seed's pipeline is not at ${anchor}: ours only`);
    return false;
  }
  try {
    execFileSync(python, ['-c', 'import PIL, numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    console.log(
      `${python} cannot import PIL and numpy, which the seed's pipeline needs: ours only. Install them with\n` +
        '  apt-get update && apt-get install -y python3-pil python3-numpy',
    );
    return false;
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function report(ours, seed, count) {
  const m = (list, key) => median(list.map((r) => r[key]));
  const o = {
    cold: count / m(ours, 'cold_s'),
    coldDurable: count / m(ours, 'cold_durable_s'),
    warm: m(ours, 'warm_s'),
    freshMemory: m(ours, 'fresh_memory_s'),
    batch: m(ours, 'batch_ms'),
    floor: m(ours, 'copy_floor_ms'),
    float32: m(ours, 'batch_float32_ms'),
    getBatch: m(ours, 'get_batch_ms'),
    bytes: m(ours, 'cache_bytes'),
  };
  const { width, height } = ours[0];
  console.log(
    `\nmedians of ${ours.length} run(s), ${count} images of ${width}x${height}, batch of ${BATCH}:`,
  );
  const rows = [['', 'ours', 'seed', 'ratio', 'target']];
  if (seed.length > 0) {
    const s = {
      cold: count / m(seed, 'cold_s'),
      warm: m(seed, 'warm_s'),
      batch: m(seed, 'batch_ms'),
      bytes: m(seed, 'cache_bytes'),
    };
    const check = (ok) => (ok ? 'met' : 'NOT met');
    rows.push(
      [
        'cold build (images/s)',
        o.cold.toFixed(0),
        s.cold.toFixed(0),
        `${(o.cold / s.cold).toFixed(2)}x`,
        `>= 2x: ${check(o.cold >= 2 * s.cold)}`,
      ],
      [
        'warm open (s)',
        o.warm.toFixed(3),
        s.warm.toFixed(3),
        `${(s.warm / o.warm).toFixed(2)}x`,
        `>= 1x: ${check(o.warm <= s.warm)}`,
      ],
      [
        '  filling as much fresh memory (floor, s)',
        o.freshMemory.toFixed(3),
        '',
        `${(s.warm / o.freshMemory).toFixed(2)}x`,
        '',
      ],
      [
        'batch assembly (ms)',
        o.batch.toFixed(4),
        s.batch.toFixed(4),
        `${(s.batch / o.batch).toFixed(1)}x`,
        `>= 10x: ${check(o.batch * 10 <= s.batch)}`,
      ],
      [
        '  bare copy of the same images (floor, ms)',
        o.floor.toFixed(4),
        (s.batch / 10).toFixed(4),
        `${(s.batch / o.floor).toFixed(1)}x`,
        o.floor * 10 > s.batch ? 'the floor is above 10x' : 'the floor allows 10x',
      ],
      ['  float32 batch (ms)', o.float32.toFixed(4), '', `${(s.batch / o.float32).toFixed(1)}x`, ''],
      ['  getBatch (ms)', o.getBatch.toFixed(4), '', `${(s.batch / o.getBatch).toFixed(1)}x`, ''],
      [
        '  cold build, durable: true (images/s)',
        o.coldDurable.toFixed(0),
        '',
        `${(o.coldDurable / s.cold).toFixed(2)}x`,
        '',
      ],
      ['cache file (MB)', (o.bytes / 1e6).toFixed(1), (s.bytes / 1e6).toFixed(1), '', ''],
    );
  } else {
    rows.push(
      ['cold build (images/s)', o.cold.toFixed(0), '', '', ''],
      ['warm open (s)', o.warm.toFixed(3), '', '', ''],
      ['  filling as much fresh memory (floor, s)', o.freshMemory.toFixed(3), '', '', ''],
      ['batch assembly (ms)', o.batch.toFixed(4), '', '', ''],
      ['  bare copy of the same images (floor, ms)', o.floor.toFixed(4), '', '', ''],
      ['  float32 batch (ms)', o.float32.toFixed(4), '', '', ''],
      ['  getBatch (ms)', o.getBatch.toFixed(4), '', '', ''],
      ['  cold build, durable: true (images/s)', o.coldDurable.toFixed(0), '', '', ''],
      ['cache file (MB)', (o.bytes / 1e6).toFixed(1), '', '', ''],
    );
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const row of rows)
    console.log(
      row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '),
    );
  console.log(
    "(ratios: how many times better ours is; warm open and batch compare times, cold build throughput; the floor row's seed column is 10x the seed's batch time, the target)",
  );
}
