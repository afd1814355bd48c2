import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtOf, builtSources, staleSources } from '../../../test/built.js';

const relative = (file: string) => path.relative(path.resolve(import.meta.dirname, '../..'), file);

describe('the build check before tests that start workers or child processes', () => {
  it('covers every source they run: the workers, their loss, model, kernels and PNG decoder, the children', () => {
    const sources = builtSources().map(relative);
    for (const file of [
      'trainer/src/parallel/worker.ts',
      'trainer/src/parallel/_adam.ts',
      'trainer/src/_loss.ts',
      'model/src/index.ts',
      'model/src/_training-kernels.ts',
      'model-lite/src/index.ts',
      'dataset/src/_decode-worker.ts',
      'dataset/src/_image-file.ts',
      'dataset/src/_png.ts',
      'dataset/src/_crc32.ts',
      'dataset/test/_write-cache-child.mjs',
      'dataset/src/_cache.ts',
      'cli/src/bin.ts',
      'cli/src/commands/train.ts',
      'report/src/index.ts',
    ]) {
      expect(sources).toContain(file);
    }
    expect(sources.filter((file) => file.endsWith('.test.ts'))).toEqual([]);
  });

  const dir = mkdtempSync(path.join(tmpdir(), 'litter-build-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('calls a source stale when its build is missing or older', () => {
    const file = (name: string, seconds: number) => {
      const full = path.join(dir, name);
      writeFileSync(full, '');
      utimesSync(full, seconds, seconds);
      return full;
    };
    const fresh = file('fresh.ts', 1000);
    file('fresh.js', 2000);
    const edited = file('edited.ts', 3000);
    file('edited.js', 2000);
    const unbuilt = file('unbuilt.ts', 1000);
    const built = (source: string) => source.replace(/\.ts$/, '.js');
    expect(staleSources([fresh, edited, unbuilt], built)).toEqual([edited, unbuilt]);
    expect(builtOf(path.join('p', 'src', 'parallel', 'worker.ts'))).toBe(
      path.join('p', 'dist', 'parallel', 'worker.js'),
    );
  });
});
