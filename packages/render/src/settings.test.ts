import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from './defaults.js';
import { RenderError } from './errors.js';
import {
  fingerprint,
  orbitGrid,
  parseObjectFlag,
  parseSceneFile,
  resolveSettings,
  settingsDifferences,
} from './settings.js';

const work = mkdtempSync(path.join(tmpdir(), 'litter-render-settings-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RenderError);
    expect((error as RenderError).code).toBe('scene-file-invalid');
    return (error as RenderError).problems.length > 0
      ? (error as RenderError).problems
      : [(error as Error).message];
  }
  throw new Error('expected a RenderError');
}

describe('parseSceneFile', () => {
  it('names every problem of a bad scene file, with its field and value', () => {
    const bad = {
      scenes: 0,
      views: 2.5,
      width: 'wide',
      engine: 'povray',
      lights: {},
      camera: { pitch: [30, 10], distance: -1, extra: true },
      light: { color: [1, 2, 0] },
      objects: [{ name: 'Mug', probability: 1.5 }, 42],
      distractors: { shapes: ['Teapot'] },
    };
    const problems = problemsOf(() => parseSceneFile(JSON.stringify(bad), 'scene.json'));
    const expected = [
      /^scene\.json: scenes = 0 must be >= 1$/,
      /^scene\.json: views = 2\.5 is not an integer$/,
      /^scene\.json: width = "wide" is not a number$/,
      /^scene\.json: engine = "povray" must be one of cycles, eevee$/,
      /^scene\.json: unknown key "lights"$/,
      /^scene\.json: camera\.pitch: \[30, 10\]: min is greater than max$/,
      /^scene\.json: camera\.distance = -1 /,
      /^scene\.json: camera: unknown key "extra"$/,
      /^scene\.json: light\.color\[1\] = 2 must be <= 1$/,
      /^scene\.json: objects\[0\]\.probability = 1\.5 must be <= 1$/,
      /^scene\.json: objects\[1\] = 42 must be a name/,
      /^scene\.json: distractors\.shapes\[0\] = "Teapot" must be one of Cube, Sphere/,
    ];
    for (const pattern of expected)
      expect(
        problems.some((p) => pattern.test(p)),
        `${pattern}\n${problems.join('\n')}`,
      ).toBe(true);
    expect(problems).toHaveLength(expected.length);
  });

  it('rejects text that is not JSON, and JSON that is not an object', () => {
    expect(problemsOf(() => parseSceneFile('{ "scenes": 2,', 'a.json'))[0]).toMatch(
      /a\.json is not valid JSON/,
    );
    expect(problemsOf(() => parseSceneFile('[1, 2]', 'a.json'))[0]).toMatch(/a\.json must be a JSON object/);
  });

  it('accepts a full scene file', () => {
    const file = {
      scenes: 3,
      views: 6,
      camera: { mode: 'random', pitch: [5, 30], distance: [8, 11], heightJitter: 0.5 },
      light: {
        elevation: [40, 90],
        azimuth: [0, 360],
        energy: [2, 5],
        color: [
          [0.9, 0.9, 0.8],
          [1, 1, 1],
        ],
      },
      materials: { colors: 'random', roughness: [0.2, 0.9], metallic: 0 },
      ground: {
        color: [
          [0.2, 0.2, 0.2],
          [0.5, 0.4, 0.3],
        ],
        texture: 'checker',
      },
      distractors: { count: [0, 2], shapes: ['Cube', 'Cone'] },
      objects: ['Cube', { name: 'Pole', shape: 'Bottle', probability: 0.5 }],
    };
    expect(parseSceneFile(JSON.stringify(file)).camera?.mode).toBe('random');
  });
});

describe('resolveSettings', () => {
  it('uses the defaults, then the scene file, then the flags', async () => {
    const defaults = await resolveSettings({ cwd: work });
    expect(defaults.objects.map((o) => o.name)).toEqual([...DEFAULTS.objects]);
    expect(defaults.camera.grid).toEqual([5, 5]);
    const file = path.join(work, 'scene.json');
    writeFileSync(file, JSON.stringify({ scenes: 4, samples: 3, seed: 9 }));
    const settings = await resolveSettings({ sceneFile: file, flags: { seed: 5, views: 4 }, cwd: work });
    expect([settings.scenes, settings.samples, settings.seed, settings.views]).toEqual([4, 3, 5, 4]);
    expect(settings.camera.grid).toEqual([2, 2]);
  });

  it('names problems the schema cannot see: unknown shapes, missing meshes, duplicates, .blend without object', async () => {
    writeFileSync(path.join(work, 'thing.blend'), 'not really');
    const error = await resolveSettings({
      cwd: work,
      flags: { objects: ['Cube', 'Cubee', 'Mug=mug.obj', 'Cube', 'Chair=thing.blend', 'Rock=rock.fbx'] },
    }).catch((e: unknown) => e as RenderError);
    expect(error).toBeInstanceOf(RenderError);
    expect((error as RenderError).code).toBe('options-invalid');
    const problems = (error as RenderError).problems.join('\n');
    expect(problems).toMatch(/--objects\[1\] \(Cubee\): "Cubee" is not a built-in shape/);
    expect(problems).toMatch(/--objects\[2\] \(Mug\): mesh .*mug\.obj does not exist/);
    expect(problems).toMatch(/--objects\[3\]: class "Cube" is listed twice \(also \[0\]\)/);
    expect(problems).toMatch(/--objects\[4\] \(Chair\): a \.blend mesh needs "object"/);
    expect(problems).toMatch(/--objects\[5\] \(Rock\): mesh rock\.fbx is not a \.obj/);
  });

  it('fingerprints what decides the output: mesh contents, not their paths', async () => {
    mkdtempSync(path.join(work, 'a-'));
    const a = path.join(work, 'a.obj');
    const b = path.join(work, 'sub-b.obj');
    writeFileSync(a, 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n');
    writeFileSync(b, 'v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n');
    const one = await resolveSettings({ cwd: work, flags: { objects: ['M=a.obj'] } });
    const moved = await resolveSettings({ cwd: work, flags: { objects: ['M=sub-b.obj'] } });
    expect(fingerprint({ ...one, objects: one.objects.map((o) => ({ ...o, path: '/x/a.obj' })) })).toBe(
      fingerprint({ ...one, objects: one.objects.map((o) => ({ ...o, path: '/y/a.obj' })) }),
    );
    writeFileSync(b, 'v 0 0 0\nv 2 0 0\nv 0 1 0\nf 1 2 3\n');
    const changed = await resolveSettings({ cwd: work, flags: { objects: ['M=sub-b.obj'] } });
    expect(fingerprint(moved)).not.toBe(fingerprint(changed));
    const other = await resolveSettings({ cwd: work, flags: { samples: 4 } });
    const base = await resolveSettings({ cwd: work });
    expect(settingsDifferences(base, other)).toEqual(['samples: 8 vs 4']);
  });
});

describe('helpers', () => {
  it('orbitGrid splits views into yaw x pitch steps', () => {
    expect([121, 25, 4, 6, 7, 1].map(orbitGrid)).toEqual([
      [11, 11],
      [5, 5],
      [2, 2],
      [3, 2],
      [7, 1],
      [1, 1],
    ]);
  });

  it('parseObjectFlag reads names, mesh files and .blend objects', () => {
    expect(parseObjectFlag('Cube')).toBe('Cube');
    expect(parseObjectFlag('Mug=meshes/mug.glb')).toEqual({ name: 'Mug', mesh: 'meshes/mug.glb' });
    expect(parseObjectFlag('Chair=props.blend:Chair.001')).toEqual({
      name: 'Chair',
      mesh: 'props.blend',
      object: 'Chair.001',
    });
  });
});
