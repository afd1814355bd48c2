import { existsSync } from 'node:fs';
import path from 'node:path';
import { defineCommand } from 'citty';
import { commonArgs, runArgs, runFlags, stringFlag } from '../_args.js';
import { ioOf, resolvePath, writeJson, writeLine } from '../_io.js';
import { datasetPath } from '../_paths.js';
import { CliError, ExitCode } from '../errors.js';

export default defineCommand({
  meta: {
    name: 'report',
    description:
      "Regenerate a run's report.html and charts/*.png (loss, precision-recall, validation images with boxes)",
  },
  args: {
    run: {
      type: 'positional',
      required: true,
      valueHint: 'RUN',
      description: 'A run directory of litter train',
    },
    dataset: {
      type: 'string',
      valueHint: 'DIR',
      description: "The run's dataset, should it have moved (default: the one recorded in RUN/config.json)",
    },
    ...runArgs,
    checkpoint: {
      ...runArgs.checkpoint,
      description: 'Which checkpoint predicts the validation images (default: best)',
    },
    json: {
      type: 'boolean',
      description: 'Print one JSON object: {"report": path of report.html, "charts": [paths of the PNGs]}',
    },
    ...commonArgs,
  },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const { checkpoint, backend } = runFlags(args);
    const datasetFlag = stringFlag('dataset', args.dataset);
    const runDir = resolvePath(io, args.run);
    if (!existsSync(path.join(runDir, 'config.json'))) {
      throw new CliError(
        'missing-run',
        existsSync(runDir)
          ? `${runDir} is not a run directory (no config.json); give the --out directory of litter train`
          : `${runDir} does not exist; give the --out directory of litter train`,
      );
    }
    const dataset = datasetFlag === undefined ? undefined : datasetPath(io, datasetFlag);

    const { initBackend } = await import('@litter/model');
    const { claimRunDir, writeRunReport } = await import('@litter/trainer');
    await initBackend({ backend: backend ?? 'auto' });
    // One writer per run: not while litter train (or another report) writes it.
    const claim = await claimRunDir(runDir, { resume: true });
    const report = await writeRunReport(runDir, {
      ...(dataset !== undefined ? { dataset } : {}),
      ...(checkpoint ? { checkpoint } : {}),
    }).finally(() => claim.release());
    if (args.json) writeJson(io, { report: report.htmlPath, charts: report.charts });
    else writeLine(io.stdout, `report: ${report.htmlPath}`);
    return ExitCode.ok;
  },
});
