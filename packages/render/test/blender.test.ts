import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseLabels } from '@litter/dataset';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RenderError } from '../src/errors.js';
import type { SceneRecord } from '../src/labels.js';
import { mergeRenders } from '../src/merge.js';
import { type RenderViewEvent, render } from '../src/render.js';
import { fingerprint, type RenderSettings, resolveSettings } from '../src/settings.js';
import { TINY, testBlender } from './_blender.js';

// Real Blender on tiny renders. Skipped (with a message) where no Blender is installed.
const blender = await testBlender('@litter/render Blender tests');
const work = mkdtempSync(path.join(tmpdir(), 'litter-render-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const read = (dir: string, file: string) => readFileSync(path.join(dir, file));
const pngs = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.png'))
    .sort();
const recordOf = (dir: string, scene: number): SceneRecord =>
  JSON.parse(read(dir, `.litter-render/scenes/${String(scene).padStart(6, '0')}.json`).toString());

type Vec = [number, number, number];
const sub = (a: Vec, b: Vec): Vec => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Vec, b: Vec) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: Vec, b: Vec): Vec => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
const unit = (a: Vec): Vec => {
  const n = Math.hypot(...a);
  return [a[0] / n, a[1] / n, a[2] / n];
};

/**
 * A pinhole camera written from Blender's documented defaults, independent of the script: lens 50 mm on a
 * 36 mm sensor fitted to the image width, aimed by a Track To constraint (-Z at the target, Y up).
 */
function project(camera: Vec, target: Vec, width: number, height: number, point: Vec): [number, number] {
  const forward = unit(sub(target, camera));
  const right = unit(cross(forward, [0, 0, 1]));
  const up = cross(right, forward);
  const d = sub(point, camera);
  const scale = 50 / 36;
  const depth = dot(d, forward);
  return [0.5 + (scale * dot(d, right)) / depth, 0.5 + (scale * (width / height) * dot(d, up)) / depth];
}

describe.skipIf(!blender)('litter render with Blender', () => {
  let reference: string;
  let settings: RenderSettings;
  const events: { kind: string; event: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    settings = await resolveSettings({ flags: TINY });
    reference = path.join(work, 'reference');
    const log = (kind: string) => (event: object) => events.push({ kind, event: { ...event } });
    await render({
      out: reference,
      settings,
      workers: 2,
      blender: blender!,
      callbacks: { onBegin: log('begin'), onView: log('view'), onScene: log('scene'), onEnd: log('end') },
    });
  });

  it('reports progress: every render with renders/s and an ETA, every finished scene, the end', () => {
    expect(events[0]!.kind).toBe('begin');
    expect(events.at(-1)!.kind).toBe('end');
    expect(events[0]!.event).toMatchObject({ scenes: 2, done: 0, viewsPerScene: 4, renders: 8, workers: 2 });
    const views = events.filter((e) => e.kind === 'view').map((e) => e.event as unknown as RenderViewEvent);
    expect(views.map((v) => v.rendered)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const { rendered, renders, rendersPerSecond, etaSeconds } of views) {
      expect(renders).toBe(8);
      expect(rendersPerSecond).toBeGreaterThan(0);
      expect(etaSeconds).toBeCloseTo((renders - rendered) / rendersPerSecond, 6);
    }
    expect(views.at(-1)!.etaSeconds).toBe(0);
    const scenes = events.filter((e) => e.kind === 'scene').map((e) => e.event);
    expect(scenes.map((e) => e.done)).toEqual([1, 2]);
    expect(events.at(-1)!.event).toMatchObject({ stopped: 'done', scenes: 2, images: 8, rendered: 8 });
  });

  it('boxes a cube placed at a known spot where an independent projection puts it; pixels see occlusion', async () => {
    const file = path.join(work, 'known.json');
    writeFileSync(
      file,
      JSON.stringify({
        scenes: 1,
        views: 1,
        width: 96,
        height: 72,
        samples: 2,
        physics: { enabled: false },
        camera: { pitch: 0 },
        objects: [
          { name: 'Cube', probability: 1, location: [0, 0, 0.8], rotation: [0, 0, 30] },
          // Right behind the cube as the camera sees it: in frame, but mostly hidden.
          { name: 'Sphere', probability: 1, location: [-3, 0.3, 0.8] },
        ],
      }),
    );
    const out = path.join(work, 'known');
    await render({ out, settings: await resolveSettings({ sceneFile: file }), blender: blender! });
    const view = recordOf(out, 0).views[0]!;
    expect(view.camera).toEqual([9, 0, 2]);
    const c = Math.cos(Math.PI / 6);
    const s = Math.sin(Math.PI / 6);
    const corners: Vec[] = [];
    for (const x of [-0.8, 0.8])
      for (const y of [-0.8, 0.8]) for (const z of [0, 1.6]) corners.push([c * x - s * y, s * x + c * y, z]);
    const projected = corners.map((p) => project([9, 0, 2], [0, 0, 0], 96, 72, p));
    const xs = projected.map((p) => p[0]);
    const ys = projected.map((p) => p[1]);
    const expected = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    const cube = view.objects.Cube!;
    for (const [i, v] of cube.projection!.entries()) expect(v).toBeCloseTo(expected[i]!, 4);
    // The pixels it covers: the same box within a pixel.
    for (const [i, v] of cube.pixelBox!.entries()) {
      expect(Math.abs(v - expected[i]!) * (i % 2 === 0 ? 96 : 72)).toBeLessThan(1.01);
    }
    const sphere = view.objects.Sphere!;
    const [x1, y1, x2, y2] = sphere.projection!;
    const projectedPixels = (x2 - x1) * 96 * (y2 - y1) * 72 * (Math.PI / 4);
    expect(sphere.pixels).toBeLessThan(projectedPixels * 0.5);
    const labels = JSON.parse(read(out, 'labels.json').toString());
    expect(Object.keys(labels[0].meshes)).toContain('Cube');
  });

  it('writes labels.json that @litter/dataset reads, with the names and classes asked for', () => {
    const entries = parseLabels(read(reference, 'labels.json').toString());
    expect(entries.map((e) => e.image)).toEqual([
      '0-0y-0p.png',
      '0-0y-1p.png',
      '0-1y-0p.png',
      '0-1y-1p.png',
      '1-0y-0p.png',
      '1-0y-1p.png',
      '1-1y-0p.png',
      '1-1y-1p.png',
    ]);
    expect(pngs(reference)).toEqual(entries.map((e) => e.image).sort());
    const classes = new Set(entries.flatMap((e) => Object.keys(e.meshes)));
    for (const name of classes) expect(TINY.objects).toContain(name);
    expect(classes.size).toBeGreaterThan(0);
  });

  it('is deterministic: another worker count gives the same labels.json and the same PNG bytes', async () => {
    const again = path.join(work, 'again');
    await render({ out: again, settings, workers: 1, blender: blender! });
    expect(read(again, 'labels.json').equals(read(reference, 'labels.json'))).toBe(true);
    for (const png of pngs(reference)) expect(read(again, png).equals(read(reference, png)), png).toBe(true);
  });

  it('shards 1/2 and 2/2, merged, equal the unsharded render; merge refuses other settings and overlaps', async () => {
    const parts = [1, 2].map((index) => path.join(work, `part-${index}`));
    for (const [i, part] of parts.entries()) {
      await render({ out: part, settings, shard: { index: i + 1, count: 2 }, workers: 1, blender: blender! });
    }
    expect(pngs(parts[0]!).every((f) => f.startsWith('0-'))).toBe(true);
    const merged = path.join(work, 'merged');
    const result = await mergeRenders(merged, parts);
    expect(result).toMatchObject({ scenes: 2, images: 8 });
    expect(read(merged, 'labels.json').equals(read(reference, 'labels.json'))).toBe(true);
    for (const png of pngs(reference)) expect(read(merged, png).equals(read(reference, png)), png).toBe(true);

    // A part of other settings (samples 3): refused, naming the difference.
    const other = path.join(work, 'other');
    cpSync(parts[1]!, other, { recursive: true });
    const state = JSON.parse(read(other, '.litter-render/render.json').toString());
    state.settings.samples = 3;
    state.fingerprint = fingerprint(state.settings);
    writeFileSync(path.join(other, '.litter-render/render.json'), JSON.stringify(state));
    const refused = await mergeRenders(path.join(work, 'm2'), [parts[0]!, other]).catch(
      (e: unknown) => e as RenderError,
    );
    expect(refused).toBeInstanceOf(RenderError);
    expect(refused).toMatchObject({ code: 'merge-invalid' });
    expect((refused as RenderError).problems.join('\n')).toMatch(/other settings .*samples: 2 vs 3/);
    await expect(mergeRenders(path.join(work, 'm3'), [parts[0]!, parts[0]!])).rejects.toThrow(
      /scene 0 is in both/,
    );
    await expect(mergeRenders(path.join(work, 'm4'), [parts[0]!])).rejects.toThrow(
      /scenes 1 are in none of the parts \(shards 2 of 2/,
    );
  });

  it('refuses to render into a folder with other files, or over a render without resume', async () => {
    await expect(render({ out: reference, settings, blender: blender! })).rejects.toMatchObject({
      code: 'out-dir',
    });
    await expect(
      render({ out: path.join(work, 'nothing'), resume: true, blender: blender! }),
    ).rejects.toThrow(/holds no render to resume/);
    const changed = { ...settings, seed: 8 };
    await expect(
      render({ out: reference, settings: changed, resume: true, blender: blender! }),
    ).rejects.toThrow(/seed: 7 vs 8/);
  });
});
