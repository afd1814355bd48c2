import { existsSync } from 'node:fs';
import { defineCommand } from 'citty';
import { choiceFlag, commonArgs, markVariadic } from '../_args.js';
import { ioOf, resolvePath, writeJson, writeLine } from '../_io.js';
import { formatTable } from '../_table.js';
import { CliError, ExitCode } from '../errors.js';

const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;

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
      checkpoint: {
        type: 'string',
        valueHint: 'best|last',
        description: 'Which checkpoint of a run directory (default: best)',
      },
      backend: {
        type: 'string',
        valueHint: BACKENDS.join('|'),
        description: 'TensorFlow.js backend (default: the best one that loads here)',
      },
      json: {
        type: 'boolean',
        description:
          'One JSON object per image and line: {"image", "classes": {NAME: {"probability", "visible", "threshold"}}}',
      },
      ...commonArgs,
    },
    async run({ args, ...context }) {
      const io = ioOf(context);
      const checkpoint = choiceFlag('checkpoint', args.checkpoint, ['best', 'last'] as const);
      const backend = choiceFlag('backend', args.backend, BACKENDS);
      // citty fills the declared positionals; the rest of the images are in `_`.
      const images = (args._ as string[]).slice(1);
      if (images.length === 0)
        throw new CliError('usage', 'give at least one IMAGE; see litter predict --help');
      const modelPath = resolvePath(io, args.model);
      if (!existsSync(modelPath)) {
        throw new CliError(
          'missing-run',
          `model ${modelPath} does not exist; give a run directory of litter train`,
        );
      }
      const files = images.map((image) => resolvePath(io, image));
      const missing = files.findIndex((file) => !existsSync(file));
      if (missing !== -1) throw new CliError('missing-image', `image ${files[missing]} does not exist`);

      const { initBackend } = await import('@litter/model');
      const { loadRun, predictImages } = await import('@litter/trainer');
      await initBackend({ backend: backend ?? 'auto' });
      const run = await loadRun(modelPath, checkpoint ? { checkpoint } : {});
      let predictions: Awaited<ReturnType<typeof predictImages>>;
      try {
        predictions = await predictImages(run, files);
      } finally {
        run.model.dispose();
      }

      if (args.json) {
        predictions.forEach((prediction, index) => {
          writeJson(io, {
            image: images[index],
            classes: Object.fromEntries(
              prediction.classes.map(({ name, probability, visible, threshold, box }) => [
                name,
                { probability, visible, threshold, ...(box ? { box } : {}) },
              ]),
            ),
          });
        });
        return ExitCode.ok;
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
      return ExitCode.ok;
    },
  }),
);
