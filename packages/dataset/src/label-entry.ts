/**
 * A box as stored in `labels.json`: normalised to [0, 1] in Blender's camera frame, x to the right and
 * **y upward** (y = 0 is the bottom row). {@link encodeLabels} turns it into image coordinates (y down).
 */
export interface NormalizedBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** One render: its image file (relative to the folder of `labels.json`) and the meshes in view. */
export interface LabelEntry {
  image: string;
  /** Mesh name -> box; an object without prototype, so that any name (even `__proto__`) is an own key. */
  meshes: Record<string, NormalizedBox>;
}
