import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetError, imageSize, imageSizeProblem, parseLabels, sceneOf } from '@litter/dataset';
import { defineCommand } from 'citty';
import { commonArgs, stringFlag } from '../_args.js';
import { type Io, ioOf, writeJson, writeLine } from '../_io.js';
import { datasetPath } from '../_paths.js';
import { formatTable } from '../_table.js';
import { CliError, ExitCode } from '../errors.js';

/** What `litter inspect --json` prints (one object). */
export interface Inspection {
  /** The labels file. */
  dataset: string;
  /** Entries in labels.json. */
  images: number;
  /** Class name -> images where it is visible. */
  classes: Record<string, number>;
  /** Class name -> class name -> images where both are visible (the diagonal is `classes`). */
  cooccurrence: Record<string, Record<string, number>>;
  /** Visible classes joined by `+` (`none` for an empty image) -> images. */
  labelSets: Record<string, number>;
  /** Scene -> images. */
  scenes: Record<string, number>;
  /** `WIDTHxHEIGHT` -> images (unreadable images left out). */
  sizes: Record<string, number>;
  /** Everything that stops or hurts training, one sentence each; empty when the dataset is fine. */
  problems: string[];
}

interface LooseEntry {
  image: string;
  meshes: string[];
}

/** Entries as far as they can be read, for counting even when labels.json breaks the format. */
function looseEntries(raw: unknown): LooseEntry[] {
  if (!Array.isArray(raw)) return [];
  return raw.flatMap((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null) return [];
    const { image, meshes } = entry as { image?: unknown; meshes?: unknown };
    if (typeof image !== 'string' || image === '') return [];
    const names =
      typeof meshes === 'object' && meshes !== null && !Array.isArray(meshes) ? Object.keys(meshes) : [];
    return [{ image, meshes: names }];
  });
}

async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const increment = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

/**
 * A counter keyed by names from the dataset: no prototype, so that a class or label set named `constructor`
 * or `__proto__` counts like any other (on `{}` it would read Object's own properties).
 */
function counter(names: readonly string[] = []): Record<string, number> {
  const counts: Record<string, number> = Object.create(null);
  for (const name of names) counts[name] = 0;
  return counts;
}

/** Reads a dataset's labels and image headers (no decoding) and collects statistics and problems. */
export async function inspectDataset(labelsPath: string, scenePattern?: string): Promise<Inspection> {
  const file = path.basename(labelsPath);
  const root = path.dirname(labelsPath);
  const text = await readFile(labelsPath, 'utf8');
  const problems: string[] = [];
  let entries: LooseEntry[];
  try {
    entries = parseLabels(text, { file }).map((entry) => ({
      image: entry.image,
      meshes: Object.keys(entry.meshes),
    }));
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    problems.push(
      ...(error.problems.length > 0 ? error.problems : [error.message.replace(/^@litter\/dataset: /, '')]),
    );
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    entries = looseEntries(raw);
  }

  const names = [...new Set(entries.flatMap((entry) => entry.meshes))].sort();
  const classes = counter(names);
  const cooccurrence: Record<string, Record<string, number>> = Object.create(null);
  for (const name of names) cooccurrence[name] = counter(names);
  const labelSets = counter();
  const scenes = counter();
  for (const entry of entries) {
    const visible = [...new Set(entry.meshes)].sort();
    for (const a of visible) {
      increment(classes, a);
      for (const b of visible) increment(cooccurrence[a] as Record<string, number>, b);
    }
    increment(labelSets, visible.length === 0 ? 'none' : visible.join('+'));
    try {
      increment(scenes, sceneOf(entry.image, scenePattern));
    } catch (error) {
      if (!(error instanceof DatasetError)) throw error;
      problems.push(error.message.replace(/^@litter\/dataset: /, ''));
      break;
    }
  }

  const sizes = counter();
  const unreadable: string[] = [];
  const measured = await mapLimited(entries, 16, async (entry) => {
    const file = path.resolve(root, entry.image);
    if (!existsSync(file)) return { image: entry.image, problem: 'does not exist' };
    try {
      const { width, height } = await imageSize(file);
      // The limit that decoding (litter train) applies: too large here is too large there.
      const tooLarge = imageSizeProblem(width, height);
      if (tooLarge) return { image: entry.image, size: `${width}x${height}`, problem: tooLarge };
      return { image: entry.image, size: `${width}x${height}` };
    } catch (error) {
      return { image: entry.image, problem: (error as Error).message.replace(/^@litter\/dataset: /, '') };
    }
  });
  for (const result of measured) {
    if (result.size) increment(sizes, result.size);
    if (result.problem !== undefined) unreadable.push(`${result.image}: ${result.problem}`);
  }
  if (unreadable.length > 0) {
    problems.push(
      `${unreadable.length} image${unreadable.length === 1 ? '' : 's'} cannot be read or decoded`,
    );
    problems.push(...unreadable);
  }

  if (entries.length > 0) {
    for (const name of names) {
      if (classes[name] === entries.length) {
        problems.push(`class ${name} is visible in every image: there is nothing to tell apart`);
      }
    }
    if (names.length === 0) problems.push('no image has any visible mesh: there are no classes to learn');
    if (Object.keys(scenes).length === 1) {
      problems.push(
        `every image is in scene ${Object.keys(scenes)[0]}: no scene can be held out for validation (render more scenes, or give --scene-pattern)`,
      );
    }
  } else if (problems.length === 0) {
    problems.push(`${file} lists no images`);
  }

  return {
    dataset: labelsPath,
    images: entries.length,
    classes,
    cooccurrence,
    labelSets,
    scenes,
    sizes,
    problems,
  };
}

/** Problems listed in the readable report; `--json` has them all. */
const SHOWN_PROBLEMS = 30;

const percent = (count: number, total: number) =>
  total === 0 ? '-' : `${((100 * count) / total).toFixed(1)}%`;

function render(io: Io, inspection: Inspection): void {
  const { images } = inspection;
  const names = Object.keys(inspection.classes);
  const out = (line = '') => writeLine(io.stdout, line);
  const sizes = Object.entries(inspection.sizes).sort((a, b) => b[1] - a[1]);
  out(`dataset: ${inspection.dataset}`);
  out(
    `${images} images in ${Object.keys(inspection.scenes).length} scenes, ${names.length} classes; image size ${sizes.map(([size, n]) => (sizes.length === 1 ? size : `${size} (${n})`)).join(', ') || '-'}`,
  );
  out();
  out('Classes (images where visible)');
  out(
    formatTable([
      ['class', 'images', 'share'],
      ...names.map((name) => [
        name,
        String(inspection.classes[name]),
        percent(inspection.classes[name] ?? 0, images),
      ]),
    ]),
  );
  if (names.length > 1) {
    out();
    out('Co-occurrence (images where both are visible)');
    out(
      formatTable([
        ['', ...names],
        ...names.map((a) => [a, ...names.map((b) => String(inspection.cooccurrence[a]?.[b] ?? 0))]),
      ]),
    );
  }
  out();
  out('Label sets');
  out(
    formatTable([
      ['visible', 'images'],
      ...Object.entries(inspection.labelSets)
        .sort((a, b) => b[1] - a[1])
        .map(([set, n]) => [set, String(n)]),
    ]),
  );
  out();
  out('Images per scene');
  out(
    formatTable([
      ['scene', 'images'],
      ...Object.entries(inspection.scenes).map(([scene, n]) => [scene, String(n)]),
    ]),
  );
  out();
  if (inspection.problems.length === 0) out('No problems found.');
  else {
    out(`Problems (${inspection.problems.length})`);
    for (const problem of inspection.problems.slice(0, SHOWN_PROBLEMS)) out(`  - ${problem}`);
    const more = inspection.problems.length - SHOWN_PROBLEMS;
    if (more > 0) out(`  ... and ${more} more (--json lists all)`);
  }
}

export default defineCommand({
  meta: {
    name: 'inspect',
    description: 'Show class counts and co-occurrence, images per scene, image sizes and label problems',
  },
  args: {
    dataset: {
      type: 'positional',
      required: true,
      valueHint: 'DATASET',
      description: 'Folder with labels.json (or the file)',
    },
    'scene-pattern': {
      type: 'string',
      valueHint: 'REGEX',
      description:
        "How to find an image's scene: first capture group (default: the name before the first '-')",
    },
    json: {
      type: 'boolean',
      description:
        'Print one JSON object: dataset, images, classes, cooccurrence, labelSets, scenes, sizes, problems',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const scenePattern = stringFlag('scene-pattern', args['scene-pattern']);
    if (scenePattern !== undefined) {
      try {
        new RegExp(scenePattern);
      } catch {
        throw new CliError('usage', `--scene-pattern is not a valid regular expression: ${scenePattern}`);
      }
    }
    const dir = datasetPath(io, args.dataset);
    const labelsPath = dir.endsWith('.json') ? dir : path.join(dir, 'labels.json');
    const inspection = await inspectDataset(labelsPath, scenePattern);
    if (args.json) writeJson(io, inspection);
    else render(io, inspection);
    if (inspection.problems.length > 0) {
      io.stderr.write(
        `@litter/cli: ${labelsPath} has ${inspection.problems.length} problem${inspection.problems.length === 1 ? '' : 's'} (listed ${args.json ? 'in "problems"' : 'above'}); fix them before training\n`,
      );
      return ExitCode.input;
    }
    return ExitCode.ok;
  },
});
