import type { Dataset } from '@litter/dataset';

/** What {@link alignToVocabulary} returns. */
export interface AlignedDataset {
  /** The dataset with labels, boxes and box mask in the order of the vocabulary given (pixels shared). */
  dataset: Dataset;
  /** Classes of the dataset that the vocabulary lacks, with the number of images they are visible in: left out. */
  unknown: { name: string; images: number }[];
  /** Classes of the vocabulary the dataset never names (never visible in it). */
  absent: string[];
}

/**
 * Re-indexes a dataset's classes to another vocabulary (a trained run's), so that class c of the labels is
 * output c of the run's model. Classes the run does not know are dropped from the labels (their objects are
 * still in the pixels) and listed in `unknown`; the run's classes that the dataset does not have are never
 * visible and listed in `absent`.
 * @example
 * const { dataset, unknown } = alignToVocabulary(other, run.vocabulary);
 * if (unknown.length > 0) console.log(`not known to the run: ${unknown.map((u) => u.name).join(', ')}`);
 */
export function alignToVocabulary(source: Dataset, vocabulary: readonly string[]): AlignedDataset {
  const from = source.vocabulary;
  const classes = vocabulary.length;
  const index = new Map(from.map((name, c) => [name, c]));
  const labels = new Float32Array(source.size * classes);
  const boxes = new Float32Array(source.size * classes * 4);
  const boxMask = new Float32Array(source.size * classes);
  vocabulary.forEach((name, c) => {
    const s = index.get(name);
    if (s === undefined) return;
    for (let n = 0; n < source.size; n++) {
      labels[n * classes + c] = source.labels[n * from.length + s]!;
      boxMask[n * classes + c] = source.boxMask[n * from.length + s]!;
      boxes.set(
        source.boxes.subarray((n * from.length + s) * 4, (n * from.length + s + 1) * 4),
        (n * classes + c) * 4,
      );
    }
  });
  const known = new Set(vocabulary);
  const unknown = from
    .map((name, s) => {
      let images = 0;
      for (let n = 0; n < source.size; n++) images += source.labels[n * from.length + s]! >= 0.5 ? 1 : 0;
      return { name, images };
    })
    .filter(({ name }) => !known.has(name));
  return {
    dataset: { ...source, vocabulary: [...vocabulary], labels, boxes, boxMask },
    unknown,
    absent: vocabulary.filter((name) => !index.has(name)),
  };
}
