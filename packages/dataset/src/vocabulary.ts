import { readFile } from 'node:fs/promises';
import { DatasetError, problemsError, showValue } from './errors.js';
import type { LabelEntry } from './labels.js';

/**
 * The class names of a dataset: index i of every multi-hot vector and box means `vocabulary[i]`.
 *
 * Without `pinned`: every mesh name of `entries`, sorted by UTF-16 code units (JavaScript's default sort:
 * locale-independent, so the same on every machine) and deduplicated.
 *
 * With `pinned`: exactly `pinned`, in its order, so that a model trained on one dataset keeps its class
 * indices on another. A mesh name that is not in it is an error naming it.
 *
 * @throws DatasetError `vocabulary-unknown-label`, `vocabulary-invalid`
 * @example
 * buildVocabulary(entries);                          // ['Can', 'Cube', 'Sphere']
 * buildVocabulary(entries, ['Sphere', 'Cube', 'Can']); // pinned order
 */
export function buildVocabulary(entries: readonly LabelEntry[], pinned?: readonly string[]): string[] {
  if (pinned === undefined) {
    const names = new Set<string>();
    for (const entry of entries) for (const name of Object.keys(entry.meshes)) names.add(name);
    return [...names].sort();
  }
  const vocabulary = checkVocabulary(pinned, 'the pinned vocabulary');
  const known = new Set(vocabulary);
  const unknown = new Map<string, { count: number; first: string }>();
  for (const entry of entries) {
    for (const name of Object.keys(entry.meshes)) {
      if (known.has(name)) continue;
      const seen = unknown.get(name);
      if (seen) seen.count++;
      else unknown.set(name, { count: 1, first: entry.image });
    }
  }
  if (unknown.size > 0) {
    const problems = [...unknown].map(
      ([name, { count, first }]) =>
        `label "${name}" (in ${count} image${count === 1 ? '' : 's'}, first ${first}) is not in the pinned vocabulary`,
    );
    const error = problemsError(
      'vocabulary-unknown-label',
      `${unknown.size} label${unknown.size === 1 ? ' is' : 's are'} not in the pinned vocabulary [${vocabulary.join(', ')}]:`,
      problems,
      'Add them to the vocabulary (new classes go at the end to keep the existing indices), or remove them from labels.json.',
    );
    throw error;
  }
  return vocabulary;
}

/**
 * Parses a vocabulary file's text: a JSON array of names, or one name per line (blank lines and lines
 * starting with `#` are ignored, names are trimmed).
 *
 * @throws DatasetError `vocabulary-invalid`
 */
export function parseVocabulary(text: string, file = 'vocabulary'): string[] {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  let names: unknown;
  if (trimmed.startsWith('[')) {
    try {
      names = JSON.parse(trimmed);
    } catch (error) {
      throw new DatasetError(
        'vocabulary-invalid',
        `${file} looks like JSON but does not parse (${(error as Error).message}): write a JSON array of names or one name per line`,
        { cause: error },
      );
    }
  } else {
    names = trimmed
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
  }
  return checkVocabulary(names, file);
}

/**
 * Reads a vocabulary file (JSON array, such as a run's `vocabulary.json`, or one name per line).
 *
 * @throws DatasetError `vocabulary-invalid`
 * @example
 * const dataset = await loadDataset('data', { vocabulary: await readVocabularyFile('runs/a/vocabulary.json') });
 */
export async function readVocabularyFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new DatasetError(
      'vocabulary-invalid',
      `cannot read the vocabulary file ${path} (${(error as NodeJS.ErrnoException).code ?? error}): check the path`,
      { cause: error },
    );
  }
  return parseVocabulary(text, path);
}

function checkVocabulary(names: unknown, what: string): string[] {
  if (!Array.isArray(names)) {
    throw new DatasetError('vocabulary-invalid', `${what} must be an array of class names`);
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  names.forEach((name, index) => {
    if (typeof name !== 'string' || name === '') {
      problems.push(`entry ${index} = ${showValue(name)} is not a non-empty string`);
    } else if (seen.has(name)) {
      problems.push(`"${name}" is listed twice`);
    } else {
      seen.add(name);
    }
  });
  if (names.length === 0) problems.push('it is empty');
  if (problems.length > 0) {
    throw problemsError('vocabulary-invalid', `${what} is not a valid vocabulary:`, problems);
  }
  return [...(names as string[])];
}
