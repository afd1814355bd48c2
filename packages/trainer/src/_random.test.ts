import { SeededRandom } from '@litter/dataset';
import { describe, expect, it } from 'vitest';
import { restoreRandom, runRandom, saveRandom } from './_random.js';

describe('the run generator in checkpoints', () => {
  it('saves and restores SeededRandom exactly (version 2)', () => {
    const random = runRandom(3);
    random.next();
    const saved = JSON.parse(JSON.stringify(saveRandom(random)));
    expect(saved).toMatchObject({ version: 2, algorithm: 'xoshiro128**' });
    const restored = restoreRandom(saved);
    expect([restored.next(), restored.next()]).toEqual([random.next(), random.next()]);
  });

  it('resumes a checkpoint written before (mulberry32, version 1) with SeededRandom seeded from it', () => {
    const restored = restoreRandom({ algorithm: 'mulberry32', state: 2775555469 });
    const expected = new SeededRandom(2775555469);
    expect([restored.next(), restored.next()]).toEqual([expected.next(), expected.next()]);
  });

  it('rejects a state of no known version', () => {
    expect(() => restoreRandom({ algorithm: 'other' } as never)).toThrow(
      expect.objectContaining({ code: 'checkpoint-corrupt' }),
    );
  });
});
