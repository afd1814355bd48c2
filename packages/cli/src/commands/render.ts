import type { RenderCallbacks, RenderFlags, Shard } from '@litter/render';
import { DEFAULTS } from '@litter/render/defaults';
import { defineCommand } from 'citty';
import cliProgress from 'cli-progress';
import { choiceFlag, commonArgs, intFlag, listFlag, markVariadic, numberFlag, stringFlag } from '../_args.js';
import { type Io, ioOf, resolvePath, writeJson, writeLine } from '../_io.js';
import { duration, progressMode } from '../_progress.js';
import { CliError, ExitCode } from '../errors.js';

// `litter render OUT` and `litter render merge OUT PART...`: @litter/render drives headless Blender. No
// TensorFlow.js is loaded.

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** Progress of a render: a bar on a terminal, a line per scene in a pipe, JSON lines with --json. */
function progress(io: Io, json: boolean): { callbacks: RenderCallbacks; stop(): void } {
  const mode = progressMode(io, json);
  let bar: cliProgress.SingleBar | undefined;
  const callbacks: RenderCallbacks = {
    onBegin: (e) => {
      if (mode === 'json') return writeJson(io, { event: 'begin', ...e });
      const part = e.shard ? ` (shard ${e.shard.index}/${e.shard.count})` : '';
      const from = e.done > 0 ? `, ${e.done} finished before` : '';
      writeLine(
        io.stdout,
        `rendering ${e.scenes - e.done} of ${e.scenes} scenes${part} x ${e.viewsPerScene} views${from} with Blender ${e.blender}: ${e.workers} process${e.workers === 1 ? '' : 'es'} x ${e.threadsPerWorker} thread${e.threadsPerWorker === 1 ? '' : 's'}`,
      );
      writeLine(io.stdout, `output: ${e.out}`);
      if (mode === 'tty' && e.renders > 0) {
        bar = new cliProgress.SingleBar(
          {
            stream: io.stderr as NodeJS.WritableStream,
            // Not {eta}: cli-progress fills that one itself (whole seconds, no unit), over any payload.
            format: 'render {value}/{total} {bar} {rps} renders/s | ETA {remaining}',
            barsize: 24,
            hideCursor: true,
            gracefulExit: false,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(e.renders, 0, { rps: '-', remaining: '-' });
      }
    },
    onView: (e) =>
      bar?.update(e.rendered, { rps: fixed(e.rendersPerSecond, 2), remaining: duration(e.etaSeconds) }),
    onScene: (e) => {
      if (mode === 'json') return writeJson(io, { event: 'scene', ...e });
      if (mode === 'plain') {
        writeLine(
          io.stdout,
          `scene ${e.scene} done (${e.done}/${e.scenes})  ${fixed(e.rendersPerSecond, 2)} renders/s  ETA ${duration(e.etaSeconds)}`,
        );
      }
    },
  };
  return { callbacks, stop: () => bar?.stop() };
}

/** The shard: --shard I/N, else a Kubernetes Indexed Job's or a Slurm array's environment, else none. */
async function shardOf(io: Io, text: string | undefined): Promise<Shard | undefined> {
  const { parseShard, shardFromEnv, RenderError } = await import('@litter/render');
  try {
    if (text !== undefined) return parseShard(text);
    const fromEnv = shardFromEnv(io.env);
    if (fromEnv) writeLine(io.stdout, `shard ${fromEnv.index}/${fromEnv.count} from ${fromEnv.source}`);
    return fromEnv;
  } catch (error) {
    if (error instanceof RenderError) throw new CliError('usage', error.message, { cause: error });
    throw error;
  }
}

const merge = markVariadic(
  defineCommand({
    meta: {
      name: 'merge',
      description:
        'Join the parts of a sharded render into OUT (refuses parts of other settings, overlapping or unfinished ones)',
    },
    args: {
      out: { type: 'positional', required: true, valueHint: 'OUT', description: 'New or empty folder' },
      parts: {
        type: 'positional',
        required: true,
        valueHint: 'PART...',
        description: 'Render folders to join',
      },
      json: {
        type: 'boolean',
        description: 'Print one JSON object: out, scenes, images, labelsPath, cocoPath',
      },
      ...commonArgs,
    },
    async run({ args, ...context }) {
      const io = ioOf(context);
      const parts = (args._ as string[]).slice(1).map((part) => resolvePath(io, part));
      if (parts.length === 0)
        throw new CliError('usage', 'merge needs OUT and at least one PART; see litter render merge --help');
      const { mergeRenders } = await import('@litter/render');
      const result = await mergeRenders(resolvePath(io, args.out), parts);
      if (args.json) writeJson(io, result);
      else
        writeLine(
          io.stdout,
          `merged ${parts.length} part${parts.length === 1 ? '' : 's'}: ${result.scenes} scenes, ${result.images} images in ${result.out} (${result.labelsPath})`,
        );
      return ExitCode.ok;
    },
  }),
);

export default defineCommand({
  meta: {
    name: 'render',
    description:
      'Render a training dataset with headless Blender into OUT: objects dropped with physics, an orbiting camera, labels.json',
  },
  args: {
    out: {
      type: 'positional',
      required: true,
      valueHint: 'OUT',
      description: 'New or empty folder (or one to --resume)',
    },
    scene: {
      type: 'string',
      valueHint: 'FILE',
      description:
        'JSON scene file: every setting below and the domain randomisation (see @litter/render README); flags win over it',
    },
    scenes: {
      type: 'string',
      valueHint: 'N',
      description: `Scenes (object arrangements) (default: ${DEFAULTS.scenes})`,
    },
    views: {
      type: 'string',
      valueHint: 'N',
      description: `Camera positions per scene (default: ${DEFAULTS.views}, a 5x5 orbit grid)`,
    },
    camera: {
      type: 'string',
      valueHint: 'orbit|random',
      description: 'Orbit grid or random poses (default: orbit)',
    },
    width: { type: 'string', valueHint: 'PX', description: `Render width (default: ${DEFAULTS.width})` },
    height: { type: 'string', valueHint: 'PX', description: `Render height (default: ${DEFAULTS.height})` },
    samples: {
      type: 'string',
      valueHint: 'N',
      description: `Samples per pixel (default: ${DEFAULTS.samples})`,
    },
    seed: {
      type: 'string',
      valueHint: 'N',
      description: `Seed of the arrangements, colours and poses (default: ${DEFAULTS.seed})`,
    },
    objects: {
      type: 'string',
      valueHint: 'A,B=mesh.glb,C=f.blend:Obj',
      description: `Classes: built-in ${'Cube, Sphere, Can, Cone, Torus, Bottle'}, or NAME=FILE (.obj .glb .gltf .stl, or .blend:OBJECT) (default: ${DEFAULTS.objects.join(',')})`,
    },
    probability: {
      type: 'string',
      valueHint: 'P',
      description: `Chance that each object is in a scene (default: ${DEFAULTS.probability})`,
    },
    visibility: {
      type: 'string',
      valueHint: 'pixels|projection',
      description: `In view: covers --min-pixels pixels (boxes of those pixels), or the seed's projection of the whole mesh (default: ${DEFAULTS.visibility})`,
    },
    'min-pixels': {
      type: 'string',
      valueHint: 'N',
      description: `Pixels an object must cover to be in view (default: ${DEFAULTS.minPixels})`,
    },
    coco: { type: 'boolean', description: 'Also write coco.json (COCO boxes, pixels from the top-left)' },
    engine: {
      type: 'string',
      valueHint: 'cycles|eevee',
      description: `Render engine (default: ${DEFAULTS.engine})`,
    },
    device: {
      type: 'string',
      valueHint: 'cpu|gpu',
      description: `Cycles device (default: ${DEFAULTS.device})`,
    },
    prefix: {
      type: 'string',
      valueHint: 'TEXT',
      description: 'Prefix of the scene names, to join datasets (default: none)',
    },
    workers: {
      type: 'string',
      valueHint: 'N',
      description:
        'Blender processes at once, each rendering whole scenes (default: one per core, fewer on few scenes; 1 on GPU)',
    },
    shard: {
      type: 'string',
      valueHint: 'I/N',
      description:
        'Render the I-th of N parts (default: JOB_COMPLETION_INDEX/JOB_COMPLETIONS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set)',
    },
    resume: {
      type: 'boolean',
      description: 'Continue the render in OUT with its settings (finished scenes are kept)',
    },
    blender: {
      type: 'string',
      valueHint: 'PATH',
      description: 'Blender executable (default: LITTER_BLENDER, else blender on PATH)',
    },
    json: { type: 'boolean', description: 'Print one JSON object per line (events begin, scene, end)' },
    ...commonArgs,
  },
  subCommands: { merge },
  async run({ args, ...context }) {
    const io = ioOf(context);
    const flags: RenderFlags = {
      scenes: intFlag('scenes', args.scenes),
      views: intFlag('views', args.views),
      camera: choiceFlag('camera', args.camera, ['orbit', 'random'] as const),
      width: intFlag('width', args.width, { min: 8, max: 16384 }),
      height: intFlag('height', args.height, { min: 8, max: 16384 }),
      samples: intFlag('samples', args.samples),
      seed: intFlag('seed', args.seed, { min: 0, max: 2 ** 31 - 1 }),
      objects: listFlag('objects', args.objects),
      probability: numberFlag('probability', args.probability, { min: 0, max: 1 }),
      visibility: choiceFlag('visibility', args.visibility, ['pixels', 'projection'] as const),
      minPixels: intFlag('min-pixels', args['min-pixels']),
      coco: args.coco === undefined ? undefined : args.coco === true,
      engine: choiceFlag('engine', args.engine, ['cycles', 'eevee'] as const),
      device: choiceFlag('device', args.device, ['cpu', 'gpu'] as const),
      prefix: stringFlag('prefix', args.prefix),
    };
    const workers = intFlag('workers', args.workers, { min: 1, max: 1024 });
    const sceneFile = stringFlag('scene', args.scene);
    const given = Object.entries(flags).filter(([, value]) => value !== undefined);
    if (args.resume && (given.length > 0 || sceneFile !== undefined)) {
      throw new CliError(
        'usage',
        `--resume continues with the render's own settings; drop ${given.map(([k]) => `--${k}`).join(' ') || '--scene'}`,
      );
    }
    const shard = await shardOf(io, stringFlag('shard', args.shard));
    const out = resolvePath(io, args.out);
    const lib = await import('@litter/render');
    // The settings first: a bad scene file is reported before Blender is even looked for.
    const settings = args.resume ? undefined : await lib.resolveSettings({ sceneFile, flags, cwd: io.cwd });
    const blender = await lib.findBlender({ blender: stringFlag('blender', args.blender), env: io.env });
    const controller = new AbortController();
    let signal: 'SIGINT' | 'SIGTERM' | undefined;
    const shown = progress(io, args.json === true);
    const stop = (name: 'SIGINT' | 'SIGTERM') => () => {
      if (signal !== undefined) process.exit(name === 'SIGINT' ? ExitCode.sigint : ExitCode.sigterm);
      signal = name;
      controller.abort(name);
      shown.stop();
      io.stderr.write(
        `@litter/cli: ${name}: stopping Blender; finished scenes are kept (again to quit at once)\n`,
      );
    };
    const onInt = stop('SIGINT');
    const onTerm = stop('SIGTERM');
    io.signals?.on('SIGINT', onInt);
    io.signals?.on('SIGTERM', onTerm);
    let result: Awaited<ReturnType<typeof lib.render>>;
    try {
      result = await lib.render({
        out,
        settings,
        resume: args.resume === true,
        shard,
        workers,
        blender,
        signal: controller.signal,
        callbacks: shown.callbacks,
      });
    } finally {
      shown.stop();
      io.signals?.off('SIGINT', onInt);
      io.signals?.off('SIGTERM', onTerm);
    }
    if (args.json) {
      const { state: _, ...end } = result;
      writeJson(io, { event: 'end', ...end });
    } else {
      writeLine(
        io.stdout,
        `${result.stopped === 'done' ? 'done' : 'stopped'}: ${result.images} images of ${result.scenes} scenes in ${result.labelsPath}${result.cocoPath ? ` and ${result.cocoPath}` : ''} (${result.rendered} rendered in ${duration(result.seconds)}, ${fixed(result.rendered / result.seconds, 2)} renders/s)`,
      );
    }
    if (result.stopped === 'signal') {
      io.stderr.write(
        `@litter/cli: stopped by ${signal ?? 'a signal'}; continue with: litter render --resume ${out}\n`,
      );
      return signal === 'SIGTERM' ? ExitCode.sigterm : ExitCode.sigint;
    }
    return ExitCode.ok;
  },
});
