import { createRequire } from 'node:module';
import { type ArgsDef, type CommandDef, defineCommand, renderUsage, runCommand } from 'citty';
import { isVariadic } from './_args.js';
import { fileSystemMessage, withCliFlags } from './_flags.js';
import { type Io, printable, processIo } from './_io.js';
import { CliError, ExitCode } from './errors.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

type AnyCommand = CommandDef<ArgsDef>;
const lazy = (load: () => Promise<{ default: unknown }>) => () => load().then((m) => m.default as AnyCommand);

/**
 * The `litter` command. Sub-commands are imported only when they run, so `litter cache` and `litter inspect`
 * never load TensorFlow.js.
 */
export const litter = defineCommand({
  meta: {
    name: 'litter',
    version,
    description: 'Train multi-label image classifiers on Blender renders',
  },
  subCommands: {
    train: lazy(() => import('./commands/train.js')),
    evaluate: lazy(() => import('./commands/evaluate.js')),
    predict: lazy(() => import('./commands/predict.js')),
    report: lazy(() => import('./commands/report.js')),
    inspect: lazy(() => import('./commands/inspect.js')),
    cache: lazy(() => import('./commands/cache.js')),
    doctor: lazy(() => import('./commands/doctor.js')),
    render: lazy(() => import('./commands/render.js')),
  },
});

async function resolve<T>(
  value: T | Promise<T> | (() => T | Promise<T>) | undefined,
): Promise<T | undefined> {
  return typeof value === 'function' ? (value as () => T | Promise<T>)() : value;
}

/** Flags before `--`, positional arguments (everything not a flag). */
function splitTokens(rawArgs: readonly string[]) {
  const end = rawArgs.indexOf('--');
  const flags = (end === -1 ? rawArgs : rawArgs.slice(0, end)).filter((token) => token.startsWith('-'));
  return { flags, end };
}

interface Leaf {
  command: AnyCommand;
  parent: AnyCommand | undefined;
  /** `litter cache info` */
  path: string[];
  rawArgs: string[];
}

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The flags a command knows (every spelling, `--no-` forms of booleans) and those that take a value. */
async function flagsOf(
  command: AnyCommand,
): Promise<{ known: Set<string>; takesValue: Set<string>; positionals: number }> {
  const args = ((await resolve(command.args)) ?? {}) as ArgsDef;
  const known = new Set(['--help', '-h']);
  const takesValue = new Set<string>();
  let positionals = 0;
  for (const [name, def] of Object.entries(args)) {
    if (def.type === 'positional') {
      positionals++;
      continue;
    }
    const alias = 'alias' in def ? def.alias : undefined;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    const spellings = new Set([name, camel(name), kebab(name), ...aliases]);
    for (const spelling of spellings) {
      const flag = spelling.length === 1 ? `-${spelling}` : `--${spelling}`;
      known.add(flag);
      if (def.type === 'boolean') known.add(`--no-${spelling}`);
      else takesValue.add(flag);
    }
  }
  return { known, takesValue, positionals };
}

/**
 * The index of the first positional token before `--`, or -1: the value of a flag that takes one is not a
 * positional (`litter render --prefix merge OUT` renders into OUT with the prefix "merge").
 */
function firstPositional(tokens: readonly string[], takesValue: ReadonlySet<string>): number {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (token === '--') return -1;
    if (!token.startsWith('-') || token === '-') return i;
    if (takesValue.has(token)) i++;
  }
  return -1;
}

/** Walks the sub-commands named on the command line down to the command that runs. */
async function findLeaf(root: AnyCommand, rawArgs: readonly string[]): Promise<Leaf> {
  let command = root;
  let parent: AnyCommand | undefined;
  const path = ['litter'];
  let rest = [...rawArgs];
  for (;;) {
    const subCommands = await resolve(command.subCommands);
    if (!subCommands || Object.keys(subCommands).length === 0) break;
    const index = firstPositional(rest, (await flagsOf(command)).takesValue);
    const name = index === -1 ? undefined : rest[index];
    if (name === undefined) break;
    const next = Object.hasOwn(subCommands, name) ? await resolve(subCommands[name]) : undefined;
    // A command that runs itself takes a positional where no sub-command matches (`litter render OUT`).
    if (!next && command.run) break;
    if (!next) {
      const known = Object.keys(subCommands).join(', ');
      throw new CliError(
        'usage',
        `unknown command "${[...path.slice(1), name].join(' ')}"; commands: ${known}`,
      );
    }
    parent = command;
    command = next as AnyCommand;
    path.push(name);
    rest = [...rest.slice(0, index), ...rest.slice(index + 1)];
  }
  return { command, parent, path, rawArgs: rest };
}

/** citty accepts any flag; a typo must not silently change a training run, so unknown flags are usage errors. */
async function checkArguments(leaf: Leaf): Promise<void> {
  const { known, takesValue, positionals } = await flagsOf(leaf.command);
  const command = leaf.path.join(' ');
  let seen = 0;
  for (let i = 0; i < leaf.rawArgs.length; i++) {
    const token = leaf.rawArgs[i] as string;
    if (token === '--') {
      seen += leaf.rawArgs.length - i - 1;
      break;
    }
    if (token.startsWith('-') && token !== '-') {
      const flag = token.split('=', 1)[0] as string;
      if (!known.has(flag)) {
        throw new CliError('usage', `unknown flag ${flag} for "${command}"; see ${command} --help`);
      }
      if (takesValue.has(flag) && !token.includes('=')) {
        const value = leaf.rawArgs[i + 1];
        if (value === undefined || (value.startsWith('--') && value.length > 2)) {
          throw new CliError('usage', `${flag} needs a value; see ${command} --help`);
        }
        i++;
      }
      continue;
    }
    seen++;
  }
  if (seen > positionals && !isVariadic(leaf.command)) {
    throw new CliError('usage', `too many arguments for "${command}"; see ${command} --help`);
  }
}

function isHelp(rawArgs: readonly string[]): boolean {
  const { flags } = splitTokens(rawArgs);
  return flags.includes('--help') || flags.includes('-h');
}

/** How many listed problems (`  - ...` lines of a package error) the one-line message keeps. */
const LISTED = 3;

/** The error classes of litter's packages: each has a `code`, and `problems` and `advice` when it lists problems. */
const PACKAGE_ERRORS = new Set([
  'CliError',
  'DatasetError',
  'ModelError',
  'TrainerError',
  'ReportError',
  'RenderError',
]);

/** Whether an error is one of litter's own (by its class and code, not its text): its message is for the user. */
export function isPackageError(error: Error): boolean {
  return PACKAGE_ERRORS.has(error.name) && typeof (error as { code?: unknown }).code === 'string';
}

/** The problems an error lists (`problems`) and the advice after them (`advice`). */
function listedProblems(error: Error): { problems: string[]; advice: string | undefined } {
  const { problems, advice } = error as { problems?: unknown; advice?: unknown };
  return {
    problems: Array.isArray(problems) ? problems.map(String) : [],
    advice: typeof advice === 'string' ? advice : undefined,
  };
}

/** Parts of a message joined into one line, each after a full stop unless the previous one ends in punctuation. */
const fold = (parts: string[]) =>
  parts.reduce((line, part) => `${line}${/[.:;]$/.test(line) ? ' ' : '. '}${part}`);

/**
 * A package error in one line: the summary (the message's first line), the first problems of `problems`, how
 * many more, the `advice`. Other messages of several lines are joined.
 */
export function oneLine(error: Error): string {
  const ours = isPackageError(error);
  const message = ours ? error.message : `@litter/cli: unexpected error: ${error.message}`;
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const { problems, advice } = ours ? listedProblems(error) : { problems: [], advice: undefined };
  if (problems.length > 0) {
    const more = problems.length > LISTED ? ` (+${problems.length - LISTED} more; --verbose lists them)` : '';
    const summary = lines[0]!.replace(/:$/, '');
    const adviceLines = (advice ?? '')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    return fold([`${summary}: ${problems.slice(0, LISTED).join('; ')}${more}`, ...adviceLines]);
  }
  if (lines.length <= 1) return ours ? message : `${message} (run with --verbose for the stack trace)`;
  return fold(lines);
}

/** The message of an error: one line, or everything with the stack trace under `--verbose`. */
function describe(error: unknown, verbose: boolean): string {
  if (!(error instanceof Error)) return `@litter/cli: ${String(error)}`;
  if (!verbose) {
    return (!isPackageError(error) && fileSystemMessage(error)) || withCliFlags(oneLine(error));
  }
  const causes: string[] = [];
  let cause = error.cause;
  while (cause instanceof Error) {
    causes.push(`caused by: ${cause.stack ?? cause.message}`);
    cause = cause.cause;
  }
  return [error.stack ?? error.message, ...causes].join('\n');
}

/** Usage errors exit 2: ours with code `usage`, and citty's own argument errors. */
function isUsageError(error: unknown): boolean {
  if (error instanceof CliError) return error.code === 'usage';
  return error instanceof Error && error.name === 'CLIError';
}

/**
 * Runs `litter` with the given arguments and returns the exit code: 0 ok, 1 an input problem (one line on
 * stderr, the stack with `--verbose`), 2 a usage error, 130/143 a training run stopped by SIGINT/SIGTERM.
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const verbose = splitTokens(argv).flags.includes('--verbose');
  let leaf: Leaf | undefined;
  try {
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
      io.stdout.write(`${version}\n`);
      return ExitCode.ok;
    }
    leaf = await findLeaf(litter as AnyCommand, argv);
    if (isHelp(leaf.rawArgs)) {
      io.stdout.write(`${await renderUsage(leaf.command, leaf.parent)}\n`);
      return ExitCode.ok;
    }
    if (!leaf.command.run) {
      io.stderr.write(`${await renderUsage(leaf.command, leaf.parent)}\n\n`);
      throw new CliError('usage', `missing command; see ${leaf.path.join(' ')} --help`);
    }
    await checkArguments(leaf);
    // The leaf was found above: citty must not look for sub-commands again (`litter render OUT` has both).
    const runnable = { ...leaf.command, subCommands: undefined };
    const { result } = await runCommand(runnable, { rawArgs: leaf.rawArgs, data: io });
    return typeof result === 'number' ? result : ExitCode.ok;
  } catch (error) {
    const usage = isUsageError(error);
    let text = describe(error, verbose);
    if (usage && !(error instanceof CliError)) {
      // citty's messages ("Missing required positional argument: DATASET") carry no package prefix or advice.
      const command = leaf?.path.join(' ') ?? 'litter';
      text = `@litter/cli: ${(error as Error).message}; see ${command} --help`;
    }
    io.stderr.write(`${printable(text)}\n`);
    return usage ? ExitCode.usage : ExitCode.input;
  }
}
