import type { LabelEntry, NormalizedBox } from '@litter/dataset';
import type { RenderSettings, Visibility } from './settings.js';

/** [x1, y1, x2, y2], normalised, y up (Blender's camera frame, as labels.json). */
export type BoxArray = [number, number, number, number];

/** What Blender measured of one class object in one view. */
export interface ObjectRecord {
  /** Box of the whole projected mesh clipped to the frame (the seed's), null when outside the frame. */
  projection: BoxArray | null;
  /** Pixels the object covers in the object-index pass (what is hidden behind others does not count). */
  pixels: number;
  /** Box of those pixels, null when none. */
  pixelBox: BoxArray | null;
}

/** One render of a scene. */
export interface ViewRecord {
  image: string;
  camera: [number, number, number];
  /** The class objects that are in the scene (absent ones are not listed). */
  objects: Record<string, ObjectRecord>;
}

/** A surface as Blender has it: base colour (linear RGB), roughness, metallic. */
export interface SurfaceRecord {
  color: [number, number, number];
  roughness: number;
  metallic: number;
}

/** What the domain randomisation drew for a scene, read back from Blender's objects after the scene was built. */
export interface EnvironmentRecord {
  world: { strength: number; color: [number, number, number] };
  /** The sun: the unit vector its light travels along (world coordinates), energy, colour. */
  light: { direction: [number, number, number]; energy: number; color: [number, number, number] };
  /** `texture`: "checker", an image's path, or null; `checker`: its two colours. */
  ground: {
    color: [number, number, number];
    texture: string | null;
    checker: [[number, number, number], [number, number, number]] | null;
  };
  /** Per class object in the scene; null for a mesh that keeps its file's materials without a Principled BSDF. */
  materials: Record<string, SurfaceRecord | null>;
  /** Objects that are not classes, where they came to rest. */
  distractors: ({ shape: string; location: number[]; scale: number } & Partial<SurfaceRecord>)[];
}

/** A finished scene, as stored in `.litter-render/scenes/`. */
export interface SceneRecord {
  scene: number;
  fingerprint: string;
  views: ViewRecord[];
  /** Where the objects came to rest (world coordinates, radians). */
  placements: { name: string; location: number[]; rotation: number[] }[];
  /** What was drawn (absent in records written before it was recorded); read by people and tests, not by labels. */
  environment?: EnvironmentRecord;
}

/** Labels are rounded to 6 decimals (about 1/1000 of a pixel at 4K): stable text, nothing lost that matters. */
const round = (value: number) => Math.round(value * 1e6) / 1e6;

function toBox([x1, y1, x2, y2]: BoxArray): NormalizedBox {
  return { x1: round(x1), x2: round(x2), y1: round(y1), y2: round(y2) };
}

/** The box of an object in a view under a visibility rule, or undefined when it does not count as in view. */
export function visibleBox(
  record: ObjectRecord,
  visibility: Visibility,
  minPixels: number,
): NormalizedBox | undefined {
  if (visibility === 'projection') return record.projection ? toBox(record.projection) : undefined;
  return record.pixels >= minPixels && record.pixelBox ? toBox(record.pixelBox) : undefined;
}

/**
 * labels.json entries of finished scenes, in scene order then view order, mesh names sorted (as the seed's
 * `sort_keys`). The same records give the same text, whichever machine or process rendered them.
 */
export function labelEntries(
  records: Iterable<SceneRecord>,
  rule: { visibility: Visibility; minPixels: number },
): LabelEntry[] {
  const sorted = [...records].sort((a, b) => a.scene - b.scene);
  const entries: LabelEntry[] = [];
  for (const record of sorted) {
    for (const view of record.views) {
      const meshes: Record<string, NormalizedBox> = {};
      for (const name of Object.keys(view.objects).sort()) {
        const box = visibleBox(view.objects[name]!, rule.visibility, rule.minPixels);
        if (box) meshes[name] = box;
      }
      entries.push({ image: view.image, meshes });
    }
  }
  return entries;
}

/** A COCO dataset (the fields detection tools read: BlenderProc, Omniverse Replicator, Ultralytics). */
export interface CocoDataset {
  info: { description: string; version: string };
  images: { id: number; file_name: string; width: number; height: number }[];
  categories: { id: number; name: string; supercategory: string }[];
  annotations: {
    id: number;
    image_id: number;
    category_id: number;
    /** [x, y, width, height] in pixels from the top-left corner (y down). */
    bbox: [number, number, number, number];
    area: number;
    iscrowd: 0;
  }[];
}

/** The COCO form of the same labels: pixel boxes from the top-left, categories in --objects order (ids from 1). */
export function cocoDataset(
  records: Iterable<SceneRecord>,
  settings: Pick<RenderSettings, 'width' | 'height' | 'objects' | 'visibility' | 'minPixels'>,
): CocoDataset {
  const { width, height } = settings;
  const categories = settings.objects.map((o, i) => ({ id: i + 1, name: o.name, supercategory: 'object' }));
  const ids = new Map(categories.map((c) => [c.name, c.id]));
  const sorted = [...records].sort((a, b) => a.scene - b.scene);
  const coco: CocoDataset = {
    info: { description: 'litter render', version: '1' },
    images: [],
    categories,
    annotations: [],
  };
  for (const view of sorted.flatMap((r) => r.views)) {
    const imageId = coco.images.length + 1;
    coco.images.push({ id: imageId, file_name: view.image, width, height });
    for (const name of Object.keys(view.objects).sort()) {
      const object = view.objects[name]!;
      const box = visibleBox(object, settings.visibility, settings.minPixels);
      if (!box) continue;
      const w = round((box.x2 - box.x1) * width);
      const h = round((box.y2 - box.y1) * height);
      coco.annotations.push({
        id: coco.annotations.length + 1,
        image_id: imageId,
        category_id: ids.get(name)!,
        bbox: [round(box.x1 * width), round((1 - box.y2) * height), w, h],
        area: settings.visibility === 'pixels' ? object.pixels : round(w * h),
        iscrowd: 0,
      });
    }
  }
  return coco;
}
