import { CliError } from './errors.js';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Seconds of a duration flag: `90s`, `2m`, `1h`, `1m30s`, `1.5m`, or a plain number of seconds (`90`).
 * @throws CliError `usage` for anything else, zero or more than a week
 * @example parseDuration('time', '1m30s') // 90
 */
export function parseDuration(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const trimmed = text.trim().toLowerCase();
  const fail = () =>
    new CliError('usage', `--${name} must be a duration such as 90s, 2m, 1h or 1m30s, got "${text}"`);
  if (trimmed === '') throw fail();
  let seconds: number;
  if (/^\d+(\.\d+)?$/.test(trimmed)) seconds = Number(trimmed);
  else {
    const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)([hms])/g)];
    if (parts.map((p) => p[0]).join('') !== trimmed) throw fail();
    const units = parts.map((p) => p[2]!);
    // each unit once, largest first: 1h30m, not 30m1h or 1m1m
    if (units.join('') !== ['h', 'm', 's'].filter((u) => units.includes(u)).join('')) throw fail();
    seconds = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  }
  if (!(seconds > 0) || seconds > 7 * 24 * 3600) {
    throw new CliError('usage', `--${name} must be more than 0 and at most a week, got "${text}"`);
  }
  return seconds;
}
