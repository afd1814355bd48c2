import { beforeAll, describe, expect, it } from 'vitest';
import { THREE_WIDE } from '../test/helpers.js';
import { type Batch, createBatcher, getBatch } from './batcher.js';
import { type Dataset, loadDataset } from './dataset.js';
import { DatasetError } from './errors.js';
import { SeededRandom } from './random.js';
import { EpochSampler } from './sampler.js';
import { splitDataset } from './split.js';

let dataset: Dataset;
const P = 72 * 96 * 3;
const C = 3;

beforeAll(async () => {
  dataset = await loadDataset(THREE_WIDE, { cache: false });
});

/** Checks a batch against the dataset, image by image. */
function expectBatchMatches(batch: Batch, format: 'uint8' | 'float32' = 'uint8') {
  expect(batch.shape).toEqual([batch.size, 72, 96, 3]);
  expect(batch.images.length).toBe(batch.size * P);
  expect(batch.labels.length).toBe(batch.size * C);
  expect(batch.boxes.length).toBe(batch.size * C * 4);
  expect(batch.indices.length).toBe(batch.size);
  for (let k = 0; k < batch.size; k++) {
    const n = batch.indices[k]!;
    const want = dataset.pixels.subarray(n * P, (n + 1) * P);
    const got = batch.images.subarray(k * P, (k + 1) * P);
    if (format === 'uint8') expect(Buffer.from(got as Uint8Array).equals(Buffer.from(want))).toBe(true);
    else for (let j = 0; j < P; j += 97) expect(got[j]).toBe(Math.fround(want[j]! / 255));
    expect([...batch.labels.subarray(k * C, (k + 1) * C)]).toEqual([
      ...dataset.labels.subarray(n * C, (n + 1) * C),
    ]);
    expect([...batch.boxes.subarray(k * C * 4, (k + 1) * C * 4)]).toEqual([
      ...dataset.boxes.subarray(n * C * 4, (n + 1) * C * 4),
    ]);
    expect([...batch.boxMask.subarray(k * C, (k + 1) * C)]).toEqual([
      ...dataset.boxMask.subarray(n * C, (n + 1) * C),
    ]);
  }
}

describe('createBatcher', () => {
  it('assembles the sampler batches, uint8 and float32 (/255), with a smaller last batch', () => {
    const { train } = splitDataset(dataset, { seed: 1 });
    for (const format of ['uint8', 'float32'] as const) {
      const sampler = new EpochSampler({ indices: train, batchSize: 16, seed: 2 });
      const reference = new EpochSampler({ indices: train, batchSize: 16, seed: 2 });
      const batcher = createBatcher(dataset, { sampler, format });
      const sizes: number[] = [];
      for (let i = 0; i < sampler.batchesPerEpoch; i++) {
        const batch = batcher.next();
        expect(batch.images).toBeInstanceOf(format === 'uint8' ? Uint8Array : Float32Array);
        expect([...batch.indices]).toEqual([...reference.next()]);
        expectBatchMatches(batch, format);
        sizes.push(batch.size);
      }
      expect(sizes.reduce((a, b) => a + b)).toBe(train.length);
      expect(sizes.at(-1)).toBe(train.length % 16 || 16);
    }
    // Exact float conversion: 0 -> 0, 255 -> 1.
    const all = createBatcher(dataset, {
      sampler: new EpochSampler({ indices: [0], batchSize: 1 }),
      format: 'float32',
    }).next();
    expect(Math.min(...all.images)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...all.images)).toBeLessThanOrEqual(1);
  });

  it('reuses its buffers', () => {
    const indices = [0, 1, 2, 3, 4, 5, 6, 7];
    for (const prefetch of [0, 1, 2]) {
      const batcher = createBatcher(dataset, {
        sampler: new EpochSampler({ indices, batchSize: 4 }),
        prefetch,
      });
      const buffers = new Set<unknown>();
      for (let i = 0; i < 10; i++) buffers.add(batcher.next().images);
      // Full batches come straight from one of the prefetch + 1 buffer sets.
      expect(buffers.size).toBe(prefetch + 1);
    }
  });

  it('iterates asynchronously with prefetch, in the same order as next(), until `epochs`', async () => {
    const indices = Array.from({ length: 75 }, (_, i) => i);
    const sync = createBatcher(dataset, { sampler: new EpochSampler({ indices, batchSize: 8, seed: 4 }) });
    const expected: number[][] = [];
    for (let i = 0; i < 20; i++) expected.push([...sync.next().indices]);

    const sampler = new EpochSampler({ indices, batchSize: 8, seed: 4 });
    const batcher = createBatcher(dataset, { sampler, prefetch: 2, epochs: 2 });
    const got: number[][] = [];
    for await (const batch of batcher) {
      expectBatchMatches(batch);
      got.push([...batch.indices]);
      await new Promise((resolve) => setImmediate(resolve)); // let the prefetch run
    }
    expect(got).toEqual(expected);
    expect(sampler.epoch).toBe(1);
  });

  it('keeps an exact state while prefetching', async () => {
    const indices = Array.from({ length: 75 }, (_, i) => i);
    const options = { indices, batchSize: 8, seed: 9 };
    const batcher = createBatcher(dataset, { sampler: new EpochSampler(options), prefetch: 3 });
    const iterator = batcher[Symbol.asyncIterator]();
    for (let i = 0; i < 5; i++) {
      await iterator.next();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const state = JSON.parse(JSON.stringify(batcher.state()));
    const following = [];
    for (let i = 0; i < 6; i++) following.push([...((await iterator.next()).value as Batch).indices]);

    const resumed = createBatcher(dataset, { sampler: new EpochSampler(options) });
    resumed.restore(state);
    expect(Array.from({ length: 6 }, () => [...resumed.next().indices])).toEqual(following);
    // Switching from the iterator to next() drops the prefetched batches without skipping any.
    const next = [...batcher.next().indices];
    const check = new EpochSampler(options);
    check.restore(state);
    for (let i = 0; i < 6; i++) check.next();
    expect(next).toEqual([...check.next()]);
  });

  it('rejects indices outside the dataset and bad options', () => {
    const batcher = createBatcher(dataset, {
      sampler: new EpochSampler({ indices: [0, 500], batchSize: 2 }),
    });
    expect(() => batcher.next()).toThrow(/outside the dataset/);
    const sampler = new EpochSampler({ indices: [0], batchSize: 1 });
    expect(() => createBatcher(dataset, { sampler, format: 'float16' as 'uint8' })).toThrow(DatasetError);
    expect(() => createBatcher(dataset, { sampler, prefetch: -1 })).toThrow(DatasetError);
  });
});

describe('getBatch', () => {
  it('draws distinct images in new buffers, reproducibly with a generator', () => {
    const a = getBatch(dataset, 32, { random: new SeededRandom(3) });
    expect(a.size).toBe(32);
    expect(new Set(a.indices).size).toBe(32);
    expectBatchMatches(a);
    const b = getBatch(dataset, 32, { random: new SeededRandom(3) });
    expect([...b.indices]).toEqual([...a.indices]);
    expect(b.images === a.images).toBe(false);
    expect(getBatch(dataset, 500).size).toBe(75);
    expect(new Set(getBatch(dataset, 500).indices).size).toBe(75);
    expect(getBatch(dataset, 4, { format: 'float32' }).images).toBeInstanceOf(Float32Array);
  });
});
