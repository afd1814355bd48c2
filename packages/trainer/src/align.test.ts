import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../test/helpers.js';
import { alignToVocabulary } from './align.js';

describe('alignToVocabulary', () => {
  const dataset = syntheticDataset(8); // vocabulary Blue, Red
  const column = (labels: Float32Array, classes: number, c: number) =>
    Array.from({ length: 8 }, (_, n) => labels[n * classes + c]);

  it('re-indexes labels, boxes and the mask to the run vocabulary', () => {
    const { dataset: aligned, unknown, absent } = alignToVocabulary(dataset, ['Red', 'Green', 'Blue']);
    expect(aligned.vocabulary).toEqual(['Red', 'Green', 'Blue']);
    expect(column(aligned.labels, 3, 0)).toEqual(column(dataset.labels, 2, 1));
    expect(column(aligned.labels, 3, 2)).toEqual(column(dataset.labels, 2, 0));
    expect(column(aligned.labels, 3, 1)).toEqual(new Array(8).fill(0));
    expect(Array.from(aligned.boxes.subarray(0, 4))).toEqual(Array.from(dataset.boxes.subarray(4, 8)));
    expect(column(aligned.boxMask, 3, 2)).toEqual(column(dataset.boxMask, 2, 0));
    expect(aligned.pixels).toBe(dataset.pixels);
    expect(unknown).toEqual([]);
    expect(absent).toEqual(['Green']);
  });

  it('names the classes the run does not know, with how many images show them', () => {
    const { dataset: aligned, unknown, absent } = alignToVocabulary(dataset, ['Red']);
    const blue = column(dataset.labels, 2, 0).filter((v) => v === 1).length;
    expect(unknown).toEqual([{ name: 'Blue', images: blue }]);
    expect(absent).toEqual([]);
    expect(column(aligned.labels, 1, 0)).toEqual(column(dataset.labels, 2, 1));
  });
});
