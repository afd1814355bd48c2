import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { bin, fixture, type Result, repoRoot } from '../_litter.js';

const peakHook = fileURLToPath(new URL('./_peak-memory.mjs', import.meta.url));

/** Small training runs: a few steps of a small model, on the wasm backend. */
export const SMALL = ['--width', '16', '--height', '16', '--batch-size', '8', '--backend', 'wasm'];

/** A fresh folder under the OS's temporary folder (removed by {@link cleanUp}). */
const made: string[] = [];
export function workDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'litter-hostile-'));
  made.push(dir);
  return dir;
}
export function cleanUp(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A copy of test/fixtures/blender-three-wide (75 renders of 96x72, Can, Cube, Sphere) in `dir`. */
export function copyDataset(dir: string, name = 'three'): string {
  const target = path.join(dir, name);
  cpSync(fixture, target, { recursive: true, filter: (f) => !f.includes('litter-cache') });
  return target;
}

/** Every file under `dir` with the SHA-256 of its bytes (folders as `<dir>`), to compare before and after. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    out[name] = statSync(file).isDirectory()
      ? '<dir>'
      : createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  return out;
}

export interface Measured extends Result {
  /** Peak resident memory of the child, MiB. */
  peakMiB: number;
}

/** Runs the built `litter` to completion within `seconds` (killed after: a hang fails, never blocks), measuring its peak memory. */
export function run(
  args: readonly string[],
  options: { cwd?: string; seconds?: number; env?: Record<string, string> } = {},
): Promise<Measured> {
  const peakFile = path.join(workDir(), 'peak');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', peakHook, bin, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, NO_COLOR: '1', CI: '1', ...options.env, LITTER_TEST_PEAK_FILE: peakFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.seconds ?? 90) * 1000);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const kB = existsSync(peakFile) ? Number(readFileSync(peakFile, 'utf8')) : Number.NaN;
      resolve({ code, signal, stdout, stderr, peakMiB: kB / 1024 });
    });
  });
}

/** An input problem: exit 1 and exactly one line on stderr, from a litter package, matching `pattern`. */
export function expectOneLine(result: Result, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^@litter\/[\w-]+: /);
  expect(lines[0]).not.toMatch(/unexpected error/);
  expect(lines[0]).toMatch(pattern);
}
