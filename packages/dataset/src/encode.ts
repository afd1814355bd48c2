import { DatasetError } from './errors.js';
import type { LabelEntry, NormalizedBox } from './labels.js';

/** Multi-hot labels and boxes of N images over C classes, all flat and row-major. */
export interface EncodedLabels {
  /** N * C: `labels[n * C + c]` is 1 when class `vocabulary[c]` is in view in image n, else 0. */
  labels: Float32Array;
  /** N * C * 4: the box of class c in image n at `(n * C + c) * 4`, as [x1, y1, x2, y2] in image coordinates (y down); 0 where absent. */
  boxes: Float32Array;
  /** N * C: 1 where the box is valid (the class is in view), else 0. Equal to `labels`, kept apart for clarity. */
  boxMask: Float32Array;
}

/**
 * Converts a box from Blender's camera frame (y up, y = 0 at the bottom row) to image coordinates (y down,
 * y = 0 at the top row, as rows of the pixel array are stored): x is unchanged, and
 * `y1_image = 1 - y2_blender`, `y2_image = 1 - y1_blender` (the top edge in the image is the box's highest
 * point in Blender). All values stay in [0, 1], normalised by the image's width and height.
 *
 * @example
 * toImageBox({ x1: 0.2, y1: 0.1, x2: 0.4, y2: 0.3 }); // [0.2, 0.7, 0.4, 0.9]
 */
export function toImageBox(box: NormalizedBox): [x1: number, y1: number, x2: number, y2: number] {
  return [box.x1, 1 - box.y2, box.x2, 1 - box.y1];
}

/**
 * Encodes entries over a vocabulary: multi-hot visibility **by vocabulary index** (the seed set index i for
 * the i-th mesh of each entry, which is wrong as soon as an image lacks a class), boxes in image coordinates
 * (see {@link toImageBox}) and a box mask.
 *
 * @throws DatasetError `vocabulary-unknown-label` when a mesh is not in `vocabulary`
 * @example
 * const vocabulary = buildVocabulary(entries);
 * const { labels, boxes, boxMask } = encodeLabels(entries, vocabulary);
 */
export function encodeLabels(entries: readonly LabelEntry[], vocabulary: readonly string[]): EncodedLabels {
  const classes = vocabulary.length;
  const indexOf = new Map(vocabulary.map((name, index) => [name, index]));
  const labels = new Float32Array(entries.length * classes);
  const boxes = new Float32Array(entries.length * classes * 4);
  entries.forEach((entry, n) => {
    for (const [name, box] of Object.entries(entry.meshes)) {
      const c = indexOf.get(name);
      if (c === undefined) {
        throw new DatasetError(
          'vocabulary-unknown-label',
          `label "${name}" of ${entry.image} is not in the vocabulary [${vocabulary.join(', ')}]: add it or build the vocabulary from these entries`,
        );
      }
      labels[n * classes + c] = 1;
      boxes.set(toImageBox(box), (n * classes + c) * 4);
    }
  });
  return { labels, boxes, boxMask: labels.slice() };
}
