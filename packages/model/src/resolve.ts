import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ModuleImporter } from './backend.js';
import { contractProblems, type ModelFactory } from './contract.js';
import { ModelError, problemsError } from './errors.js';
import { seedCnn } from './seed-cnn.js';

/**
 * A model known by a short name and provided by a package that `@litter/model` may not be able to import itself
 * (a package that depends on it, as the application's model packages do): the package, and the file it is imported from.
 * Plain data, so that worker threads can register the same names.
 */
export interface ModelRegistration {
  /** The package (or module specifier) whose default or `model` export is the factory. */
  package: string;
  /** A file (path or file URL) from whose folder the package is resolved, e.g. the registering module's `import.meta.url`. */
  from?: string;
}

/** The names `resolveModel` knows: `seed-cnn` (this package's own) and what applications register. */
const registry = new Map<string, ModelFactory | ModelRegistration>([[seedCnn.name, seedCnn]]);

/**
 * Makes `name` a built-in name of {@link resolveModel}: for a factory at hand, or for a package to import on
 * demand. The application that assembles litter registers its models.
 *
 * @example
 * registerModel('my-net', { package: 'my-net-models', from: import.meta.url });
 */
export function registerModel(name: string, entry: ModelFactory | ModelRegistration): void {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new ModelError('invalid-options', 'a registered model needs a name');
  }
  registry.set(name, entry);
}

/** The registered names backed by a package (the plain-data ones): what a worker thread registers again. */
export function registeredModels(): Record<string, ModelRegistration> {
  return Object.fromEntries(
    [...registry].filter((entry): entry is [string, ModelRegistration] => 'package' in entry[1]),
  );
}

/** Every name {@link resolveModel} knows without a package name or path. */
export const builtinModelNames = (): string[] => [...registry.keys()];

export interface ResolveModelOptions {
  /**
   * Files (paths or file URLs) from whose folders packages are also looked up, after `@litter/model`'s own and
   * before the current directory and the main script's.
   */
  importFrom?: readonly (string | URL)[];
  /** Imports a package by name instead of the lookup above (for tests). */
  importModule?: ModuleImporter;
}

const CONTRACT_HELP =
  'A model package exports a ModelFactory as its default export or as `model`: ' +
  '{ name, description, defaultInputSize: { width, height }, supportsBoxes, create({ inputShape, classes, boxes?, seed? }) }';

function isPathSpec(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || spec.includes('\\') || /\.(m?js|cjs)$/.test(spec);
}

async function pathExists(spec: string): Promise<boolean> {
  try {
    await stat(spec);
    return true;
  } catch {
    return false;
  }
}

function isNotFound(error: unknown, spec: string): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return (
    (code === 'ERR_MODULE_NOT_FOUND' ||
      code === 'MODULE_NOT_FOUND' ||
      /Cannot find (package|module)|Failed to load url/.test(message)) &&
    message.includes(spec)
  );
}

const asPath = (file: string | URL): string =>
  file instanceof URL || file.startsWith('file:') ? fileURLToPath(file) : path.resolve(file);

/**
 * Imports a package as seen from `@litter/model`, else from the folder of each of `from` (in order), else from
 * the current directory and the main script's. The one place litter looks modules up.
 */
export async function importPackage(spec: string, from: readonly (string | URL)[] = []): Promise<unknown> {
  try {
    return await import(spec);
  } catch (error) {
    if (!isNotFound(error, spec)) throw error;
    const bases = [
      ...from.map(asPath),
      path.join(process.cwd(), 'noop.js'),
      ...(process.argv[1] ? [process.argv[1]] : []),
    ];
    for (const base of bases) {
      let file: string;
      try {
        file = createRequire(base).resolve(spec);
      } catch {
        continue;
      }
      return import(pathToFileURL(file).href);
    }
    throw error;
  }
}

/** Picks the factory out of a module namespace: `default`, else `model` (also through a CommonJS `default`). */
function pickFactory(module: unknown): unknown {
  const namespace = (module ?? {}) as Record<string, unknown>;
  const candidates = [namespace.default, namespace.model];
  const inner = namespace.default as Record<string, unknown> | undefined;
  if (inner && typeof inner === 'object') candidates.push(inner.default, inner.model);
  return candidates.find((c) => contractProblems(c).length === 0) ?? namespace.default ?? namespace.model;
}

function validate(value: unknown, source: string): ModelFactory {
  if (value === undefined) {
    throw new ModelError(
      'model-invalid',
      `${source} has no default export and no \`model\` export. ${CONTRACT_HELP}`,
    );
  }
  const problems = contractProblems(value);
  if (problems.length > 0) {
    throw problemsError(
      'model-invalid',
      `${source} does not satisfy the ModelFactory contract:`,
      problems,
      CONTRACT_HELP,
    );
  }
  return value as ModelFactory;
}

async function resolvePath(spec: string): Promise<ModelFactory> {
  const absolute = path.resolve(spec);
  let file = absolute;
  try {
    const info = await stat(absolute);
    // A directory is a package: its package.json main or index.js.
    if (info.isDirectory()) file = createRequire(path.join(absolute, 'noop.js')).resolve(absolute);
  } catch (error) {
    throw new ModelError(
      'model-not-found',
      `model path ${absolute} does not exist or has no entry point (package.json main or index.js): ${(error as Error).message}`,
      { cause: error },
    );
  }
  let module: unknown;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new ModelError('model-invalid', `cannot import the model at ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return validate(pickFactory(module), file);
}

/**
 * Finds a model factory by
 * - built-in name: `seed-cnn`, and the names applications register ({@link registerModel});
 * - installed package name (`my-model`, `@me/my-model`): its default or `model` export;
 * - local path (`./my-model.js`, `/abs/dir`): a JavaScript file, or a directory with package.json/index.js.
 *
 * @throws {ModelError} `model-not-found` naming what to install; `model-invalid` naming the contract members
 *   that are missing or wrong.
 * @example
 * const factory = await resolveModel('seed-cnn');
 * const model = factory.create({ inputShape: [64, 64, 3], classes: 3 });
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<ModelFactory> {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new ModelError(
      'invalid-options',
      `model must be a name, package or path; built-in: ${builtinModelNames().join(', ')}`,
    );
  }
  const registered = registry.get(spec);
  if (registered && !('package' in registered)) return registered;
  if (
    !registered &&
    (isPathSpec(spec) || (!spec.startsWith('@') && spec.includes('/') && (await pathExists(spec))))
  ) {
    return resolvePath(spec);
  }
  const packageName = registered?.package ?? spec;
  const from = [...(registered?.from ? [registered.from] : []), ...(options.importFrom ?? [])];
  let module: unknown;
  try {
    module = await (options.importModule
      ? options.importModule(packageName)
      : importPackage(packageName, from));
  } catch (error) {
    if (isNotFound(error, packageName)) {
      const what = registered
        ? `built-in model '${spec}' needs the package ${packageName}`
        : `model package ${packageName} is not installed`;
      throw new ModelError(
        'model-not-found',
        `${what}: install it with \`pnpm add ${packageName}\` (or npm install ${packageName}). ` +
          `Built-in models: ${builtinModelNames().join(', ')}; a local model is a path starting with ./ or /`,
        { cause: error },
      );
    }
    throw new ModelError(
      'model-invalid',
      `cannot import the model package ${packageName}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return validate(pickFactory(module), `model package ${packageName}`);
}
