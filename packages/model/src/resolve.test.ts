import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { ModelError } from './errors.js';
import { builtinModelNames, registeredModels, registerModel, resolveModel } from './resolve.js';
import { seedCnn } from './seed-cnn.js';

const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/models/${name}`, import.meta.url));

const notInstalled = (pkg: string) => async () => {
  throw Object.assign(new Error(`Cannot find package '${pkg}' imported from /app/x.js`), {
    code: 'ERR_MODULE_NOT_FOUND',
  });
};

describe('resolveModel', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('resolves the built-in name and the names an application registers', async () => {
    expect(await resolveModel('seed-cnn')).toBe(seedCnn);
    expect(builtinModelNames()).toContain('seed-cnn');
    // As the CLI registers @litter/model-lite (which @litter/model cannot import by itself under pnpm).
    registerModel('lite', { package: '@litter/model-lite' });
    registerModel('model-lite', { package: '@litter/model-lite' });
    expect((await resolveModel('lite')).name).toBe('lite');
    expect((await resolveModel('model-lite')).name).toBe('lite');
    expect(registeredModels()).toEqual({
      lite: { package: '@litter/model-lite' },
      'model-lite': { package: '@litter/model-lite' },
    });
    const factory = { ...seedCnn, name: 'in-memory' };
    registerModel('in-memory', factory);
    expect(await resolveModel('in-memory')).toBe(factory);
  });

  it('names the package to install for a built-in name whose package is missing', async () => {
    const attempt = resolveModel('lite', { importModule: notInstalled('@litter/model-lite') });
    await expect(attempt).rejects.toThrow(ModelError);
    await expect(attempt).rejects.toMatchObject({ code: 'model-not-found' });
    await expect(attempt).rejects.toThrow(
      /^@litter\/model: built-in model 'lite' needs the package @litter\/model-lite: install it with `pnpm add @litter\/model-lite`/,
    );
  });

  it('names the package to install for an unknown package name', async () => {
    const attempt = resolveModel('litter-model-that-does-not-exist');
    await expect(attempt).rejects.toMatchObject({ code: 'model-not-found' });
    await expect(attempt).rejects.toThrow(
      /model package litter-model-that-does-not-exist is not installed: install it with `pnpm add litter-model-that-does-not-exist`/,
    );
  });

  it('takes an installed package by its default or `model` export', async () => {
    const factory = { ...seedCnn, name: 'pkg-model' };
    expect(await resolveModel('pkg-a', { importModule: async () => ({ default: factory }) })).toBe(factory);
    expect(await resolveModel('pkg-b', { importModule: async () => ({ model: factory }) })).toBe(factory);
    // A CommonJS package seen through ESM: module.exports.model arrives as default.model.
    expect(await resolveModel('pkg-c', { importModule: async () => ({ default: { model: factory } }) })).toBe(
      factory,
    );
  });

  it('names the contract members a package lacks', async () => {
    const attempt = resolveModel('pkg-bad', {
      importModule: async () => ({ default: { name: 'x', create: 1 } }),
    });
    await expect(attempt).rejects.toMatchObject({ code: 'model-invalid' });
    await expect(attempt).rejects.toThrow(/model package pkg-bad does not satisfy the ModelFactory contract/);
    await expect(attempt).rejects.toThrow(/description: expected a string, got nothing \(missing\)/);
    await expect(attempt).rejects.toThrow(/defaultInputSize: expected \{ width, height \}/);
    await expect(attempt).rejects.toThrow(/supportsBoxes: expected a boolean/);
    await expect(attempt).rejects.toThrow(/create: expected a function .*, got number 1/);
    await expect(attempt).rejects.not.toThrow(/ name:/);
    await expect(resolveModel('pkg-empty', { importModule: async () => ({ other: 1 }) })).rejects.toThrow(
      /has no default export and no `model` export/,
    );
  });

  it('loads local paths: a package directory or a module file', async () => {
    const fromDirectory = await resolveModel(fixture('good-package'));
    expect(fromDirectory.name).toBe('fixture-dense');
    const built = fromDirectory.create({ inputShape: [8, 8, 3], classes: 2 });
    expect(built.outputs[0]?.shape).toEqual([null, 2]);
    built.dispose();
    expect((await resolveModel(fixture('named-export.mjs'))).name).toBe('fixture-named');
  });

  it('says what is wrong with a local path', async () => {
    await expect(resolveModel(fixture('missing.mjs'))).rejects.toMatchObject({ code: 'model-not-found' });
    await expect(resolveModel(fixture('incomplete.mjs'))).rejects.toThrow(
      /incomplete\.mjs does not satisfy the ModelFactory contract/,
    );
    await expect(resolveModel(fixture('no-factory.mjs'))).rejects.toThrow(
      /has no default export and no `model` export/,
    );
    await expect(resolveModel('')).rejects.toMatchObject({ code: 'invalid-options' });
  });
});
