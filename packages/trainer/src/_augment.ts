/**
 * Mirrors each of the first `count` images of a batch left-right in place with probability 1/2, and its boxes
 * with it (`[x1, y1, x2, y2]` per class, normalised: x1' = 1 - x2, x2' = 1 - x1). Presence labels do not change.
 * Draws one number from `rng` (the run's seeded generator) per image, so a resumed run flips the same images as an uninterrupted one.
 *
 * Why flips: Blender scenes are rendered from a handful of camera paths, so a held-out scene shows objects from
 * angles training never saw; mirroring doubles the views for free (bench:tta: part of the best recipe).
 */
export function flipHalf(
  images: Float32Array | Uint8Array,
  boxes: Float32Array | undefined,
  count: number,
  shape: { height: number; width: number; classes: number },
  rng: { next(): number },
): void {
  const { height, width, classes } = shape;
  const row = width * 3;
  for (let n = 0; n < count; n++) {
    if (rng.next() < 0.5) continue;
    for (let r = 0; r < height; r++) {
      const start = (n * height + r) * row;
      for (let left = start, right = start + row - 3; left < right; left += 3, right -= 3) {
        for (let c = 0; c < 3; c++) {
          const t = images[left + c]!;
          images[left + c] = images[right + c]!;
          images[right + c] = t;
        }
      }
    }
    if (boxes) mirrorBoxes(boxes, n * classes, classes);
  }
}

/**
 * Mirrors `count` boxes (`[x1, y1, x2, y2]` each, normalised) of `boxes` from box `first` on, in place, as their
 * image is mirrored left-right: x becomes 1 - x, and the two x corners swap so that x1 stays the left one.
 */
export function mirrorBoxes(boxes: Float32Array, first = 0, count = boxes.length / 4 - first): void {
  for (let at = first * 4; at < (first + count) * 4; at += 4) {
    const x1 = boxes[at]!;
    boxes[at] = 1 - boxes[at + 2]!;
    boxes[at + 2] = 1 - x1;
  }
}
