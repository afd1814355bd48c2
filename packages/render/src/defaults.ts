/* The defaults of a render, on their own (no zod): `litter render --help` derives its text from them. */

/**
 * The defaults: the look of shared/tools/render_scenes.py (and the shared fixtures), blender-five's classes,
 * 40 scenes of 25 orbit views at 160x120, no randomisation beyond the drop.
 *
 * 40 scenes, not 10: a model generalises from scenes (placements), not views. `litter train --time 2m` on
 * render_scenes.py's renders of this look, tested on 500 renders of 20 other scenes (BENCHMARKS.md, "Session 12
 * (issue 14)"): 8 training scenes x 25 views gave exact match 0.58-0.60, 8 x 121 views 0.81-0.84, 40 x 25 views
 * 0.85-0.88 (six folds). 1,000 renders take about 3 minutes on 2 cores (about 5 renders/s).
 */
export const DEFAULTS = {
  scenes: 40,
  views: 25,
  width: 160,
  height: 120,
  samples: 8,
  seed: 1,
  engine: 'cycles',
  device: 'cpu',
  prefix: '',
  visibility: 'pixels',
  minPixels: 10,
  coco: false,
  objects: ['Cube', 'Sphere', 'Can', 'Cone', 'Torus'],
  probability: 0.75,
} as const;
