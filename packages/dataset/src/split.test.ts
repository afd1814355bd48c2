import { describe, expect, it } from 'vitest';
import { DatasetError } from './errors.js';
import { sceneOf } from './scenes.js';
import { splitDataset } from './split.js';

/** 6 scenes of 5 views (names as Blender writes them), in a scrambled order. */
const images = Array.from({ length: 30 }, (_, i) => `${(i * 7) % 6}-${i}y-0p.png`);
const dataset = { images, scenes: images.map((image) => sceneOf(image)) };

const scenesOf = (indices: number[]) => [...new Set(indices.map((i) => dataset.scenes[i]!))].sort();

describe('sceneOf', () => {
  it('takes the prefix before the first dash, without folders', () => {
    expect(sceneOf('3-4y-2p.png')).toBe('3');
    expect(sceneOf('renders/kitchen-01.png')).toBe('kitchen');
    expect(sceneOf('single.png')).toBe('single');
    expect(sceneOf('renders/kitchen_07.png', /_(\d+)\./)).toBe('07');
    expect(sceneOf('renders/kitchen_07.png', 'kitchen')).toBe('kitchen');
    expect(() => sceneOf('a.png', /_(\d+)/)).toThrow(DatasetError);
  });
});

describe('splitDataset', () => {
  it('keeps every scene on one side and covers every image once', () => {
    const split = splitDataset(dataset, { seed: 3, validationFraction: 0.34, testFraction: 0.17 });
    const all = [...split.train, ...split.validation, ...split.test].sort((a, b) => a - b);
    expect(all).toEqual(images.map((_, i) => i));
    const [train, validation, test] = [
      scenesOf(split.train),
      scenesOf(split.validation),
      scenesOf(split.test),
    ];
    expect(validation).toHaveLength(2);
    expect(test).toHaveLength(1);
    expect(train).toHaveLength(3);
    expect(new Set([...train, ...validation, ...test]).size).toBe(6);
    for (const part of [split.train, split.validation, split.test])
      expect(part).toEqual([...part].sort((a, b) => a - b));
  });

  it('is deterministic for a seed, varies with it, and ignores image order', () => {
    const a = splitDataset(dataset, { seed: 1 });
    expect(splitDataset(dataset, { seed: 1 })).toEqual(a);
    const chosen = new Set(
      Array.from({ length: 12 }, (_, seed) => scenesOf(splitDataset(dataset, { seed }).validation).join()),
    );
    expect(chosen.size).toBeGreaterThan(2);
    const reversed = { images: [...images].reverse(), scenes: [...dataset.scenes].reverse() };
    const b = splitDataset(reversed, { seed: 1 });
    expect(scenesOf(a.validation)).toEqual([...new Set(b.validation.map((i) => reversed.scenes[i]!))].sort());
  });

  it('defaults to 20 % of the scenes for validation, at least one, and none for test', () => {
    const split = splitDataset(dataset);
    expect(scenesOf(split.validation)).toHaveLength(1);
    expect(split.test).toEqual([]);
    const two = { images: ['a-1.png', 'b-1.png'], scenes: ['a', 'b'] };
    expect(splitDataset(two, { validationFraction: 0.01 }).validation).toHaveLength(1);
    const one = { images: ['a-1.png', 'a-2.png'], scenes: ['a', 'a'] };
    expect(splitDataset(one)).toEqual({ train: [0, 1], validation: [], test: [] });
  });

  it('takes explicit scene lists', () => {
    const split = splitDataset(dataset, { validationScenes: ['2', '4'], testScenes: ['0'] });
    expect(scenesOf(split.validation)).toEqual(['2', '4']);
    expect(scenesOf(split.test)).toEqual(['0']);
    expect(scenesOf(split.train)).toEqual(['1', '3', '5']);
  });

  it('groups by a user pattern', () => {
    const named = {
      images: ['k_1_a.png', 'k_1_b.png', 'k_2_a.png', 'k_3_a.png'],
      scenes: ['k', 'k', 'k', 'k'],
    };
    const split = splitDataset(named, { scenePattern: /_(\d+)_/, validationScenes: ['2'] });
    expect(split).toEqual({ train: [0, 1, 3], validation: [2], test: [] });
  });

  it.each([
    [{ validationScenes: ['9'] }, 'unknown scene "9"'],
    [{ validationScenes: ['1'], testScenes: ['1'] }, 'in both'],
    [{ validationFraction: 1 }, 'validationFraction must be in [0, 1)'],
    [{ testFraction: -0.1 }, 'testFraction must be in [0, 1)'],
    [{ validationScenes: ['0', '1', '2'], testScenes: ['3', '4', '5'] }, 'no scene for training'],
  ])('rejects %j', (options, message) => {
    const error = (() => {
      try {
        splitDataset(dataset, options);
      } catch (e) {
        return e as DatasetError;
      }
      throw new Error('expected an error');
    })();
    expect(error.code).toBe('split-invalid');
    expect(error.message).toContain(message);
  });
});
