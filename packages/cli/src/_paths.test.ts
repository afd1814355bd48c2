import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryIo } from '../test/_memory-io.js';
import { datasetPath, defaultRunDir, SAMPLE_NAME, sampleDataset } from './_paths.js';

describe('paths', () => {
  it('finds the bundled sample in the repository', () => {
    const sample = sampleDataset();
    expect(path.basename(sample)).toBe(SAMPLE_NAME);
    expect(existsSync(path.join(sample, 'labels.json'))).toBe(true);
  });

  it('resolves a dataset against the user directory and names a missing one', () => {
    const { io } = memoryIo({ cwd: '/nowhere' });
    expect(() => datasetPath(io, 'data')).toThrow(/^@litter\/cli: dataset \/nowhere\/data does not exist/);
  });

  it('names runs by time under the user directory', () => {
    const { io } = memoryIo({ cwd: '/tmp/litter-nowhere' });
    expect(defaultRunDir(io, new Date('2024-05-01T12:30:05.123Z'))).toBe(
      '/tmp/litter-nowhere/runs/2024-05-01T12-30-05',
    );
  });
});

describe('userCwd', () => {
  it('uses the directory pnpm was started in for `pnpm litter`', async () => {
    const { userCwd } = await import('./_io.js');
    expect(userCwd({ npm_lifecycle_event: 'litter', INIT_CWD: '/home/me/data' }, '/repo')).toBe(
      '/home/me/data',
    );
    expect(userCwd({ npm_lifecycle_event: 'test', INIT_CWD: '/home/me/data' }, '/repo')).toBe('/repo');
    expect(userCwd({}, '/repo')).toBe('/repo');
  });
});
