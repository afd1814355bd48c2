import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Io, writeLine } from './_io.js';

/** A box in pixels of the original image, top-left origin, y down. */
export interface PixelBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** Pixels to one decimal: boxes come from a small network, more digits would be noise. */
const pixels = (value: number, size: number) => Math.round(Math.min(1, Math.max(0, value)) * size * 10) / 10;

/** A normalised box (y down) in pixels of an image of `width` x `height`. */
export function toPixels(
  box: { x1: number; y1: number; x2: number; y2: number },
  size: { width: number; height: number },
): PixelBox {
  return {
    x1: pixels(box.x1, size.width),
    y1: pixels(box.y1, size.height),
    x2: pixels(box.x2, size.width),
    y2: pixels(box.y2, size.height),
  };
}

/** True boxes of one image: class name and `[x1, y1, x2, y2]` normalised, y down. */
export type TrueBoxes = { name: string; box: [number, number, number, number] }[];

/**
 * Finds the labels of images: in `labelsFile` when given, else in a `labels.json` next to each image. An image
 * that no labels file lists has no true boxes. A broken labels file given with `--labels` is an error; one that
 * is merely next to the images is skipped with a warning.
 */
export class LabelLookup {
  readonly #explicit: string | undefined;
  readonly #io: Io;
  readonly #files = new Map<string, Promise<Map<string, TrueBoxes> | undefined>>();

  constructor(io: Io, labelsFile: string | undefined) {
    this.#io = io;
    this.#explicit = labelsFile;
  }

  async trueBoxes(image: string): Promise<TrueBoxes | undefined> {
    const file = this.#explicit ?? path.join(path.dirname(image), 'labels.json');
    if (this.#explicit === undefined && !existsSync(file)) return undefined;
    let entries = this.#files.get(file);
    if (!entries) {
      entries = this.#read(file);
      this.#files.set(file, entries);
    }
    return (await entries)?.get(path.resolve(image));
  }

  async #read(file: string): Promise<Map<string, TrueBoxes> | undefined> {
    const { parseLabels, toImageBox } = await import('@litter/dataset');
    let entries: ReturnType<typeof parseLabels>;
    try {
      entries = parseLabels(await readFile(file, 'utf8'), { file });
    } catch (error) {
      if (this.#explicit !== undefined) throw error;
      writeLine(
        this.#io.stderr,
        `@litter/cli: ${file} cannot be read (${(error as Error).message.split('\n')[0]}); its images are drawn without true boxes`,
      );
      return undefined;
    }
    const byImage = new Map<string, TrueBoxes>();
    for (const entry of entries) {
      byImage.set(
        path.resolve(path.dirname(file), entry.image),
        Object.entries(entry.meshes).map(([name, box]) => ({ name, box: toImageBox(box) })),
      );
    }
    return byImage;
  }
}

/**
 * `DIR/name.png` for each image; a name that another image of this call, a file already in DIR or one of the
 * input images has gets `-2`, `-3`...: annotating never replaces a file, the inputs included.
 */
export function annotatedPaths(
  dir: string,
  images: readonly string[],
  taken: (file: string) => boolean = existsSync,
): string[] {
  const used = new Set<string>(images.map((image) => path.resolve(image)));
  return images.map((image) => {
    const stem = path.basename(image, path.extname(image));
    const at = (n: number) => path.resolve(dir, n === 1 ? `${stem}.png` : `${stem}-${n}.png`);
    let n = 1;
    while (used.has(at(n)) || taken(at(n))) n++;
    used.add(at(n));
    return at(n);
  });
}

/** What is drawn on one image. */
export interface Annotation {
  image: string;
  out: string;
  /** Classes predicted visible, with their box (normalised, y down) and probability. */
  predicted: { name: string; probability: number; box: { x1: number; y1: number; x2: number; y2: number } }[];
  truth: TrueBoxes | undefined;
}

/**
 * Draws the predicted boxes (magenta, with class and probability) and the true ones (cyan, dashed, when known)
 * on each image and writes it as PNG (@litter/report's annotateImage: sharp with an SVG overlay). Small images
 * are scaled up by a whole factor so that the labels are readable.
 */
export async function writeAnnotations(annotations: readonly Annotation[]): Promise<void> {
  const { annotateImage, PREDICTED_BOX_COLOR, TRUE_BOX_COLOR } = await import('@litter/report');
  for (const { image, out, predicted, truth } of annotations) {
    await annotateImage(
      image,
      [
        ...(truth ?? []).map(({ name, box }) => ({
          box,
          label: name,
          color: TRUE_BOX_COLOR,
          dashed: true,
          labelBelow: true,
        })),
        ...predicted.map(({ name, probability, box }) => ({
          box: [box.x1, box.y1, box.x2, box.y2],
          label: `${name} ${probability.toFixed(2)}`,
          color: PREDICTED_BOX_COLOR,
        })),
      ],
      out,
    );
  }
}
