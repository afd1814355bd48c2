import { existsSync } from 'node:fs';
import path from 'node:path';
import { defineCommand } from 'citty';
import { choiceFlag, commonArgs, runArgs, runFlags } from '../_args.js';
import { ioOf, resolvePath, writeJson, writeLine } from '../_io.js';
import { datasetPath } from '../_paths.js';
import { CliError, ExitCode } from '../errors.js';

const SPLITS = ['validation', 'test', 'train', 'all'] as const;

export default defineCommand({
  meta: {
    name: 'evaluate',
    description:
      'Evaluate a trained model: per class precision, recall, F1, AP; exact match, Hamming loss, F1',
  },
  args: {
    run: {
      type: 'positional',
      required: true,
      valueHint: 'RUN|MODEL',
      description:
        'A run directory of litter train (its best checkpoint) or a checkpoint folder with model.json',
    },
    dataset: {
      type: 'positional',
      required: false,
      valueHint: 'DATASET',
      description: "Folder with labels.json (default: the run's dataset)",
    },
    split: {
      type: 'string',
      valueHint: SPLITS.join('|'),
      description:
        "Which images: a split of the run's dataset, or all (default: test, else validation, on the run's dataset; all on another)",
    },
    ...runArgs,
    json: {
      type: 'boolean',
      description:
        'Print one JSON object: model, dataset, split, images, exactMatch, macroF1, ..., evaluation',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const splitFlag = choiceFlag('split', args.split, SPLITS);
    const { checkpoint, backend } = runFlags(args);
    const runPath = resolvePath(io, args.run);
    if (!existsSync(runPath)) {
      throw new CliError(
        'missing-run',
        `${runPath} does not exist; give the --out directory of litter train`,
      );
    }
    const givenDataset = args.dataset === undefined ? undefined : datasetPath(io, args.dataset);

    const { initBackend } = await import('@litter/model');
    const { loadDataset } = await import('@litter/dataset');
    const { alignToVocabulary, evaluate, formatEvaluation, loadRun } = await import('@litter/trainer');
    await initBackend({ backend: backend ?? 'auto' });
    const run = await loadRun(runPath, checkpoint ? { checkpoint } : {});
    try {
      const datasetArgument = givenDataset ?? run.config?.dataset.labelsPath;
      if (datasetArgument === undefined) {
        throw new CliError('usage', `${runPath} does not name its dataset (no config.json): give DATASET`);
      }
      if (givenDataset === undefined && !existsSync(datasetArgument)) {
        throw new CliError(
          'missing-dataset',
          `the run's dataset ${datasetArgument} is not there any more; give DATASET: litter evaluate ${args.run} path/to/dataset`,
        );
      }
      // Class c of the labels must be output c of the model: the dataset's classes re-indexed to the run's,
      // those the run does not know left out and named.
      const aligned = alignToVocabulary(
        await loadDataset(datasetArgument, { width: run.width, height: run.height }),
        run.vocabulary,
      );
      const dataset = aligned.dataset;
      const own =
        run.config !== undefined &&
        path.resolve(run.config.dataset.labelsPath) === path.resolve(dataset.labelsPath) &&
        run.config.dataset.size === dataset.size;
      const split =
        splitFlag ??
        (own && (run.config?.split.test?.length ?? 0) > 0
          ? 'test'
          : own && (run.config?.split.validation.length ?? 0) > 0
            ? 'validation'
            : 'all');
      let indices: number[];
      if (split === 'all') indices = Array.from({ length: dataset.size }, (_, index) => index);
      else if (!own || !run.config) {
        throw new CliError(
          'usage',
          `--split ${split} needs the run's own dataset; use --split all on another dataset`,
        );
      } else indices = run.config.split[split];
      if (indices.length === 0) {
        throw new CliError('usage', `the run's ${split} split is empty; pick another with --split`);
      }

      // A class with no image here has no recall or average precision to measure: say so, not just 0.
      const classes = dataset.vocabulary.length;
      const absent = dataset.vocabulary.filter(
        (_, c) => !indices.some((index) => dataset.labels[index * classes + c]! >= 0.5),
      );
      if (absent.length > 0) {
        writeLine(
          io.stderr,
          `@litter/cli: warning: ${absent.length === 1 ? 'class' : 'classes'} ${absent.join(', ')} of the run ${absent.length === 1 ? 'is' : 'are'} in no image of the ${split} split of ${dataset.labelsPath}: ${absent.length === 1 ? 'its' : 'their'} recall and average precision are not measured`,
        );
      }
      const evaluation = evaluate(run.model, dataset, indices, {
        thresholds: run.thresholds,
        testTimeFlip: run.testTimeFlip,
      });
      if (args.json) {
        writeJson(io, {
          model: run.dir,
          dataset: dataset.labelsPath,
          split,
          unknownClasses: aligned.unknown,
          absentClasses: aligned.absent,
          images: evaluation.size,
          exactMatch: evaluation.fixed.exactMatch,
          macroF1: evaluation.fixed.macroF1,
          microF1: evaluation.fixed.microF1,
          hammingLoss: evaluation.fixed.hammingLoss,
          meanAveragePrecision: evaluation.meanAveragePrecision,
          tunedExactMatch: evaluation.tuned?.exactMatch ?? null,
          tunedMacroF1: evaluation.tuned?.macroF1 ?? null,
          evaluation,
        });
      } else {
        const title = `${split === 'all' ? 'All images' : `The ${split} split`} of ${dataset.labelsPath}`;
        for (const { name, images } of aligned.unknown) {
          writeLine(
            io.stdout,
            `class ${name} (visible in ${images} image${images === 1 ? '' : 's'}) is not one the run knows: left out of the figures`,
          );
        }
        if (aligned.absent.length > 0) {
          writeLine(
            io.stdout,
            `the run's class${aligned.absent.length === 1 ? '' : 'es'} ${aligned.absent.join(', ')} never appear${aligned.absent.length === 1 ? 's' : ''} in ${dataset.labelsPath}`,
          );
        }
        writeLine(io.stdout, formatEvaluation(evaluation, { title }).trimEnd());
        writeLine(io.stdout);
        writeLine(io.stdout, `model: ${run.dir}${run.step === undefined ? '' : ` (step ${run.step})`}`);
      }
    } finally {
      run.model.dispose();
    }
    return ExitCode.ok;
  },
});
