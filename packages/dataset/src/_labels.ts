/*
 * labels.json's parsing and checks behind the public `parseLabels` and `readLabels` (`labels.ts`), in steps
 * that `loadDataset` runs separately (names first, then the schema in slices while images decode).
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, posix, win32 } from 'node:path';
import { z } from 'zod';
import { resolveInside } from './_files.js';
import { DatasetError, problemsError, showValue } from './errors.js';
import type { LabelEntry, NormalizedBox } from './label-entry.js';

const coordinate = z.number().min(0).max(1);

const boxSchema = z
  .object({ x1: coordinate, y1: coordinate, x2: coordinate, y2: coordinate })
  .superRefine((box, ctx) => {
    // Only compare coordinates that are themselves valid (zod also runs this after their own issues).
    if (![box.x1, box.y1, box.x2, box.y2].every((v) => typeof v === 'number' && v >= 0 && v <= 1)) return;
    if (box.x1 > box.x2)
      ctx.addIssue({ code: 'custom', message: `x1 = ${box.x1} is greater than x2 = ${box.x2}` });
    if (box.y1 > box.y2)
      ctx.addIssue({ code: 'custom', message: `y1 = ${box.y1} is greater than y2 = ${box.y2}` });
  });

/** The schema of `labels.json` (structure and ranges; names and paths are checked after it). */
export const labelsSchema = z.array(
  z.object({
    image: z.string().min(1),
    meshes: z.record(z.string().min(1), boxSchema),
  }),
);

export interface Problem {
  entry: number;
  text: string;
}

/** Step 1 of {@link parseLabels}: the JSON, as an array. */
export function parseLabelsJson(json: string, file: string): unknown[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json.charCodeAt(0) === 0xfeff ? json.slice(1) : json);
  } catch (error) {
    throw new DatasetError(
      'labels-invalid',
      `${file} is not valid JSON: ${describeJsonError(error, json)}. Fix the file (it should be an array of { "image", "meshes" } entries).`,
      { cause: error },
    );
  }
  if (!Array.isArray(raw)) {
    throw new DatasetError(
      'labels-invalid',
      `${file} must be a JSON array of { "image": ..., "meshes": { ... } } entries, got ${typeName(raw)}`,
    );
  }
  return raw;
}

/** Step 2 of {@link parseLabels}: the schema and the image names. */
export function validateLabels(raw: unknown[], file: string): LabelEntry[] {
  const plain = parsePlainlyValid(raw);
  if (plain) {
    throwProblems(checkImageNames(raw, file), file);
    return plain;
  }
  const { entries, problems } = checkSchema(raw, 0, raw, file);
  throwProblems([...problems, ...checkImageNames(raw, file)], file);
  return entries;
}

/**
 * The schema's verdict on `part` (entries `start`... of `raw`): the entries as {@link
 * parsePlainlyValid} gives them (meshes without prototype, in the file's order), or the problems. zod's records
 * skip a key named `__proto__` (neither checked nor kept), so such a mesh's box is checked and kept here.
 */
export function checkSchema(
  part: readonly unknown[],
  start: number,
  raw: readonly unknown[],
  file: string,
): { entries: LabelEntry[]; problems: Problem[] } {
  const parsed = labelsSchema.safeParse(part);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const [first, ...rest] = issue.path;
        const path = typeof first === 'number' ? [first + start, ...rest] : issue.path;
        return formatIssue({ ...issue, path }, raw, file);
      });
  const protoBoxes = new Map<number, NormalizedBox>();
  part.forEach((entry, index) => {
    const meshes = (entry as { meshes?: unknown } | null)?.meshes;
    if (typeof meshes !== 'object' || meshes === null || !Object.hasOwn(meshes, '__proto__')) return;
    const box = boxSchema.safeParse(Object.getOwnPropertyDescriptor(meshes, '__proto__')?.value);
    if (box.success) protoBoxes.set(index, box.data);
    for (const issue of box.success ? [] : box.error.issues) {
      const path = [start + index, 'meshes', '__proto__', ...issue.path];
      problems.push(formatIssue({ ...issue, path }, raw, file));
    }
  });
  if (!parsed.success || problems.length > 0) return { entries: [], problems };
  const entries = (parsed.data as LabelEntry[]).map(({ image, meshes }, index) => {
    const own: Record<string, NormalizedBox> = Object.create(null);
    const source = (part[index] as { meshes: object }).meshes;
    for (const name of Object.keys(source)) {
      own[name] = name === '__proto__' ? protoBoxes.get(index)! : meshes[name]!;
    }
    return { image, meshes: own };
  });
  return { entries, problems };
}

/**
 * {@link validateLabels} in slices of entries, yielding to the event loop between them, so that
 * decoding threads started beforehand keep getting work while this thread validates.
 */
export async function validateLabelsInSlices(
  raw: unknown[],
  file: string,
  slice = 256,
): Promise<LabelEntry[]> {
  const plain = parsePlainlyValid(raw);
  if (plain) {
    throwProblems(checkImageNames(raw, file), file);
    return plain;
  }
  const problems: Problem[] = [];
  const entries: LabelEntry[] = [];
  for (let start = 0; start < raw.length; start += slice) {
    const checked = checkSchema(raw.slice(start, start + slice), start, raw, file);
    entries.push(...checked.entries);
    problems.push(...checked.problems);
    await new Promise((resolve) => setImmediate(resolve));
  }
  throwProblems([...problems, ...checkImageNames(raw, file)], file);
  return entries;
}

/**
 * The common case without zod: when every entry plainly has the valid shape, the entries as
 * `labelsSchema` would return them (new objects with only the known keys, in the same order); otherwise
 * undefined, and zod runs to report every problem. It accepts a subset of what the schema accepts (anything
 * unusual, such as an object with another prototype or an invalid value, is left to zod), so messages and
 * results do not change. Its `meshes` have no prototype, so that every name (`__proto__`, `constructor`) is
 * an own key like any other, which zod's records would not keep. Why: a process's first zod parse of 2,000 entries takes 30-90 ms
 * (zod compiles its schemas and V8 its code), this loop 1-3 ms, and a cold build validates labels.json
 * while it decodes, on the same thread.
 */
export function parsePlainlyValid(raw: readonly unknown[]): LabelEntry[] | undefined {
  const entries: LabelEntry[] = new Array(raw.length);
  for (let index = 0; index < raw.length; index++) {
    const entry = raw[index];
    if (!isPlainObject(entry)) return undefined;
    const { image, meshes } = entry;
    if (typeof image !== 'string' || image.length === 0 || !isPlainObject(meshes)) return undefined;
    // Symbol keys cannot come from JSON, but zod would reject them: leave such objects to it.
    if (Object.getOwnPropertySymbols(meshes).length > 0) return undefined;
    // No prototype: a mesh may be named `__proto__`, `constructor` or `toString` like any other.
    const boxes: Record<string, NormalizedBox> = Object.create(null);
    for (const name in meshes) {
      if (!Object.hasOwn(meshes, name) || name.length === 0) return undefined;
      const box = meshes[name];
      if (!isPlainObject(box)) return undefined;
      const { x1, y1, x2, y2 } = box;
      if (!isCoordinate(x1) || !isCoordinate(y1) || !isCoordinate(x2) || !isCoordinate(y2)) return undefined;
      if (x1 > x2 || y1 > y2) return undefined;
      boxes[name] = { x1, y1, x2, y2 };
    }
    entries[index] = { image, meshes: boxes };
  }
  return entries;
}

function isCoordinate(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= 1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Lexical checks of the image names only (cheap): absolute paths, leaving the folder, duplicates. */
export function imageNameProblems(raw: unknown[], file: string): string[] {
  return checkImageNames(raw, file).map((p) => p.text);
}

function throwProblems(problems: Problem[], file: string): void {
  if (problems.length === 0) return;
  problems.sort((a, b) => a.entry - b.entry); // stable: issues of one entry keep their order
  throw problemsError(
    'labels-invalid',
    `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:`,
    problems.map((p) => p.text),
    'Fix these entries (format: an array of { "image": "name.png", "meshes": { "Name": { "x1", "y1", "x2", "y2" in [0, 1] } } }).',
  );
}

/** Reads the file's bytes, turning a missing file into `labels-not-found`. */
export async function readLabelsBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw labelsNotFound(path, error);
  }
}

export async function readLabelsText(path: string): Promise<string> {
  return (await readLabelsBytes(path)).toString('utf8');
}

export function labelsNotFound(path: string, error: unknown): DatasetError {
  const code = (error as NodeJS.ErrnoException).code;
  const what = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
  return new DatasetError(
    'labels-not-found',
    `${path} ${what}: pass the folder of a Blender dataset or the path of its labels.json`,
    { cause: error },
  );
}

/**
 * Absolute real paths of the entries' images. Throws `labels-invalid` listing every image that a
 * symbolic link leads out of `root`. An image that does not exist keeps its lexical path (loading reports it).
 */
export function resolveImagePaths(
  root: string,
  entries: readonly LabelEntry[],
  file = 'labels.json',
): string[] {
  const realRoot = realpathSync.native(root);
  const folders = new Map<string, string>();
  const outside: { index: number; image: string; path: string }[] = [];
  const paths = entries.map((entry, index) => {
    const lexical = join(root, entry.image);
    try {
      const resolved = resolveInside(realRoot, lexical, folders);
      if (!resolved.inside) outside.push({ index, image: entry.image, path: resolved.path });
      return resolved.path;
    } catch {
      return lexical;
    }
  });
  if (outside.length > 0) throw outsideError(root, realRoot, file, outside);
  return paths;
}

/** The error for images that symbolic links lead out of the dataset folder. */
export function outsideError(
  root: string,
  realRoot: string,
  file: string,
  outside: readonly { index: number; image: string; path: string }[],
): DatasetError {
  return problemsError(
    'labels-invalid',
    `${join(root, file)}: ${outside.length} image path${outside.length === 1 ? ' leads' : 's lead'} out of the dataset folder:`,
    outside.map(
      ({ index, image, path }) =>
        `${file} entry ${index} (${image}): image "${image}" leads to ${path}, outside the dataset folder ${realRoot} (through a symbolic link)`,
    ),
    'Copy those images into the dataset folder (symbolic links must stay inside it).',
  );
}

/** Characters that make an image name more than a plain file name. */
const UNUSUAL_NAME = /[/\\:\0]/;

/**
 * Whether an image name is a plain file name: no separator (either kind), drive colon or NUL, and
 * not `.` or `..`. Such a name is its own normal form, is relative and stays in its folder.
 */
export function isPlainFileName(image: string): boolean {
  return image !== '' && image !== '.' && image !== '..' && !UNUSUAL_NAME.test(image);
}

/** Lexical checks of the image names: absolute, leaving the folder, duplicates. */
function checkImageNames(raw: readonly unknown[], file: string): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  raw.forEach((entry, index) => {
    const image = (entry as { image?: unknown } | null)?.image;
    if (typeof image !== 'string' || image.length === 0) return; // the schema reports it
    // A plain file name (no separator, drive colon or NUL, not '.' or '..') is its own normal form: only
    // duplicates are left to check, without the cost of normalising 2,000 names twice per build.
    const normal = isPlainFileName(image) ? image : normalImageName(image, index, file, problems);
    if (normal === undefined) return;
    const first = seen.get(normal);
    if (first !== undefined) {
      problems.push({
        entry: index,
        text: `${file} entry ${index} (${image}): image "${image}" is listed twice (also entry ${first})`,
      });
    } else {
      seen.set(normal, index);
    }
  });
  return problems;
}

/**
 * The normal form of an image name that is not a plain file name, or undefined after adding its lexical
 * problem (NUL, absolute, leaving the folder, not a file) to `problems`.
 */
function normalImageName(
  image: string,
  index: number,
  file: string,
  problems: Problem[],
): string | undefined {
  const where = `${file} entry ${index} (${image})`;
  const problem = (text: string) => {
    problems.push({ entry: index, text: `${where}: ${text}` });
    return undefined;
  };
  if (image.includes('\0')) return problem('image contains a NUL character');
  if (posix.isAbsolute(image) || win32.isAbsolute(image)) {
    return problem(`image "${image}" is an absolute path; image paths are relative to the folder of ${file}`);
  }
  // Backslashes count as separators too, so that "..\\x.png" written on Windows is caught as well.
  const normal = posix.normalize(image.replaceAll('\\', '/'));
  if (normal === '..' || normal.startsWith('../'))
    return problem(`image "${image}" leads out of the dataset folder`);
  if (normal === '.' || normal.endsWith('/')) return problem(`image "${image}" is not a file name`);
  return normal;
}

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  expected?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
}

function formatIssue(issue: ZodIssueLike, raw: readonly unknown[], file: string): Problem {
  const [first, ...rest] = issue.path;
  const entry = typeof first === 'number' ? first : -1;
  const entryValue = entry >= 0 ? raw[entry] : undefined;
  const image = (entryValue as { image?: unknown } | null | undefined)?.image;
  const where =
    entry < 0
      ? file
      : `${file} entry ${entry}${typeof image === 'string' && image !== '' ? ` (${image})` : ''}`;
  const field = rest.map(String).join('.');
  const value = valueAt(raw, issue.path);
  const subject = field === '' ? 'the entry' : field;
  let text: string;
  switch (issue.code) {
    case 'invalid_type':
      text =
        value === undefined
          ? `${subject} is missing`
          : `${subject} = ${showValue(value)} is not ${article(issue.expected)}`;
      break;
    case 'too_small':
    case 'too_big':
      text =
        issue.origin === 'number'
          ? `${subject} = ${showValue(value)} is outside [0, 1]`
          : issue.origin === 'string'
            ? `${subject} is empty`
            : `${subject}: ${issue.message}`;
      break;
    case 'invalid_key':
      text = `${field.slice(0, field.lastIndexOf('.'))} has a mesh with an empty name`;
      break;
    case 'custom':
      text = `${subject}: ${issue.message}`;
      break;
    default:
      text = `${subject}: ${issue.message}`;
  }
  return { entry, text: `${where}: ${text}` };
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function article(expected: string | undefined): string {
  switch (expected) {
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'object':
    case 'record':
      return 'an object';
    default:
      return expected ? `of type ${expected}` : 'valid';
  }
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function describeJsonError(error: unknown, json: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /position (\d+)/.exec(message);
  if (!match) return message;
  const position = Number(match[1]);
  const before = json.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `${message} (line ${line}, column ${column})`;
}
