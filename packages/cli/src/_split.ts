import type { Dataset, Split, SplitOptions } from '@litter/dataset';

/** Seeds tried before settling for a split where some class is never (or always) visible in validation. */
const ATTEMPTS = 32;

/** Every class is visible in some image and absent in another, among `indices`. */
function bothWays(dataset: Dataset, indices: readonly number[]): boolean {
  const classes = dataset.vocabulary.length;
  for (let c = 0; c < classes; c++) {
    let visible = 0;
    for (const index of indices) visible += dataset.labels[index * classes + c] ?? 0;
    if (visible === 0 || visible === indices.length) return false;
  }
  return true;
}

export interface ChosenSplit {
  split: Split;
  /** Scenes of each part, sorted. */
  scenes: { train: string[]; validation: string[]; test: string[] };
  /** The seed given to splitDataset. */
  splitSeed: number;
  /** Whether every class is both visible and absent in training and in validation. */
  balanced: boolean;
}

const scenesOf = (dataset: Dataset, indices: readonly number[]) =>
  [...new Set(indices.map((index) => dataset.scenes[index] as string))].sort();

/**
 * A split by scene for `litter train`. Scenes of rendered datasets differ a lot (in the bundled sample one
 * scene has no Sphere in view, another a Cube in every render), so a scene picked at random can leave a class
 * that validation never sees, and its precision, recall and AP mean nothing. With scenes chosen by fraction,
 * this tries `seed`, `seed + 1`, ... and takes the first split in which every class is both visible and absent
 * in training and in validation; when none is, the split of `seed`. Named validation scenes are taken as given.
 */
export function chooseSplit(
  splitDataset: (dataset: Dataset, options: SplitOptions) => Split,
  dataset: Dataset,
  options: {
    seed: number;
    validationScenes?: string[];
    validationFraction?: number;
    testScenes?: string[];
    testFraction?: number;
  },
): ChosenSplit {
  const make = (splitSeed: number): ChosenSplit => {
    const split = splitDataset(dataset, {
      seed: splitSeed,
      ...(options.validationScenes ? { validationScenes: options.validationScenes } : {}),
      ...(options.validationFraction !== undefined ? { validationFraction: options.validationFraction } : {}),
      ...(options.testScenes ? { testScenes: options.testScenes } : {}),
      ...(options.testFraction !== undefined ? { testFraction: options.testFraction } : {}),
    });
    return {
      split,
      scenes: {
        train: scenesOf(dataset, split.train),
        validation: scenesOf(dataset, split.validation),
        test: scenesOf(dataset, split.test),
      },
      splitSeed,
      balanced:
        split.validation.length > 0 && bothWays(dataset, split.train) && bothWays(dataset, split.validation),
    };
  };
  const first = make(options.seed);
  if (first.balanced || options.validationScenes || first.split.validation.length === 0) return first;
  for (let attempt = 1; attempt < ATTEMPTS; attempt++) {
    const candidate = make(options.seed + attempt);
    if (candidate.balanced) return candidate;
  }
  return first;
}
