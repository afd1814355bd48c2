import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULTS } from './defaults.js';
import { problemsError, RenderError } from './errors.js';

/** The built-in shapes (those of shared/tools/render_scenes.py, same sizes). */
export const PRIMITIVES = ['Cube', 'Sphere', 'Can', 'Cone', 'Torus', 'Bottle'] as const;
export type Primitive = (typeof PRIMITIVES)[number];
/** Mesh files by extension. */
export const MESH_FORMATS = {
  '.obj': 'obj',
  '.glb': 'gltf',
  '.gltf': 'gltf',
  '.stl': 'stl',
  '.blend': 'blend',
} as const;
export type MeshFormat = (typeof MESH_FORMATS)[keyof typeof MESH_FORMATS];

export type Range = [number, number];
export type Rgb = [number, number, number];
export type Vec3 = [number, number, number];

/** How an object counts as in view: the seed's projection of its whole mesh, or the pixels it covers. */
export type Visibility = 'projection' | 'pixels';

interface ObjectCommon {
  /** The class name in labels.json. */
  name: string;
  /** Chance that the object is in a scene. */
  probability: number;
  /** Its colour; null: the palette's colour for its position (or random with materials.colors = random). */
  color: Rgb | null;
  /** A fixed place (Blender units) instead of a random drop; with physics false it stays there. */
  location: Vec3 | null;
  /** A fixed rotation in degrees (XYZ Euler). */
  rotation: Vec3 | null;
  /** Whether a fixed object takes part in the physics (falls); objects without a location always do. */
  physics: boolean;
}
export interface PrimitiveObject extends ObjectCommon {
  kind: 'primitive';
  shape: Primitive;
}
export interface FileObject extends ObjectCommon {
  kind: 'file';
  /** Absolute path of the mesh file. */
  path: string;
  format: MeshFormat;
  /** The object to take from a .blend file. */
  object: string | null;
  /** The largest dimension after scaling (Blender units); null keeps the file's size. */
  size: number | null;
  /** Keep the file's own materials instead of one coloured material. */
  keepMaterials: boolean;
  /** sha256 of the file: the fingerprint follows the mesh, not its path. */
  sha256: string;
}
export type ObjectSpec = PrimitiveObject | FileObject;

/**
 * Everything that decides what `litter render` produces, resolved: the scene file's values over the defaults,
 * the flags over both. Equal settings (fingerprint) give equal labels.json.
 */
export interface RenderSettings {
  scenes: number;
  views: number;
  width: number;
  height: number;
  samples: number;
  seed: number;
  engine: 'cycles' | 'eevee';
  device: 'cpu' | 'gpu';
  /** Prepended to the scene number in image names (`a3-0y-0p.png`), to join datasets. */
  prefix: string;
  visibility: Visibility;
  /** Pixels an object must cover to be in view (visibility 'pixels'). */
  minPixels: number;
  /** Also write coco.json. */
  coco: boolean;
  camera: {
    /** orbit: a grid of yaw x pitch around the target; random: random yaw and pitch per view. */
    mode: 'orbit' | 'random';
    /** [yaw steps, pitch steps] of the orbit; their product is `views`. */
    grid: [number, number];
    /** Elevation of the camera above the height, in degrees. */
    pitch: Range;
    distance: Range;
    height: number;
    distanceJitter: number;
    heightJitter: number;
    lens: number;
    target: Vec3;
  };
  objects: ObjectSpec[];
  physics: { enabled: boolean; frames: number; spawn: number; dropHeight: Range };
  light: { elevation: Range; azimuth: Range; energy: Range; color: [Rgb, Rgb] };
  world: { strength: Range; color: [Rgb, Rgb] | null };
  materials: { colors: 'palette' | 'random'; roughness: Range | null; metallic: Range | null };
  ground: {
    color: [Rgb, Rgb];
    /** null, 'checker' (two colours from `color`), or the absolute path of an image. */
    texture: string | null;
    textureScale: number;
    size: number;
    textureSha256: string | null;
  };
  distractors: { count: [number, number]; shapes: Primitive[]; scale: Range };
}

// ------------------------------------------------------------------------------------------- the scene file

const positive = z.number().positive();
const count = z.number().int().min(1);
const finite = z.number();
const unit = z.number().min(0).max(1);

/** A number or [min, max]. */
function rangeOf(item: z.ZodNumber) {
  return z.union([item, z.tuple([item, item])], { error: 'must be a number or [min, max]' }).check((ctx) => {
    const value = ctx.value;
    if (Array.isArray(value) && value[0] > value[1]) {
      ctx.issues.push({
        code: 'custom',
        input: value,
        message: `[${value[0]}, ${value[1]}]: min is greater than max`,
      });
    }
  });
}
const rgb = z.tuple([unit, unit, unit], { error: 'must be [r, g, b] with values in [0, 1]' });
const colourRange = z.union([rgb, z.tuple([rgb, rgb])], {
  error: 'must be [r, g, b] or [[r, g, b], [r, g, b]] (a range), values in [0, 1]',
});
const vec3 = z.tuple([finite, finite, finite], { error: 'must be [x, y, z]' });
const primitive = z.enum(PRIMITIVES);

const objectSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({
      name: z.string().min(1),
      shape: primitive.optional(),
      mesh: z.string().min(1).optional(),
      object: z.string().min(1).optional(),
      probability: unit.optional(),
      size: positive.nullable().optional(),
      color: rgb.optional(),
      keepMaterials: z.boolean().optional(),
      location: vec3.optional(),
      rotation: vec3.optional(),
      physics: z.boolean().optional(),
    }),
  ],
  { error: 'must be a name ("Cube") or an object { "name", "mesh"?, "shape"?, ... }' },
);

/** The JSON scene file: every key optional, unknown keys rejected. */
export const sceneFileSchema = z.strictObject({
  scenes: count.optional(),
  views: count.optional(),
  width: z.number().int().min(8).max(16384).optional(),
  height: z.number().int().min(8).max(16384).optional(),
  samples: count.optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional(),
  engine: z.enum(['cycles', 'eevee']).optional(),
  device: z.enum(['cpu', 'gpu']).optional(),
  prefix: z
    .string()
    .regex(/^[^-/\\]*$/, 'must not contain "-", "/" or "\\"')
    .optional(),
  visibility: z.enum(['projection', 'pixels']).optional(),
  minPixels: z.number().int().min(1).optional(),
  coco: z.boolean().optional(),
  probability: unit.optional(),
  objects: z.array(objectSchema).min(1).optional(),
  camera: z
    .strictObject({
      mode: z.enum(['orbit', 'random']).optional(),
      grid: z.tuple([count, count]).optional(),
      pitch: rangeOf(z.number().min(-89).max(89)).optional(),
      distance: rangeOf(positive).optional(),
      height: finite.optional(),
      distanceJitter: z.number().min(0).optional(),
      heightJitter: z.number().min(0).optional(),
      lens: positive.optional(),
      target: vec3.optional(),
    })
    .optional(),
  physics: z
    .strictObject({
      enabled: z.boolean().optional(),
      frames: count.optional(),
      spawn: positive.optional(),
      dropHeight: rangeOf(positive).optional(),
    })
    .optional(),
  light: z
    .strictObject({
      elevation: rangeOf(z.number().min(0).max(90)).optional(),
      azimuth: rangeOf(z.number().min(-360).max(360)).optional(),
      energy: rangeOf(z.number().min(0)).optional(),
      color: colourRange.optional(),
    })
    .optional(),
  world: z
    .strictObject({ strength: rangeOf(z.number().min(0)).optional(), color: colourRange.optional() })
    .optional(),
  materials: z
    .strictObject({
      colors: z.enum(['palette', 'random']).optional(),
      roughness: rangeOf(unit).optional(),
      metallic: rangeOf(unit).optional(),
    })
    .optional(),
  ground: z
    .strictObject({
      color: colourRange.optional(),
      texture: z.string().min(1).nullable().optional(),
      textureScale: positive.optional(),
      size: positive.optional(),
    })
    .optional(),
  distractors: z
    .strictObject({
      count: rangeOf(z.number().int().min(0)).optional(),
      shapes: z.array(primitive).min(1).optional(),
      scale: rangeOf(positive).optional(),
    })
    .optional(),
});
export type SceneFile = z.infer<typeof sceneFileSchema>;
type ObjectInput = z.infer<typeof objectSchema>;

/** The flags of `litter render` that set what a scene file can set (each wins over the file). */
export interface RenderFlags {
  scenes?: number | undefined;
  views?: number | undefined;
  width?: number | undefined;
  height?: number | undefined;
  samples?: number | undefined;
  seed?: number | undefined;
  engine?: 'cycles' | 'eevee' | undefined;
  device?: 'cpu' | 'gpu' | undefined;
  prefix?: string | undefined;
  visibility?: Visibility | undefined;
  minPixels?: number | undefined;
  coco?: boolean | undefined;
  probability?: number | undefined;
  /** `Cube`, `Mug=meshes/mug.glb`, `Chair=props.blend:Chair` (paths relative to `cwd`). */
  objects?: readonly string[] | undefined;
  camera?: 'orbit' | 'random' | undefined;
}

const where = (file: string, at: readonly PropertyKey[]) =>
  at.length === 0
    ? file
    : `${file}: ${at.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('')}`;

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(root: unknown, at: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of at) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

const EXPECTED: Record<string, string> = { object: 'an object', int: 'an integer', array: 'an array' };

/** One line per zod issue: `scene.json: camera.pitch[1] = 120 must be <= 89`. */
function formatIssue(issue: z.core.$ZodIssue, raw: unknown, file: string): string {
  const value = valueAt(raw, issue.path);
  const at = where(file, issue.path);
  const is = issue.path.length === 0 ? 'the file' : `= ${show(value)}`;
  switch (issue.code) {
    case 'invalid_type':
      return value === undefined
        ? `${at} is missing`
        : `${at} ${is} is not ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}`;
    case 'too_small':
      return issue.origin === 'array' || issue.origin === 'string'
        ? `${at} must not be empty`
        : `${at} ${is} must be ${issue.inclusive === false ? '>' : '>='} ${issue.minimum}`;
    case 'too_big':
      return `${at} ${is} must be ${issue.inclusive === false ? '<' : '<='} ${issue.maximum}`;
    case 'unrecognized_keys':
      return `${at}: unknown key${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_value':
      return `${at} ${is} must be one of ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_format':
      return `${at} ${is} ${issue.message}`;
    case 'invalid_union':
      return `${at} ${is} ${issue.message}`;
    case 'not_multiple_of':
      return `${at} ${is} is not an integer`;
    default:
      return `${at}: ${issue.message}`;
  }
}

/**
 * Validates a scene file's JSON text. Every problem is reported at once, each naming the file and the field:
 * `scene.json: camera.pitch[1] = 120 must be <= 89`.
 *
 * @throws RenderError `scene-file-invalid`
 */
export function parseSceneFile(text: string, file = 'scene.json'): SceneFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw new RenderError('scene-file-invalid', `${file} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RenderError(
      'scene-file-invalid',
      `${file} must be a JSON object of settings, got ${show(raw)}`,
    );
  }
  const parsed = sceneFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => formatIssue(issue, raw, file));
    throw problemsError(
      'scene-file-invalid',
      `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:`,
      problems,
      'See the scene file section of the @litter/render README.',
    );
  }
  return parsed.data;
}

const range = (value: number | readonly number[] | undefined, fallback: Range): Range =>
  value === undefined ? fallback : typeof value === 'number' ? [value, value] : [value[0]!, value[1]!];
const colours = (value: Rgb | [Rgb, Rgb] | undefined, fallback: [Rgb, Rgb]): [Rgb, Rgb] =>
  value === undefined
    ? fallback
    : Array.isArray(value[0])
      ? (value as [Rgb, Rgb])
      : [value as Rgb, value as Rgb];

/** The orbit grid for `views` renders: [yaw steps, pitch steps] with pitch steps the divisor nearest sqrt. */
export function orbitGrid(views: number): [number, number] {
  let pitches = Math.floor(Math.sqrt(views));
  while (views % pitches !== 0) pitches--;
  return [views / pitches, pitches];
}

/** `Mug=meshes/mug.glb` -> an object input; `Chair=props.blend:Chair` takes one object of a .blend. */
export function parseObjectFlag(item: string): ObjectInput {
  const equals = item.indexOf('=');
  if (equals === -1) return item;
  const name = item.slice(0, equals);
  let mesh = item.slice(equals + 1);
  const blend = /^(.*\.blend):([^/\\]+)$/i.exec(mesh);
  if (blend) {
    mesh = blend[1]!;
    return { name, mesh, object: blend[2]! };
  }
  return { name, mesh };
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

interface Resolving {
  problems: string[];
  /** Where relative paths of the file or flags start. */
  base: string;
  label: string;
}

async function resolveObject(
  input: ObjectInput,
  index: number,
  probability: number,
  ctx: Resolving,
): Promise<ObjectSpec | undefined> {
  const spec = typeof input === 'string' ? { name: input } : input;
  const at = `${ctx.label}[${index}] (${spec.name})`;
  const common: ObjectCommon = {
    name: spec.name,
    probability: 'probability' in spec && spec.probability !== undefined ? spec.probability : probability,
    color: ('color' in spec && spec.color) || null,
    location: ('location' in spec && spec.location) || null,
    rotation: ('rotation' in spec && spec.rotation) || null,
    physics: !('physics' in spec) || spec.physics !== false,
  };
  if (!('mesh' in spec) || spec.mesh === undefined) {
    const shape = ('shape' in spec && spec.shape) || spec.name;
    if (!(PRIMITIVES as readonly string[]).includes(shape)) {
      ctx.problems.push(
        `${at}: "${shape}" is not a built-in shape (${PRIMITIVES.join(', ')}); give a "mesh" file (.obj, .glb, .gltf, .stl, .blend) or a "shape"`,
      );
      return undefined;
    }
    if ('object' in spec && spec.object !== undefined)
      ctx.problems.push(`${at}: "object" needs a .blend "mesh"`);
    return { ...common, kind: 'primitive', shape: shape as Primitive };
  }
  const file = path.resolve(ctx.base, spec.mesh);
  const format = MESH_FORMATS[path.extname(file).toLowerCase() as keyof typeof MESH_FORMATS];
  if (format === undefined) {
    ctx.problems.push(`${at}: mesh ${spec.mesh} is not a .obj, .glb, .gltf, .stl or .blend file`);
    return undefined;
  }
  if (!existsSync(file) || !statSync(file).isFile()) {
    ctx.problems.push(`${at}: mesh ${file} does not exist`);
    return undefined;
  }
  const object = 'object' in spec && spec.object !== undefined ? spec.object : null;
  if (format === 'blend' && object === null)
    ctx.problems.push(`${at}: a .blend mesh needs "object" (the name of the object to take)`);
  if (format !== 'blend' && object !== null) ctx.problems.push(`${at}: "object" is only for .blend files`);
  return {
    ...common,
    kind: 'file',
    path: file,
    format,
    object,
    size: 'size' in spec && spec.size !== undefined ? spec.size : 1.6,
    keepMaterials: 'keepMaterials' in spec && spec.keepMaterials === true,
    sha256: await sha256(file),
  };
}

export interface ResolveSettingsOptions {
  /** Path of a JSON scene file (validated; its relative paths start at its folder). */
  sceneFile?: string | undefined;
  flags?: RenderFlags;
  /** Where relative paths of the flags start. @default process.cwd() */
  cwd?: string;
}

/**
 * The settings of a render: defaults, then the scene file, then the flags. Checks what the schema cannot:
 * duplicate class names, unknown shapes, mesh files, the orbit grid.
 *
 * @throws RenderError `scene-file-invalid` (file problems), `options-invalid` (flag problems)
 * @example
 * const settings = await resolveSettings({ flags: { scenes: 2, views: 4, objects: ['Cube', 'Mug=mug.glb'] } });
 */
export async function resolveSettings(options: ResolveSettingsOptions = {}): Promise<RenderSettings> {
  const cwd = options.cwd ?? process.cwd();
  const flags = options.flags ?? {};
  const fileName = options.sceneFile === undefined ? undefined : path.resolve(cwd, options.sceneFile);
  let file: SceneFile = {};
  if (fileName !== undefined) {
    const text = await readFile(fileName, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new RenderError('scene-file-invalid', `scene file ${fileName} cannot be read (${error.code})`, {
        cause: error,
      });
    });
    file = parseSceneFile(text, path.basename(fileName));
  }
  const pick = <K extends keyof RenderFlags & keyof SceneFile & keyof typeof DEFAULTS>(key: K) =>
    (flags[key] ?? file[key] ?? DEFAULTS[key]) as NonNullable<RenderFlags[K]>;
  const views = pick('views');
  const probability = pick('probability');
  const fromFlags = flags.objects !== undefined;
  const ctx: Resolving = {
    problems: [],
    base: fromFlags || fileName === undefined ? cwd : path.dirname(fileName),
    label: fromFlags
      ? '--objects'
      : `${fileName === undefined ? 'default' : path.basename(fileName)}: objects`,
  };
  const inputs: ObjectInput[] = fromFlags
    ? flags.objects!.map(parseObjectFlag)
    : (file.objects ?? [...DEFAULTS.objects]);
  const objects: ObjectSpec[] = [];
  const seen = new Map<string, number>();
  for (const [index, input] of inputs.entries()) {
    const spec = await resolveObject(input, index, probability, ctx);
    const name = typeof input === 'string' ? input : input.name;
    if (seen.has(name))
      ctx.problems.push(`${ctx.label}[${index}]: class "${name}" is listed twice (also [${seen.get(name)}])`);
    seen.set(name, index);
    if (spec) objects.push(spec);
  }
  const camera = file.camera ?? {};
  const mode = flags.camera ?? camera.mode ?? 'orbit';
  const grid = camera.grid ?? orbitGrid(views);
  if (mode === 'orbit' && grid[0] * grid[1] !== views) {
    ctx.problems.push(`camera.grid ${grid[0]} x ${grid[1]} is not ${views} views (--views)`);
  }
  const ground = file.ground ?? {};
  let texture = ground.texture ?? null;
  let textureSha256: string | null = null;
  if (texture !== null && texture !== 'checker') {
    texture = path.resolve(fileName ? path.dirname(fileName) : cwd, texture);
    if (!existsSync(texture)) ctx.problems.push(`ground.texture ${texture} does not exist`);
    else textureSha256 = await sha256(texture);
  }
  if (ctx.problems.length > 0) {
    const code = fromFlags && fileName === undefined ? 'options-invalid' : 'scene-file-invalid';
    throw problemsError(
      code,
      `the render settings have ${ctx.problems.length} problem${ctx.problems.length === 1 ? '' : 's'}:`,
      ctx.problems,
    );
  }
  const physics = file.physics ?? {};
  const light = file.light ?? {};
  const world = file.world ?? {};
  const materials = file.materials ?? {};
  const distractors = file.distractors ?? {};
  const white: Rgb = [1, 1, 1];
  return {
    scenes: pick('scenes'),
    views,
    width: pick('width'),
    height: pick('height'),
    samples: pick('samples'),
    seed: pick('seed'),
    engine: pick('engine'),
    device: pick('device'),
    prefix: pick('prefix'),
    visibility: pick('visibility'),
    minPixels: pick('minPixels'),
    coco: pick('coco'),
    camera: {
      mode,
      grid,
      pitch: range(camera.pitch, [0, 22.5]),
      distance: range(camera.distance, [9, 9]),
      height: camera.height ?? 2,
      distanceJitter: camera.distanceJitter ?? 0,
      heightJitter: camera.heightJitter ?? 0,
      lens: camera.lens ?? 50,
      target: camera.target ?? [0, 0, 0],
    },
    objects,
    physics: {
      enabled: physics.enabled ?? true,
      frames: physics.frames ?? 60,
      spawn: physics.spawn ?? 6,
      dropHeight: range(physics.dropHeight, [3, 8]),
    },
    light: {
      elevation: range(light.elevation, [90, 90]),
      azimuth: range(light.azimuth, [0, 0]),
      energy: range(light.energy, [3, 3]),
      color: colours(light.color, [white, white]),
    },
    world: {
      strength: range(world.strength, [0.6, 0.6]),
      color: world.color === undefined ? null : colours(world.color, [white, white]),
    },
    materials: {
      colors: materials.colors ?? 'palette',
      roughness: materials.roughness === undefined ? null : range(materials.roughness, [0.5, 0.5]),
      metallic: materials.metallic === undefined ? null : range(materials.metallic, [0, 0]),
    },
    ground: {
      color: colours(ground.color, [
        [0.35, 0.3, 0.22],
        [0.35, 0.3, 0.22],
      ]),
      texture,
      textureScale: ground.textureScale ?? 1,
      size: ground.size ?? 60,
      textureSha256,
    },
    distractors: {
      count: range(distractors.count, [0, 0]),
      shapes: distractors.shapes ?? ['Cube', 'Sphere', 'Cone'],
      scale: range(distractors.scale, [0.4, 0.8]),
    },
  };
}

/** What decides the images and labels, without machine-specific paths (mesh and texture files count by hash). */
function portable(settings: RenderSettings): unknown {
  return {
    ...settings,
    objects: settings.objects.map((o) => (o.kind === 'file' ? { ...o, path: path.basename(o.path) } : o)),
    ground: {
      ...settings.ground,
      texture: settings.ground.texture === null ? null : (settings.ground.textureSha256 ?? 'checker'),
    },
  };
}

/** The settings' fingerprint: equal fingerprints render equal datasets (with the same Blender version). */
export function fingerprint(settings: RenderSettings): string {
  return createHash('sha256')
    .update(JSON.stringify(portable(settings)))
    .digest('hex')
    .slice(0, 16);
}

/** The settings that differ between two renders, as `name: a vs b` lines (for mismatch errors). */
export function settingsDifferences(a: RenderSettings, b: RenderSettings): string[] {
  const left = portable(a) as Record<string, unknown>;
  const right = portable(b) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])];
  return keys
    .filter((key) => JSON.stringify(left[key]) !== JSON.stringify(right[key]))
    .map((key) => `${key}: ${show(left[key])} vs ${show(right[key])}`);
}
