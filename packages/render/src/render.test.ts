import { describe, expect, it, vi } from 'vitest';
import * as renderPackage from './index.js';
import { defaultWorkers, SCENES_PER_WORKER } from './render.js';
import { resolveSettings } from './settings.js';

// `litter render` loads @litter/render: sharp (through @litter/dataset's index) would cost it about 0.15 s of CPU
// per run for nothing. Importing @litter/dataset's images.ts, the module that loads sharp, fails this file.
vi.mock('../../dataset/src/images.ts', () => {
  throw new Error('@litter/render loaded sharp: import @litter/dataset/atomic, not @litter/dataset');
});

describe('@litter/render', () => {
  it('loads without sharp (only the atomic writes of @litter/dataset)', () => {
    expect(renderPackage.render).toBeTypeOf('function');
    expect(renderPackage.relabel).toBeTypeOf('function');
  });
});

describe('defaultWorkers', () => {
  it('starts one Blender per core only where each gets SCENES_PER_WORKER scenes; one on GPU', async () => {
    const cpu = await resolveSettings({ flags: {} });
    const gpu = { ...cpu, device: 'gpu' as const };
    expect(SCENES_PER_WORKER).toBeGreaterThan(1);
    // Few scenes: one Blender (it gets every core's threads).
    expect(defaultWorkers(cpu, 1, 2)).toBe(1);
    expect(defaultWorkers(cpu, 2 * SCENES_PER_WORKER - 1, 2)).toBe(1);
    expect(defaultWorkers(cpu, 0, 2)).toBe(1);
    // Enough scenes for a second one, and as many as the cores when there are enough for all.
    expect(defaultWorkers(cpu, 2 * SCENES_PER_WORKER, 2)).toBe(2);
    expect(defaultWorkers(cpu, 1000, 2)).toBe(2);
    expect(defaultWorkers(cpu, 3 * SCENES_PER_WORKER, 16)).toBe(3);
    expect(defaultWorkers(cpu, 1000, 16)).toBe(16);
    expect(defaultWorkers(gpu, 1000, 16)).toBe(1);
  });
});
