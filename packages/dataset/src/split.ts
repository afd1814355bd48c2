import { DatasetError } from './errors.js';
import { SeededRandom } from './random.js';
import { sceneOf } from './scenes.js';

/** Dataset indices of each part, ascending. */
export interface Split {
  train: number[];
  validation: number[];
  test: number[];
}

/** Options of {@link splitDataset}. */
export interface SplitOptions {
  /** Seed of the scene shuffle: the same seed gives the same split. @default 0 */
  seed?: number;
  /** Fraction of the scenes (not images) that go to validation, when `validationScenes` is not given. @default 0.2 */
  validationFraction?: number;
  /** Fraction of the scenes that go to test, when `testScenes` is not given. @default 0 */
  testFraction?: number;
  /** Exactly these scenes go to validation. */
  validationScenes?: readonly string[];
  /** Exactly these scenes go to test. */
  testScenes?: readonly string[];
  /** Scene of each image by this pattern instead of `dataset.scenes` (see {@link sceneOf}). */
  scenePattern?: RegExp | string;
}

/**
 * Splits a dataset into train, validation and test **by scene**, so that renders of one scene never land
 * on both sides (they are near-duplicates). Scenes are sorted, shuffled with `seed`, and the first
 * `round(testFraction * scenes)` go to test, the next `round(validationFraction * scenes)` to validation
 * (at least one scene for a fraction above 0 when there are 2 scenes or more), the rest to train. Explicit
 * scene lists replace the fractions. The result depends only on the set of scenes and the options, not on
 * the order of the images.
 *
 * @throws DatasetError `split-invalid`
 * @example
 * const { train, validation } = splitDataset(dataset, { seed: 1, validationFraction: 0.25 });
 * const byName = splitDataset(dataset, { validationScenes: ['3'] });
 */
export function splitDataset(
  dataset: { images: readonly string[]; scenes: readonly string[] },
  options: SplitOptions = {},
): Split {
  const scenes =
    options.scenePattern === undefined
      ? dataset.scenes
      : dataset.images.map((image) => sceneOf(image, options.scenePattern));
  const unique = [...new Set(scenes)].sort();
  const known = new Set(unique);

  const checkList = (list: readonly string[] | undefined, name: string) => {
    if (list === undefined) return undefined;
    const unknown = list.filter((scene) => !known.has(scene));
    if (unknown.length > 0) {
      throw new DatasetError(
        'split-invalid',
        `${name} has unknown scene${unknown.length === 1 ? '' : 's'} ${unknown.map((s) => `"${s}"`).join(', ')}; the scenes are ${unique.map((s) => `"${s}"`).join(', ')}`,
      );
    }
    return new Set(list);
  };
  const fraction = (value: number | undefined, fallback: number, name: string) => {
    const f = value ?? fallback;
    if (!(f >= 0 && f < 1))
      throw new DatasetError('split-invalid', `${name} must be in [0, 1), got ${value}`);
    return f;
  };

  const testSet = checkList(options.testScenes, 'testScenes');
  const validationSet = checkList(options.validationScenes, 'validationScenes');
  if (testSet && validationSet) {
    const both = [...testSet].filter((s) => validationSet.has(s));
    if (both.length > 0) {
      throw new DatasetError(
        'split-invalid',
        `scenes ${both.join(', ')} are in both testScenes and validationScenes`,
      );
    }
  }
  const testFraction = fraction(options.testFraction, 0, 'testFraction');
  const validationFraction = fraction(options.validationFraction, 0.2, 'validationFraction');

  const order = new SeededRandom(options.seed ?? 0).shuffle([...unique]);
  const free = order.filter((scene) => !testSet?.has(scene) && !validationSet?.has(scene));
  const take = (f: number) => {
    if (f === 0 || unique.length < 2) return 0;
    return Math.min(Math.max(1, Math.round(f * unique.length)), free.length - 1);
  };
  const test = testSet ?? new Set(free.splice(0, Math.max(0, take(testFraction))));
  const validation = validationSet ?? new Set(free.splice(0, Math.max(0, take(validationFraction))));

  const split: Split = { train: [], validation: [], test: [] };
  scenes.forEach((scene, index) => {
    if (test.has(scene)) split.test.push(index);
    else if (validation.has(scene)) split.validation.push(index);
    else split.train.push(index);
  });
  if (split.train.length === 0) {
    throw new DatasetError(
      'split-invalid',
      'the split leaves no scene for training: name fewer test or validation scenes',
    );
  }
  return split;
}
