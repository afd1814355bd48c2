import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ClassPrediction } from '@litter/trainer';
import { defineCommand } from 'citty';
import { type Annotation, annotatedPaths, LabelLookup, toPixels, writeAnnotations } from '../_annotate.js';
import { commonArgs, markVariadic, runArgs, runFlags, stringFlag } from '../_args.js';
import { type Io, ioOf, resolvePath, writeJson, writeLine } from '../_io.js';
import { formatTable } from '../_table.js';
import { CliError, ExitCode } from '../errors.js';

export default markVariadic(
  defineCommand({
    meta: {
      name: 'predict',
      description: 'Predict which classes are visible in images, with the thresholds tuned on validation',
    },
    args: {
      model: {
        type: 'positional',
        required: true,
        valueHint: 'MODEL',
        description: 'A run directory (its best checkpoint) or a checkpoint folder with model.json',
      },
      image: {
        type: 'positional',
        required: true,
        valueHint: 'IMAGE...',
        description: 'One or more image files (PNG, JPEG, ...)',
      },
      ...runArgs,
      annotate: {
        type: 'string',
        valueHint: 'DIR',
        description:
          'Write each image into DIR as PNG with its predicted boxes and class names (magenta) and the true boxes (cyan, dashed) when labels are known; needs a model trained with --boxes',
      },
      labels: {
        type: 'string',
        valueHint: 'FILE',
        description:
          'labels.json with the true boxes for --annotate (default: a labels.json next to each image)',
      },
      json: {
        type: 'boolean',
        description:
          'One JSON object per image and line: {"image", "classes": {NAME: {"probability", "visible", "threshold", "box"?, "score"?}}, "annotated"?}; box {x1, y1, x2, y2} in pixels of the image, top-left origin; score: the box\'s confidence (presence and place)',
      },
      ...commonArgs,
    },
    async run({ args, ...context }) {
      const io = ioOf(context);
      const { checkpoint, backend } = runFlags(args);
      // citty fills the declared positionals; the rest of the images are in `_`.
      const given = (args._ as string[]).slice(1);
      if (given.length === 0)
        throw new CliError('usage', 'give at least one IMAGE; see litter predict --help');
      const modelPath = resolvePath(io, args.model);
      if (!existsSync(modelPath)) {
        throw new CliError(
          'missing-run',
          `model ${modelPath} does not exist; give a run directory of litter train`,
        );
      }
      const givenFiles = given.map((image) => resolvePath(io, image));
      const missing = givenFiles.findIndex((file) => !existsSync(file));
      if (missing !== -1) throw new CliError('missing-image', `image ${givenFiles[missing]} does not exist`);
      const annotateDir =
        args.annotate === undefined ? undefined : resolvePath(io, stringFlag('annotate', args.annotate)!);
      const labelsFile =
        args.labels === undefined ? undefined : resolvePath(io, stringFlag('labels', args.labels)!);
      if (labelsFile !== undefined && annotateDir === undefined) {
        throw new CliError('usage', '--labels is for the true boxes of --annotate: give --annotate DIR too');
      }
      if (annotateDir !== undefined && existsSync(path.join(annotateDir, 'labels.json'))) {
        throw new CliError(
          'usage',
          `--annotate ${annotateDir} is a dataset folder (it has labels.json): annotated images go into a folder of their own`,
        );
      }
      if (labelsFile !== undefined && !existsSync(labelsFile)) {
        throw new CliError('missing-dataset', `labels file ${labelsFile} does not exist`);
      }

      const { initBackend } = await import('@litter/model');
      const { loadRun, predictImages } = await import('@litter/trainer');
      await initBackend({ backend: backend ?? 'auto' });
      const run = await loadRun(modelPath, checkpoint ? { checkpoint } : {});
      // An image that cannot be decoded is named at the end; the others are still predicted and printed.
      const unreadable = await unreadableImages(givenFiles).catch((error: unknown) => {
        run.model.dispose();
        throw error;
      });
      if (unreadable.size === givenFiles.length) {
        run.model.dispose();
        throw new CliError('missing-image', [...unreadable.values()][0]!);
      }
      const images = given.filter((_, index) => !unreadable.has(index));
      const files = givenFiles.filter((_, index) => !unreadable.has(index));
      let predictions: Awaited<ReturnType<typeof predictImages>>;
      try {
        if (annotateDir !== undefined && !run.boxes) {
          throw new CliError(
            'no-box-head',
            `--annotate draws predicted boxes, but the model in ${run.dir} has no box head: train with --boxes`,
          );
        }
        predictions = await predictImages(run, files);
      } finally {
        run.model.dispose();
      }
      // Boxes in pixels of each image as it is on disk (the model saw it resized to its input size).
      const { imageSize } = await import('@litter/dataset');
      const sizes = run.boxes ? await Promise.all(files.map((file) => imageSize(file))) : [];
      const pixelBox = (index: number, box: ClassPrediction['box']) =>
        box === undefined ? undefined : toPixels(box, sizes[index]!);
      let annotated: string[] | undefined;
      if (annotateDir !== undefined) {
        annotated = annotatedPaths(annotateDir, files);
        const lookup = new LabelLookup(io, labelsFile);
        const annotations: Annotation[] = [];
        for (const [index, prediction] of predictions.entries()) {
          annotations.push({
            image: files[index]!,
            out: annotated[index]!,
            predicted: prediction.classes.flatMap(({ name, probability, visible, box }) =>
              visible && box ? [{ name, probability, box }] : [],
            ),
            truth: await lookup.trueBoxes(files[index]!),
          });
        }
        await writeAnnotations(annotations);
      }

      if (args.json) {
        predictions.forEach((prediction, index) => {
          writeJson(io, {
            image: images[index],
            classes: Object.fromEntries(
              prediction.classes.map(({ name, probability, visible, threshold, box, score }) => [
                name,
                {
                  probability,
                  visible,
                  threshold,
                  ...(box ? { box: pixelBox(index, box) } : {}),
                  ...(score === undefined ? {} : { score }),
                },
              ]),
            ),
            ...(annotated ? { annotated: annotated[index] } : {}),
          });
        });
        return reportUnreadable(io, unreadable);
      }
      const header = ['image', ...run.vocabulary, 'visible'];
      const rows = predictions.map((prediction, index) => [
        images[index] as string,
        ...prediction.classes.map((c) => c.probability.toFixed(3)),
        prediction.classes
          .filter((c) => c.visible)
          .map((c) => c.name)
          .join(', ') || '-',
      ]);
      writeLine(io.stdout, formatTable([header, ...rows]));
      writeLine(io.stdout);
      writeLine(
        io.stdout,
        `probabilities per class; visible at the thresholds ${run.vocabulary
          .map((name, c) => `${name} ${(run.thresholds[c] ?? 0.5).toFixed(2)}`)
          .join(', ')} (model: ${run.dir})`,
      );
      if (run.boxes) {
        const boxRows = predictions.flatMap((prediction, index) =>
          prediction.classes
            .filter((c) => c.visible && c.box)
            .map((c) => {
              const box = pixelBox(index, c.box)!;
              return [
                images[index] as string,
                c.name,
                ...[box.x1, box.y1, box.x2, box.y2].map((v) => v.toFixed(1)),
              ];
            }),
        );
        writeLine(io.stdout);
        if (boxRows.length > 0) {
          writeLine(io.stdout, formatTable([['image', 'class', 'x1', 'y1', 'x2', 'y2'], ...boxRows]));
          writeLine(io.stdout);
          writeLine(io.stdout, 'boxes of the visible classes in pixels of each image, top-left origin');
        } else writeLine(io.stdout, 'no class visible: no boxes');
      }
      if (annotateDir !== undefined) writeLine(io.stdout, `annotated images: ${annotateDir}`);
      return reportUnreadable(io, unreadable);
    },
  }),
);

/** The images (by index) that cannot be decoded, with why. */
async function unreadableImages(files: readonly string[]): Promise<Map<number, string>> {
  const { decodeImage } = await import('@litter/dataset');
  const unreadable = new Map<number, string>();
  for (const [index, file] of files.entries()) {
    try {
      await decodeImage(file);
    } catch (error) {
      unreadable.set(index, (error as Error).message.replace(/^@litter\/dataset: /, '').split('\n')[0]!);
    }
  }
  return unreadable;
}

/** After the predictions of the readable images: one line naming those that could not be read (exit 1). */
function reportUnreadable(io: Io, unreadable: ReadonlyMap<number, string>): number {
  if (unreadable.size === 0) return ExitCode.ok;
  const [first] = unreadable.values();
  writeLine(
    io.stderr,
    `@litter/cli: ${unreadable.size} image${unreadable.size === 1 ? '' : 's'} could not be read and ${unreadable.size === 1 ? 'was' : 'were'} left out: ${first}${unreadable.size > 1 ? ` (+${unreadable.size - 1} more)` : ''}`,
  );
  return ExitCode.input;
}
