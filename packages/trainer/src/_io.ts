import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { temporaryName } from '@litter/dataset';
import type { ZodType } from 'zod';
import { TrainerError } from './errors.js';
import { firstProblem } from './run-schemas.js';

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** How a file read back is checked: its schema, and what the user can do when it does not fit. */
export interface JsonCheck {
  schema: ZodType;
  /** E.g. `start a new run (--out NEW)`. */
  advice: string;
}

/**
 * Reads and parses a JSON file, checked against `check.schema` when given; a missing, broken or ill-formed file
 * becomes a one-line {@link TrainerError} naming the file (`code` for a missing one, `checkpoint-corrupt` else).
 */
export async function readJson<T>(
  path: string,
  code: 'run-not-found' | 'checkpoint-corrupt',
  check?: JsonCheck,
): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TrainerError(code, `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  const advice = check?.advice ?? 'start a new run';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TrainerError(
      'checkpoint-corrupt',
      `${path} is not valid JSON (${(error as Error).message}); the run directory is damaged: ${advice}`,
      { cause: error },
    );
  }
  if (check) {
    const parsed = check.schema.safeParse(value);
    if (!parsed.success) {
      throw new TrainerError(
        'checkpoint-corrupt',
        `${path} is damaged (${firstProblem(parsed.error)}): ${advice}`,
      );
    }
  }
  return value as T;
}

/** A fresh temporary folder next to `finalDir`, to be filled and then put in place with {@link replaceDirectory}. */
export async function makeTemporaryDirectory(finalDir: string): Promise<string> {
  const temporary = temporaryName(finalDir);
  await mkdir(temporary, { recursive: true });
  return temporary;
}

/** Where the previous version of a directory waits while {@link replaceDirectory} swaps in the new one. */
export const previousDirectory = (dir: string) => `${dir}.previous`;

/**
 * Puts a completely written `temporaryDir` in place of `finalDir`. A directory cannot be renamed over a non-empty
 * one, so the old version moves aside first; a crash between the two renames leaves it at
 * {@link previousDirectory}, where {@link recoverDirectory} finds it.
 */
export async function replaceDirectory(temporaryDir: string, finalDir: string): Promise<void> {
  const previous = previousDirectory(finalDir);
  await rm(previous, { recursive: true, force: true });
  if (await exists(finalDir)) await rename(finalDir, previous);
  await rename(temporaryDir, finalDir);
  await rm(previous, { recursive: true, force: true });
}

/** Undoes a swap that {@link replaceDirectory} did not finish: returns whether `dir` exists afterwards. */
export async function recoverDirectory(dir: string): Promise<boolean> {
  if (await exists(dir)) return true;
  const previous = previousDirectory(dir);
  if (!(await exists(previous))) return false;
  await rename(previous, dir);
  return true;
}
