import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeImage } from '@litter/dataset';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RenderError } from '../src/errors.js';
import type { EnvironmentRecord, SceneRecord } from '../src/labels.js';
import { render } from '../src/render.js';
import { resolveSettings } from '../src/settings.js';
import { testBlender } from './_blender.js';

// The scene options with real Blender, on renders of 32x24: meshes from files (.obj, .stl, .glb, a .blend's
// object), each kind of domain randomisation against the defaults, random camera poses against the orbit
// grid, Eevee, and --device gpu where Cycles has no GPU. Skipped (with a message) where no Blender is installed.
const blender = await testBlender('@litter/render scene option tests');
const work = mkdtempSync(path.join(tmpdir(), 'litter-render-options-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Vec = [number, number, number];
const recordOf = (dir: string, scene: number): SceneRecord =>
  JSON.parse(
    readFileSync(path.join(dir, `.litter-render/scenes/${String(scene).padStart(6, '0')}.json`), 'utf8'),
  );
const environmentOf = (dir: string, scene: number): EnvironmentRecord => recordOf(dir, scene).environment!;
const within = (value: number, [low, high]: [number, number]) => {
  expect(value).toBeGreaterThanOrEqual(low - 1e-6);
  expect(value).toBeLessThanOrEqual(high + 1e-6);
};
const degrees = (radians: number) => (radians * 180) / Math.PI;

/** Renders a scene file (written from `scene`) into `work/name` with one Blender process. */
async function renderScene(name: string, scene: object): Promise<string> {
  const file = path.join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify(scene));
  const out = path.join(work, name);
  await render({ out, settings: await resolveSettings({ sceneFile: file }), workers: 1, blender: blender! });
  return out;
}

/** Mean [r, g, b] (0-255) of the image's rows from `from` (inclusive) to `to` (exclusive). */
async function meanColour(file: string, from: number, to: number, width = 32): Promise<Vec> {
  const pixels = await decodeImage(file);
  const sum = [0, 0, 0];
  for (let row = from; row < to; row++) {
    for (let col = 0; col < width; col++)
      for (let c = 0; c < 3; c++) sum[c]! += pixels[(row * width + col) * 3 + c]!;
  }
  const n = (to - from) * width;
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}

/** A 2x2 24-bit BMP of one colour (Blender reads BMP; no encoder needed). */
function solidBmp(file: string, [r, g, b]: Vec): void {
  const row = Buffer.from([b, g, r, b, g, r, 0, 0]); // two BGR pixels, padded to 4 bytes
  const header = Buffer.alloc(54);
  header.write('BM', 0);
  header.writeUInt32LE(54 + 2 * row.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(2, 18);
  header.writeInt32LE(2, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  header.writeUInt32LE(2 * row.length, 34);
  writeFileSync(file, Buffer.concat([header, row, row]));
}

/** The base of the comparisons: one cube at the origin, no physics, the camera level with the ground. */
const BASE = {
  scenes: 2,
  views: 2,
  width: 32,
  height: 24,
  samples: 2,
  physics: { enabled: false },
  camera: { pitch: 0 },
  objects: [{ name: 'Cube', probability: 1, location: [0, 0, 0.8] }],
};

describe.skipIf(!blender)('meshes from files', () => {
  beforeAll(async () => {
    // A .blend with two objects and a .glb of one of them, made by Blender itself.
    const script = [
      'import bpy',
      'for ob in list(bpy.data.objects): bpy.data.objects.remove(ob, do_unlink=True)',
      "bpy.ops.mesh.primitive_cube_add(size=2); bpy.context.active_object.name = 'Widget'",
      "bpy.ops.mesh.primitive_uv_sphere_add(radius=1, location=(5, 0, 0)); bpy.context.active_object.name = 'Other'",
      `bpy.ops.wm.save_as_mainfile(filepath=${JSON.stringify(path.join(work, 'props.blend'))})`,
      "bpy.ops.object.select_all(action='DESELECT'); bpy.data.objects['Widget'].select_set(True)",
      `bpy.ops.export_scene.gltf(filepath=${JSON.stringify(path.join(work, 'widget.glb'))}, export_format='GLB', use_selection=True)`,
    ].join('\n');
    await new Promise<void>((resolve, reject) =>
      execFile(
        blender!.path,
        ['-b', '--factory-startup', '--python-exit-code', '1', '--python-expr', script],
        (error, _stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve()),
      ),
    );
    // A unit cube (corners 0/1) as .obj and ASCII .stl, faces wound outward.
    const corner = (i: number): Vec => [i & 1, (i >> 1) & 1, (i >> 2) & 1];
    const quads = [
      [0, 2, 3, 1],
      [4, 5, 7, 6],
      [0, 1, 5, 4],
      [2, 6, 7, 3],
      [0, 4, 6, 2],
      [1, 3, 7, 5],
    ];
    const obj = [
      ...Array.from({ length: 8 }, (_, i) => `v ${corner(i).join(' ')}`),
      ...quads.map((q) => `f ${q.map((i) => i + 1).join(' ')}`),
    ];
    writeFileSync(path.join(work, 'box.obj'), `${obj.join('\n')}\n`);
    const facets = quads.flatMap((q) => [
      [q[0]!, q[1]!, q[2]!],
      [q[0]!, q[2]!, q[3]!],
    ]);
    const stl = facets.map(
      (t) =>
        `facet normal 0 0 0\nouter loop\n${t.map((i) => `vertex ${corner(i).join(' ')}`).join('\n')}\nendloop\nendfacet`,
    );
    writeFileSync(path.join(work, 'box.stl'), `solid box\n${stl.join('\n')}\nendsolid box\n`);
  });

  it('imports .obj, .stl, .glb and an object of a .blend, scales each to 1.6 and drops it onto the ground', async () => {
    const spots: Vec[] = [
      [-3, -3, 3],
      [3, -3, 3],
      [-3, 3, 3],
      [3, 3, 3],
    ];
    const files = [
      { name: 'FromObj', mesh: 'box.obj' },
      { name: 'FromStl', mesh: 'box.stl' },
      { name: 'FromGlb', mesh: 'widget.glb' },
      { name: 'FromBlend', mesh: 'props.blend', object: 'Widget' },
    ];
    const out = await renderScene('meshes', {
      scenes: 1,
      views: 1,
      width: 32,
      height: 24,
      samples: 1,
      camera: { distance: 14, pitch: 30 },
      objects: files.map((f, i) => ({ ...f, probability: 1, location: spots[i], rotation: [0, 0, 0] })),
    });
    const record = recordOf(out, 0);
    expect(record.placements.map((p) => p.name)).toEqual(files.map((f) => f.name));
    // Each fell straight down from where it was put and rests on a face: centre at half of 1.6.
    for (const [i, p] of record.placements.entries()) {
      expect(Math.abs(p.location[0]! - spots[i]![0])).toBeLessThan(0.3);
      expect(Math.abs(p.location[1]! - spots[i]![1])).toBeLessThan(0.3);
      expect(p.location[2]).toBeCloseTo(0.8, 1);
    }
    // Only the .blend's object named was taken (its sphere would be a fifth mesh joined in): every view
    // sees all four, and the labels have the four class names only.
    const labels = JSON.parse(readFileSync(path.join(out, 'labels.json'), 'utf8'));
    expect(Object.keys(labels[0].meshes).sort()).toEqual(files.map((f) => f.name).sort());
  });

  it('names the objects a .blend has when the one asked for is not there', async () => {
    const failed = await renderScene('no-object', {
      ...BASE,
      scenes: 1,
      views: 1,
      objects: [{ name: 'Chair', mesh: 'props.blend', object: 'Chair', probability: 1 }],
    }).catch((e: unknown) => e as RenderError);
    expect(failed).toMatchObject({ code: 'blender-failed' });
    expect((failed as Error).message).toMatch(/props\.blend has no object "Chair" \(it has: .*Widget/);
    expect((failed as Error).message).toMatch(/Other/);
  });
});

describe.skipIf(!blender)('domain randomisation and camera poses', () => {
  let plain: string;
  let randomised: string;
  const light = {
    elevation: [20, 70] as [number, number],
    azimuth: [0, 360],
    energy: [1, 6] as [number, number],
  };

  beforeAll(async () => {
    solidBmp(path.join(work, 'blue.bmp'), [20, 40, 230]);
    plain = await renderScene('plain', BASE);
    randomised = await renderScene('randomised', {
      ...BASE,
      views: 3,
      physics: { enabled: true },
      camera: { mode: 'random', pitch: 0, distance: 9, distanceJitter: 0.5, height: 2, heightJitter: 0.3 },
      light: {
        ...light,
        color: [
          [0.5, 0.4, 0.3],
          [1, 1, 1],
        ],
      },
      world: { strength: [0.2, 0.9] },
      materials: { colors: 'random', roughness: [0.2, 0.9], metallic: [0, 0.5] },
      ground: {
        color: [
          [0, 0.5, 0],
          [0.2, 1, 0.2],
        ],
        texture: 'blue.bmp',
      },
      distractors: { count: [2, 2], shapes: ['Sphere', 'Cone'], scale: [0.3, 0.5] },
    });
  });

  it('the defaults are the look of render_scenes.py: a white sun from above, palette colours, a brown ground', async () => {
    for (const scene of [0, 1]) {
      const env = environmentOf(plain, scene);
      expect(env.light).toEqual({ direction: [0, 0, -1], energy: 3, color: [1, 1, 1] });
      expect(env.materials.Cube).toEqual({ color: [0.8, 0.1, 0.1], roughness: 0.5, metallic: 0 });
      expect(env.ground).toEqual({ color: [0.35, 0.3, 0.22], texture: null, checker: null });
      expect(env.distractors).toEqual([]);
    }
    const [r, g, b] = await meanColour(path.join(plain, '0-0y-0p.png'), 20, 24);
    expect(r).toBeGreaterThan(g);
    expect(g).toBeGreaterThan(b);
  });

  it('light direction, energy and colour are drawn per scene within their ranges', () => {
    const lights = [0, 1].map((scene) => environmentOf(randomised, scene).light);
    for (const { direction, energy, color } of lights) {
      expect(Math.hypot(...direction)).toBeCloseTo(1, 5);
      within(degrees(Math.asin(-direction[2])), light.elevation);
      within(energy, light.energy);
      for (const [c, value] of color.entries()) within(value, [[0.5, 0.4, 0.3][c]!, 1]);
    }
    expect(lights[0]).not.toEqual(lights[1]);
  });

  it('light energy and colour reach the image: a red sun and no sky light leave green and blue dark', async () => {
    const red = await renderScene('red-light', {
      ...BASE,
      scenes: 1,
      views: 1,
      light: { color: [1, 0, 0], energy: 5 },
      world: { strength: 0 },
      ground: {
        color: [
          [0.1, 0.1, 0.1],
          [0.9, 0.9, 0.9],
        ],
        texture: 'checker',
      },
    });
    const [r, g, b] = await meanColour(path.join(red, '0-0y-0p.png'), 0, 24);
    expect(r).toBeGreaterThan(20);
    expect(g).toBeLessThan(1);
    expect(b).toBeLessThan(1);
    // The checker's two colours are drawn from the ground's colour range.
    const { ground } = environmentOf(red, 0);
    expect(ground.texture).toBe('checker');
    expect(ground.checker![0]).not.toEqual(ground.checker![1]);
    for (const colour of ground.checker!) for (const value of colour) within(value, [0.1, 0.9]);
  });

  it('object colours and materials: random colours, roughness and metallic per scene', () => {
    const surfaces = [0, 1].map((scene) => environmentOf(randomised, scene).materials.Cube!);
    for (const { color, roughness, metallic } of surfaces) {
      expect(color).not.toEqual([0.8, 0.1, 0.1]);
      within(roughness, [0.2, 0.9]);
      within(metallic, [0, 0.5]);
    }
    expect(surfaces[0]!.color).not.toEqual(surfaces[1]!.color);
  });

  it('ground colour and image texture: the image (blue) is what the ground shows', async () => {
    for (const scene of [0, 1]) {
      const { ground } = environmentOf(randomised, scene);
      expect(ground.texture).toBe(path.join(work, 'blue.bmp'));
      within(ground.color[1], [0.5, 1]);
    }
    const [r, g, b] = await meanColour(path.join(randomised, '0-0v.png'), 20, 24);
    expect(b).toBeGreaterThan(r + 20);
    expect(b).toBeGreaterThan(g + 10);
  });

  it('distractors: the count asked for, of the shapes and scales asked for, on the ground, never labelled', () => {
    for (const scene of [0, 1]) {
      const { distractors } = environmentOf(randomised, scene);
      expect(distractors).toHaveLength(2);
      for (const d of distractors) {
        expect(['Sphere', 'Cone']).toContain(d.shape);
        within(d.scale, [0.3, 0.5]);
        expect(d.location[2]).toBeLessThan(1); // dropped with physics onto the ground
      }
    }
    const labels = JSON.parse(readFileSync(path.join(randomised, 'labels.json'), 'utf8'));
    const names = labels.flatMap((entry: { meshes: object }) => Object.keys(entry.meshes));
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names)).toEqual(new Set(['Cube']));
  });

  it('the orbit grid puts the camera at its yaw and pitch steps; random poses are drawn per view', () => {
    for (const scene of [0, 1]) {
      // Orbit, 2 views: a 2 x 1 grid, yaws 0 and 180, distance 9, height 2, no jitter.
      const views = recordOf(plain, scene).views;
      expect(views.map((v) => v.image)).toEqual([`${scene}-0y-0p.png`, `${scene}-1y-0p.png`]);
      expect(views[0]!.camera).toEqual([9, 0, 2]);
      expect(views[1]!.camera[0]).toBeCloseTo(-9, 5);
      expect(views[1]!.camera[1]).toBeCloseTo(0, 5);
    }
    const poses = [0, 1].flatMap((scene) => recordOf(randomised, scene).views);
    expect(poses.map((v) => v.image)).toEqual([
      '0-0v.png',
      '0-1v.png',
      '0-2v.png',
      '1-0v.png',
      '1-1v.png',
      '1-2v.png',
    ]);
    for (const { camera } of poses) {
      within(Math.hypot(camera[0], camera[1]), [8.5, 9.5]); // distance 9 +- its jitter (pitch 0)
      within(camera[2], [1.7, 2.3]); // height 2 +- its jitter
    }
    const yaws = poses.map(({ camera }) => degrees(Math.atan2(camera[1], camera[0])));
    expect(new Set(yaws.map((y) => y.toFixed(3))).size).toBe(6);
    expect(new Set(poses.map(({ camera }) => camera[2].toFixed(4))).size).toBe(6);
  });
});

describe.skipIf(!blender)('engines and devices', () => {
  it('Eevee renders headless (surfaceless EGL here); its labels come from the same index pass as Cycles', async () => {
    const scene = { ...BASE, scenes: 1, views: 1 };
    const [eevee, cycles] = [
      await renderScene('eevee', { ...scene, engine: 'eevee' }),
      await renderScene('cycles', scene),
    ];
    const a = recordOf(eevee, 0).views[0]!;
    const b = recordOf(cycles, 0).views[0]!;
    expect(a.objects.Cube!.pixels).toBeGreaterThan(20);
    expect(a.objects).toEqual(b.objects);
    const image = (dir: string) => readFileSync(path.join(dir, '0-0y-0p.png'));
    expect(image(eevee).equals(image(cycles))).toBe(false);
    const [r, g, b2] = await meanColour(path.join(eevee, '0-0y-0p.png'), 0, 24);
    expect(r + g + b2).toBeGreaterThan(30); // lit, not a black frame
  }, 300_000); // Eevee's start-up on software OpenGL: tens of seconds on a busy machine

  it('--device gpu says so cleanly where Cycles has no GPU (and renders where it has one)', async () => {
    const result = await renderScene('gpu', { ...BASE, scenes: 1, views: 1, device: 'gpu' }).catch(
      (e: unknown) => e as RenderError,
    );
    if (typeof result === 'string') {
      expect(recordOf(result, 0).views).toHaveLength(1);
      return;
    }
    expect(result).toMatchObject({ code: 'blender-failed' });
    expect(result.message).toMatch(
      /Blender failed on scene 0: no GPU that Cycles can use \(tried OptiX, CUDA, HIP, Metal, oneAPI\); use --device cpu/,
    );
  });
});
