import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModuleImporter } from './backend.js';
import { contractProblems, type ModelFactory } from './contract.js';
import { ModelError } from './errors.js';
import { seedCnn } from './seed-cnn.js';

/**
 * Built-in model names and the package that provides each. `seed-cnn` lives here; the others are separate
 * packages (installed with litter), imported on demand. `model-lite` is an alias of `lite`.
 */
export const BUILTIN_MODELS: Readonly<Record<string, string>> = {
  'seed-cnn': '@litter/model',
  lite: '@litter/model-lite',
  'model-lite': '@litter/model-lite',
};

export interface ResolveModelOptions {
  /**
   * Imports a package by name. Pass `(s) => import(s)` from your own module so packages installed next to it
   * are found; by default packages are looked up from @litter/model, the current directory and the main script.
   */
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

/** Imports `spec` from here, then from the current directory, then from the main script's directory. */
async function importPackage(spec: string, importModule: ModuleImporter | undefined): Promise<unknown> {
  if (importModule !== undefined) return importModule(spec);
  try {
    return await import(spec);
  } catch (error) {
    if (!isNotFound(error, spec)) throw error;
    const bases = [path.join(process.cwd(), 'noop.js'), ...(process.argv[1] ? [process.argv[1]] : [])];
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
    throw new ModelError(
      'model-invalid',
      `${source} does not satisfy the ModelFactory contract:\n${problems.map((p) => `  - ${p}`).join('\n')}\n${CONTRACT_HELP}`,
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
 * - built-in name: `seed-cnn`, `lite` (see {@link BUILTIN_MODELS});
 * - installed package name (`my-model`, `@me/my-model`): its default or `model` export;
 * - local path (`./my-model.js`, `/abs/dir`): a JavaScript file, or a directory with package.json/index.js.
 *
 * @throws {ModelError} `model-not-found` naming what to install; `model-invalid` naming the contract members
 *   that are missing or wrong.
 * @example
 * const factory = await resolveModel('lite');
 * const model = factory.create({ inputShape: [64, 64, 3], classes: 3 });
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<ModelFactory> {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new ModelError(
      'invalid-options',
      `model must be a name, package or path; built-in: ${Object.keys(BUILTIN_MODELS).join(', ')}`,
    );
  }
  if (spec === seedCnn.name) return seedCnn;
  if (isPathSpec(spec) || (!spec.startsWith('@') && spec.includes('/') && (await pathExists(spec)))) {
    return resolvePath(spec);
  }
  const builtin = BUILTIN_MODELS[spec];
  const packageName = builtin ?? spec;
  let module: unknown;
  try {
    module = await importPackage(packageName, options.importModule);
  } catch (error) {
    if (isNotFound(error, packageName)) {
      const what = builtin
        ? `built-in model '${spec}' needs the package ${packageName}`
        : `model package ${packageName} is not installed`;
      throw new ModelError(
        'model-not-found',
        `${what}: install it with \`pnpm add ${packageName}\` (or npm install ${packageName}). ` +
          `Built-in models: ${Object.keys(BUILTIN_MODELS).join(', ')}; a local model is a path starting with ./ or /`,
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
