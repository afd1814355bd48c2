import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findBlender, parseBlenderVersion } from './blender.js';
import { RenderError } from './errors.js';
import { cocoDataset, labelEntries, type SceneRecord } from './labels.js';
import { parseShard, shardFromEnv, shardScenes } from './shard.js';

const work = mkdtempSync(path.join(tmpdir(), 'litter-render-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('shards', () => {
  it('parses I/N and refuses what is not one', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/2', '3/2', '1/0', 'two', '1-2']) {
      expect(() => parseShard(bad)).toThrow(/--shard must be I\/N/);
    }
  });

  it('reads Kubernetes Indexed Jobs and Slurm arrays', () => {
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '0', JOB_COMPLETIONS: '4' })).toMatchObject({
      index: 1,
      count: 4,
    });
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' })).toMatchObject({
      index: 4,
      count: 4,
    });
    // --array=1-4: the ids start at 1.
    expect(
      shardFromEnv({ SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '4' }),
    ).toMatchObject({ index: 1 });
    expect(shardFromEnv({})).toBeUndefined();
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '1' })).toThrow(/JOB_COMPLETIONS is not/);
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '4', JOB_COMPLETIONS: '4' })).toThrow(RenderError);
  });

  it('splits the scenes into disjoint parts that cover them all', () => {
    const parts = [1, 2, 3].map((index) => shardScenes(10, { index, count: 3 }));
    expect(parts).toEqual([
      [0, 3, 6, 9],
      [1, 4, 7],
      [2, 5, 8],
    ]);
    expect(parts.flat().sort((a, b) => a - b)).toEqual(shardScenes(10, undefined));
  });
});

describe('labels from scene records', () => {
  const record: SceneRecord = {
    scene: 1,
    fingerprint: 'x',
    placements: [],
    views: [
      {
        image: '1-0y-0p.png',
        camera: [9, 0, 2],
        objects: {
          Sphere: { projection: [0.5, 0.5, 0.75, 1], pixels: 3, pixelBox: [0.5, 0.5, 0.55, 0.6] },
          Cube: { projection: [0.1, 0.2, 0.3, 0.4000001], pixels: 40, pixelBox: [0.125, 0.25, 0.25, 0.375] },
          Cone: { projection: null, pixels: 0, pixelBox: null },
        },
      },
    ],
  };
  const first: SceneRecord = { ...record, scene: 0, views: [{ ...record.views[0]!, image: '0-0y-0p.png' }] };

  it('projection keeps every object in frame (the seed), pixels only those covering min pixels', () => {
    const projection = labelEntries([record, first], { visibility: 'projection', minPixels: 10 });
    expect(projection.map((e) => e.image)).toEqual(['0-0y-0p.png', '1-0y-0p.png']);
    expect(projection[1]!.meshes).toEqual({
      Cube: { x1: 0.1, x2: 0.3, y1: 0.2, y2: 0.4 },
      Sphere: { x1: 0.5, x2: 0.75, y1: 0.5, y2: 1 },
    });
    const pixels = labelEntries([record], { visibility: 'pixels', minPixels: 10 });
    expect(pixels[0]!.meshes).toEqual({ Cube: { x1: 0.125, x2: 0.25, y1: 0.25, y2: 0.375 } });
    expect(Object.keys(labelEntries([record], { visibility: 'pixels', minPixels: 3 })[0]!.meshes)).toEqual([
      'Cube',
      'Sphere',
    ]);
  });

  it('COCO boxes are pixels from the top-left corner', () => {
    const coco = cocoDataset([record], {
      width: 48,
      height: 36,
      visibility: 'pixels',
      minPixels: 10,
      objects: [{ name: 'Cube' }, { name: 'Sphere' }, { name: 'Cone' }] as never,
    });
    expect(coco.categories.map((c) => [c.id, c.name])).toEqual([
      [1, 'Cube'],
      [2, 'Sphere'],
      [3, 'Cone'],
    ]);
    expect(coco.images).toEqual([{ id: 1, file_name: '1-0y-0p.png', width: 48, height: 36 }]);
    // x1 0.125 * 48 = 6; y2 0.375 from the bottom = 36 - 13.5 = 22.5 from the top; 6 x 4.5 px.
    expect(coco.annotations).toEqual([
      { id: 1, image_id: 1, category_id: 1, bbox: [6, 22.5, 6, 4.5], area: 40, iscrowd: 0 },
    ]);
  });
});

describe('findBlender', () => {
  const fake = (name: string, version: string) => {
    const file = path.join(work, name);
    writeFileSync(file, `#!/bin/sh\necho "Blender ${version}"\necho "	build date: 2023"\n`);
    chmodSync(file, 0o755);
    return file;
  };

  it('parses versions', () => {
    expect(parseBlenderVersion('Blender 3.4.1\n\tbuild date')).toEqual([3, 4, 1]);
    expect(parseBlenderVersion('Blender 4.2')).toEqual([4, 2, 0]);
    expect(parseBlenderVersion('nope')).toBeUndefined();
  });

  it('takes --blender over LITTER_BLENDER over PATH, and checks the version', async () => {
    const new_ = fake('blender-new', '4.2.1');
    const env = { PATH: work, LITTER_BLENDER: fake('blender-env', '3.6.0') };
    expect(await findBlender({ blender: new_, env })).toMatchObject({
      version: '4.2.1',
      source: 'option',
      tested: false,
    });
    expect(await findBlender({ env })).toMatchObject({ version: '3.6.0', source: 'LITTER_BLENDER' });
    fake('blender', '3.4.1');
    expect(await findBlender({ env: { PATH: work } })).toMatchObject({
      version: '3.4.1',
      source: 'PATH',
      tested: true,
    });
  });

  it('asks a replaced Blender for its version again', async () => {
    const file = fake('blender-replaced', '3.4.1');
    expect((await findBlender({ blender: file, env: {} })).version).toBe('3.4.1');
    expect((await findBlender({ blender: file, env: {} })).version).toBe('3.4.1');
    fake('blender-replaced', '4.10.12');
    expect((await findBlender({ blender: file, env: {} })).version).toBe('4.10.12');
  });

  it('says how to install Blender when it is missing, too old or too new', async () => {
    const missing = await findBlender({ env: { PATH: path.join(work, 'none') } }).catch(
      (e: unknown) => e as RenderError,
    );
    expect(missing).toMatchObject({ code: 'blender-not-found' });
    expect((missing as Error).message).toMatch(
      /not found on PATH\. Install Blender 3\.3 or newer .*--blender PATH/,
    );
    const old = await findBlender({ blender: fake('blender-old', '2.79'), env: {} }).catch(
      (e: unknown) => e as RenderError,
    );
    expect(old).toMatchObject({ code: 'blender-unsupported' });
    expect((old as Error).message).toMatch(
      /is Blender 2\.79\.0; litter render needs 3\.3 or newer\. Install/,
    );
    const newer = await findBlender({ blender: fake('blender-5', '5.0.1'), env: {} }).catch(
      (e: unknown) => e as RenderError,
    );
    expect(newer).toMatchObject({ code: 'blender-unsupported' });
    expect((newer as Error).message).toMatch(
      /is Blender 5\.0\.1; litter render supports 3\.3 to 4\.x .*--blender PATH/,
    );
    expect(await findBlender({ blender: fake('blender-45', '4.5.3'), env: {} })).toMatchObject({
      version: '4.5.3',
    });
    await expect(findBlender({ blender: path.join(work, 'nothing'), env: {} })).rejects.toThrow(
      /--blender .* is not an executable file/,
    );
  });
});
