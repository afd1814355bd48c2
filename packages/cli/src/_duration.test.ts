import { describe, expect, it } from 'vitest';
import { parseDuration } from './_duration.js';

describe('parseDuration', () => {
  it('reads seconds, minutes, hours and combinations', () => {
    expect(parseDuration('time', '90s')).toBe(90);
    expect(parseDuration('time', '2m')).toBe(120);
    expect(parseDuration('time', '1h')).toBe(3600);
    expect(parseDuration('time', '1m30s')).toBe(90);
    expect(parseDuration('time', '1h5m')).toBe(3900);
    expect(parseDuration('time', '1.5m')).toBe(90);
    expect(parseDuration('time', '45')).toBe(45);
    expect(parseDuration('time', ' 2M ')).toBe(120);
    expect(parseDuration('time', undefined)).toBeUndefined();
  });

  it('rejects anything else with a usage error that shows the forms', () => {
    for (const bad of ['', 'soon', '2x', '1m1m', '30s1m', '-5s', 'm', '2 m', '1e3s']) {
      expect(() => parseDuration('time', bad), bad).toThrow(/--time must be a duration such as 90s, 2m, 1h/);
    }
    expect(() => parseDuration('time', '0s')).toThrow(/more than 0/);
    expect(() => parseDuration('time', '200h')).toThrow(/at most a week/);
  });
});
