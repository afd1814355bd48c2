import { describe, expect, it } from 'vitest';
import { commonSize, inputSizeFor, pixelBudget } from './input-size.js';

describe('inputSizeFor', () => {
  it('keeps the aspect ratio within the pixel budget', () => {
    expect(inputSizeFor({ width: 160, height: 120 }, { pixels: 10800 })).toEqual({ width: 120, height: 90 });
    expect(inputSizeFor({ width: 1920, height: 1080 }, { pixels: 10800 })).toEqual({
      width: 138,
      height: 76,
    });
    const square = inputSizeFor({ width: 128, height: 128 }, { pixels: 10800 });
    expect(square).toEqual({ width: 102, height: 102 });
    expect(square.width * square.height).toBeLessThanOrEqual(10800);
  });

  it('never upscales and keeps a smallest side', () => {
    expect(inputSizeFor({ width: 64, height: 48 }, { pixels: 10800 })).toEqual({ width: 64, height: 48 });
    expect(inputSizeFor({ width: 4000, height: 10 }, { pixels: 10800 }).height).toBe(16);
    expect(inputSizeFor({ width: 100, height: 75 }, { pixels: 4000, multiple: 8 })).toEqual({
      width: 72,
      height: 48,
    });
  });

  it('rejects sizes it cannot use', () => {
    expect(() => inputSizeFor({ width: 0, height: 10 })).toThrow(/cannot choose an input size/);
  });

  it('scales the budget with the cores, within bounds', () => {
    expect(pixelBudget(2)).toBe(10800);
    expect(pixelBudget(1)).toBe(5400);
    expect(pixelBudget(0)).toBe(5400);
    expect(pixelBudget(64)).toBe(65536);
  });

  it('picks the most common size of a sample', () => {
    const sizes = [
      { width: 160, height: 120 },
      { width: 160, height: 120 },
      { width: 80, height: 60 },
    ];
    expect(commonSize(sizes)).toEqual({ width: 160, height: 120 });
    expect(() => commonSize([])).toThrow(/no image sizes/);
  });
});
