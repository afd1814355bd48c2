import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { initBackend, type ModuleImporter, probeBackends } from './backend.js';
import { ModelError } from './errors.js';

/** What a failed libtensorflow download leaves behind: the package, without its compiled binding. */
function bindingMissing(pkg: string): Error {
  return Object.assign(
    new Error(
      `Cannot find module '/app/node_modules/${pkg}/lib/napi-v8/tfjs_binding.node'\nRequire stack:\n- x.js`,
    ),
    { code: 'MODULE_NOT_FOUND' },
  );
}

/** What an install that left the optional package out entirely looks like. */
function notInstalled(pkg: string): Error {
  return Object.assign(
    new Error(`Cannot find package '${pkg}' imported from /app/node_modules/@litter/model/dist/backend.js`),
    {
      code: 'ERR_MODULE_NOT_FOUND',
    },
  );
}

/** The real importer, except for the packages given, which fail as told. */
function importer(failures: Record<string, () => Error>): ModuleImporter & { calls: string[] } {
  const calls: string[] = [];
  const load = async (specifier: string) => {
    calls.push(specifier);
    const failure = failures[specifier];
    if (failure) throw failure();
    return import(specifier);
  };
  return Object.assign(load, { calls });
}

const nativeFails = {
  '@tensorflow/tfjs-node-gpu': () => bindingMissing('@tensorflow/tfjs-node-gpu'),
  '@tensorflow/tfjs-node': () => notInstalled('@tensorflow/tfjs-node'),
};

describe('initBackend', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('falls back to wasm when the native bindings do not load, and says why', async () => {
    const load = importer(nativeFails);
    const info = await initBackend({ importModule: load });
    expect(info.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(info.description).toMatch(/^wasm \(WebAssembly/);
    expect(load.calls).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
      '@tensorflow/tfjs-backend-wasm',
    ]);
    expect(info.skipped.map((s) => s.package)).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
    ]);
    expect(info.skipped[0]?.reason).toMatch(
      /native binding was not built: libtensorflow could not be downloaded at install time/,
    );
    expect(info.skipped[0]?.reason).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(info.skipped[1]?.reason).toMatch(/@tensorflow\/tfjs-node is not installed/);
    expect(info.skipped[1]?.reason).not.toMatch(/CUDA/);
  });

  it('falls back to cpu when wasm cannot load either', async () => {
    const info = await initBackend({
      importModule: importer({
        ...nativeFails,
        '@tensorflow/tfjs-backend-wasm': () => new Error('no WebAssembly'),
      }),
    });
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(info.skipped.map((s) => s.name)).toEqual(['tensorflow', 'tensorflow', 'wasm']);
    expect(info.skipped[2]?.reason).toMatch(/no WebAssembly/);
  });

  it('forcing tensorflow when its binding cannot load is a ModelError that says why', async () => {
    const attempt = initBackend({ backend: 'tensorflow', importModule: importer(nativeFails) });
    await expect(attempt).rejects.toThrow(ModelError);
    await expect(attempt).rejects.toMatchObject({ code: 'backend-unavailable' });
    await expect(attempt).rejects.toThrow(/libtensorflow could not be downloaded at install time/);
    await expect(attempt).rejects.toThrow(/CUDA 11\.2 and cuDNN 8\.1/);
    await expect(attempt).rejects.toThrow(/^@litter\/model: backend 'tensorflow' cannot be used/);
  });

  it('forcing wasm when it cannot load is a ModelError; an unknown name too', async () => {
    await expect(
      initBackend({
        backend: 'wasm',
        importModule: importer({ '@tensorflow/tfjs-backend-wasm': () => new Error('boom') }),
      }),
    ).rejects.toThrow(/backend 'wasm' cannot be used:\n.*boom/);
    await expect(initBackend({ backend: 'gpu' as 'wasm' })).rejects.toMatchObject({
      code: 'invalid-options',
    });
  });

  it('forcing a backend selects it, and switching back works', async () => {
    expect((await initBackend({ backend: 'cpu' })).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend({ backend: 'wasm' })).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('silences tfjs warnings (the "install the node backend" banner goes through them)', async () => {
    await initBackend({ backend: 'cpu' });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      tf.backend_util.warn('Hi, looks like you are running TensorFlow.js in Node.js');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
    expect(process.env.TF_CPP_MIN_LOG_LEVEL).toBeDefined();
  });

  it('probeBackends lists every backend, whether it loads and why not, and keeps the active one', async () => {
    await initBackend({ backend: 'cpu' });
    const probes = await probeBackends({ importModule: importer(nativeFails) });
    expect(probes.map((p) => [p.name, p.package, p.available])).toEqual([
      ['tensorflow', '@tensorflow/tfjs-node-gpu', false],
      ['tensorflow', '@tensorflow/tfjs-node', false],
      ['wasm', '@tensorflow/tfjs-backend-wasm', true],
      ['cpu', '@tensorflow/tfjs-backend-cpu', true],
    ]);
    expect(probes[0]?.gpu).toBe(true);
    expect(probes[0]?.reason).toMatch(/libtensorflow/);
    expect(probes[2]?.reason).toBeUndefined();
    expect(tf.getBackend()).toBe('cpu');
  });

  it('auto prefers tensorflow when a native package loads', async () => {
    // A stand-in for tfjs-node: registers a 'tensorflow' backend on import, as the real package does.
    const fakeNative: ModuleImporter = async (specifier) => {
      if (specifier === '@tensorflow/tfjs-node-gpu') throw bindingMissing(specifier);
      if (specifier === '@tensorflow/tfjs-node') {
        tf.registerBackend('tensorflow', () => new MathBackendCPU(), 3);
        return {};
      }
      return import(specifier);
    };
    try {
      const info = await initBackend({ importModule: fakeNative });
      expect(info).toMatchObject({ name: 'tensorflow', package: '@tensorflow/tfjs-node', gpu: false });
      expect(info.description).toMatch(/libtensorflow through @tensorflow\/tfjs-node, CPU/);
      expect(info.skipped.map((s) => s.package)).toEqual(['@tensorflow/tfjs-node-gpu']);
    } finally {
      await tf.setBackend('cpu');
      tf.removeBackend('tensorflow');
    }
  });
});

describe('one shared @tensorflow/tfjs-core', () => {
  it('is the instance @litter/model, tfjs-layers and the backends all see', () => {
    const here = createRequire(import.meta.url);
    const fromPackage = (pkg: string) => createRequire(here.resolve(`${pkg}/package.json`));
    const cores = [
      here('@tensorflow/tfjs-core'),
      fromPackage('@tensorflow/tfjs-layers')('@tensorflow/tfjs-core'),
      fromPackage('@tensorflow/tfjs-backend-wasm')('@tensorflow/tfjs-core'),
      fromPackage('@tensorflow/tfjs-backend-cpu')('@tensorflow/tfjs-core'),
    ];
    for (const core of cores) expect(core).toBe(cores[0]);
    // The ESM namespace this package imports is that same CommonJS module.
    expect(tf.Tensor).toBe(cores[0].Tensor);
    expect(tf.engine()).toBe(cores[0].engine());
    // And @litter/model-lite resolves the same file (peer dependency, no copy of its own).
    const lite = createRequire(fileURLToPath(new URL('../../model-lite/package.json', import.meta.url)));
    expect(lite.resolve('@tensorflow/tfjs-core')).toBe(here.resolve('@tensorflow/tfjs-core'));
  });
});
