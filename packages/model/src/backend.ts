import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers all of them on import.
import '@tensorflow/tfjs-layers';
import { hasRelaxedSimd } from './_wasm-asm.js';
import { ModelError, problemsError } from './errors.js';
import { registerTrainingKernels } from './training-kernels.js';

/** The TensorFlow.js backends litter can run on, fastest first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** Imports a backend package; tests inject one that fails like a broken native binding. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

export interface InitBackendOptions {
  /**
   * The backend to use. `auto` takes the first that loads of: `tensorflow` (`@tensorflow/tfjs-node-gpu`, then
   * `@tensorflow/tfjs-node`), `wasm`, `cpu`. A named one that cannot load is an error that says why.
   * @default 'auto'
   */
  backend?: BackendName | 'auto';
  /**
   * How backend packages are imported. For tests (simulate a native binding that fails to load).
   * @default (specifier) => import(specifier)
   */
  importModule?: ModuleImporter;
}

/** One candidate backend package and whether it loads here. */
export interface BackendProbe {
  name: BackendName;
  /** The npm package that provides it. */
  package: string;
  /** Whether it runs on a GPU. */
  gpu: boolean;
  available: boolean;
  /** Why it is not available (for `litter doctor`), absent when it is. */
  reason?: string;
}

/** The backend in use after {@link initBackend}. */
export interface BackendInfo {
  name: BackendName;
  package: string;
  gpu: boolean;
  /** For logs, e.g. `wasm (WebAssembly, SIMD, relaxed SIMD, 1 thread)`. */
  description: string;
  /** Faster candidates that were tried first and why they did not load (`auto` only). */
  skipped: BackendProbe[];
}

interface Candidate {
  name: BackendName;
  package: string;
  gpu: boolean;
}

const CANDIDATES: readonly Candidate[] = [
  { name: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', gpu: true },
  { name: 'tensorflow', package: '@tensorflow/tfjs-node', gpu: false },
  { name: 'wasm', package: '@tensorflow/tfjs-backend-wasm', gpu: false },
  { name: 'cpu', package: '@tensorflow/tfjs-backend-cpu', gpu: false },
];

const BACKEND_NAMES: readonly string[] = ['tensorflow', 'wasm', 'cpu'];

const defaultImporter: ModuleImporter = (specifier) => import(specifier);

/** Which native package registered the `tensorflow` backend in this process (both cannot be loaded at once). */
let nativePackage: string | undefined;
let wasmPathsSet = false;
let silenced = false;

/**
 * Stops tfjs's console chatter: the "install the node backend" banner, kernel/platform re-registration
 * warnings (all go through tfjs's `warn`, which is silent in prod mode) and libtensorflow's C++ start-up log.
 */
function silenceTfjs(): void {
  if (silenced) return;
  silenced = true;
  tf.enableProdMode();
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n').find((line) => line.trim() !== '') ?? message;
}

/** Why a native tfjs-node(-gpu) package did not load, in words a user can act on. */
function nativeReason(candidate: Candidate, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  const pkg = candidate.package;
  let reason: string;
  if (/tfjs_binding\.node|napi-v\d/.test(message)) {
    reason = `${pkg} is installed but its native binding was not built: libtensorflow could not be downloaded at install time`;
  } else if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(pkg)) {
    reason =
      `${pkg} is not installed: it is an optional dependency whose install script downloads libtensorflow, ` +
      'and that download failed (no network?), so the install skipped it';
  } else if (/lib(cudart|cudnn|cublas|cufft|curand|cusolver|cusparse)|CUDA/i.test(message)) {
    reason = `${pkg} could not load the CUDA libraries (${firstLine(error)})`;
  } else {
    reason = `${pkg} failed to load (${firstLine(error)})`;
  }
  if (candidate.gpu) reason += '; tfjs-node-gpu 4.x needs an NVIDIA GPU with CUDA 11.2 and cuDNN 8.1';
  return `${reason}. To use it, install again with network access (\`pnpm install\`, or \`pnpm rebuild ${pkg}\`).`;
}

/**
 * Runs `tf.setBackend(name)`, returning why it failed. tfjs reports initialisation errors only through
 * warnings (silent in prod mode), so they are collected here for the message.
 */
async function setBackendOrReason(name: BackendName): Promise<string | undefined> {
  if (tf.findBackendFactory(name) === null) return `no '${name}' backend was registered by its package`;
  const warnings: string[] = [];
  const warn = console.warn;
  const prod = tf.env().getBool('PROD');
  tf.env().set('PROD', false);
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
  };
  let ok = false;
  let thrown: unknown;
  try {
    ok = await tf.setBackend(name);
  } catch (error) {
    thrown = error;
  } finally {
    console.warn = warn;
    tf.env().set('PROD', prod);
  }
  if (ok) return undefined;
  if (thrown !== undefined) return firstLine(thrown);
  const detail = warnings
    .flatMap((w) => w.split('\n'))
    .map((line) => line.trim())
    .filter(
      (line) => line !== '' && !line.startsWith('at ') && !/^Initialization of backend .* failed$/.test(line),
    );
  return detail[0] ?? `tf.setBackend('${name}') failed`;
}

/**
 * Our wasm convolution kernels use relaxed SIMD's fused multiply-add where the engine has it (1.15-1.2x a lite
 * training step; BENCHMARKS.md, session 9, issue 11). Node 22 and later have it by default; Node 20's V8 (11.3)
 * has it behind a flag, which is set here, before any kernel module is built: it enables only that WebAssembly
 * feature, for this process and its worker threads. Where it cannot be set the kernels multiply and add.
 */
async function enableRelaxedSimd(): Promise<void> {
  if (hasRelaxedSimd()) return;
  try {
    const v8 = await import('node:v8');
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // Not Node: the kernels keep the separate multiply and add.
  }
}

/** Directory of the wasm binaries, resolved from this package so it works wherever pnpm put them. */
function wasmBinaryDirectory(): string | undefined {
  try {
    const main = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    return path.dirname(main) + path.sep;
  } catch {
    return undefined;
  }
}

/** Imports a candidate's package and makes it the active backend; returns why not when it cannot. */
async function activate(candidate: Candidate, importModule: ModuleImporter): Promise<string | undefined> {
  switch (candidate.name) {
    case 'tensorflow': {
      if (nativePackage !== undefined && nativePackage !== candidate.package) {
        return `${nativePackage} already provides the tensorflow backend in this process`;
      }
      try {
        await importModule(candidate.package);
      } catch (error) {
        return nativeReason(candidate, error);
      }
      nativePackage = candidate.package;
      return setBackendOrReason('tensorflow');
    }
    case 'wasm': {
      let wasm: { setWasmPaths?: (prefix: string) => void };
      try {
        wasm = (await importModule(candidate.package)) as typeof wasm;
      } catch (error) {
        return `${candidate.package} could not be imported (${firstLine(error)}); install it next to @litter/model`;
      }
      // In Node the wasm package finds its .wasm files next to its own script; setting the directory
      // explicitly keeps that true when the script is loaded from elsewhere (bundled, or through a loader).
      if (
        !wasmPathsSet &&
        typeof wasm.setWasmPaths === 'function' &&
        tf.engine().registry.wasm === undefined
      ) {
        const directory = wasmBinaryDirectory();
        if (directory !== undefined) wasm.setWasmPaths(directory);
        wasmPathsSet = true;
      }
      await enableRelaxedSimd();
      try {
        registerTrainingKernels('wasm');
      } catch (error) {
        return firstLine(error);
      }
      return setBackendOrReason('wasm');
    }
    case 'cpu': {
      try {
        await importModule(candidate.package);
      } catch (error) {
        return `${candidate.package} could not be imported (${firstLine(error)}); install it next to @litter/model`;
      }
      try {
        registerTrainingKernels('cpu');
      } catch (error) {
        return firstLine(error);
      }
      return setBackendOrReason('cpu');
    }
  }
}

async function describeActive(candidate: Candidate): Promise<string> {
  switch (candidate.name) {
    case 'tensorflow':
      return `tensorflow (libtensorflow through ${candidate.package}, ${candidate.gpu ? 'GPU' : 'CPU'})`;
    case 'wasm': {
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      const fused = simd && hasRelaxedSimd() ? ', relaxed SIMD' : '';
      return `wasm (WebAssembly${simd ? ', SIMD' : ''}${fused}, ${threads ? 'multi-threaded' : '1 thread'})`;
    }
    case 'cpu':
      return 'cpu (plain JavaScript, slowest)';
  }
}

/**
 * Initialises TensorFlow.js once for the process and selects the backend: the one place that does.
 * Silences tfjs's console banner. Calling it again switches backends (tensors stay valid).
 *
 * @throws {ModelError} `backend-unavailable` when a named backend cannot load (with the reason), or when no
 *   backend loads at all; `invalid-options` for an unknown name.
 * @example
 * const info = await initBackend();                     // tensorflow > wasm > cpu
 * console.log(`backend: ${info.description}`);
 * await initBackend({ backend: 'wasm' });               // force one
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const requested = options.backend ?? 'auto';
  const importModule = options.importModule ?? defaultImporter;
  if (requested !== 'auto' && !BACKEND_NAMES.includes(requested)) {
    throw new ModelError(
      'invalid-options',
      `unknown backend '${String(requested)}': use one of auto, ${BACKEND_NAMES.join(', ')}`,
    );
  }
  silenceTfjs();
  const candidates = CANDIDATES.filter((c) => requested === 'auto' || c.name === requested);
  const skipped: BackendProbe[] = [];
  for (const candidate of candidates) {
    const reason = await activate(candidate, importModule);
    if (reason === undefined) {
      return {
        name: candidate.name,
        package: candidate.package,
        gpu: candidate.gpu,
        description: await describeActive(candidate),
        skipped,
      };
    }
    skipped.push({ ...candidate, available: false, reason });
  }
  const reasons = skipped.map((probe) => String(probe.reason));
  if (requested === 'auto') {
    throw problemsError('backend-unavailable', 'no TensorFlow.js backend could be loaded:', reasons);
  }
  throw problemsError(
    'backend-unavailable',
    `backend '${requested}' cannot be used:`,
    reasons,
    'Pick another with --backend (auto picks the best that loads).',
  );
}

/**
 * Tries every backend package and reports which load and why not, for `litter doctor`. Leaves the active
 * backend as it was (when one was set).
 *
 * @example
 * for (const probe of await probeBackends()) console.log(probe.package, probe.available ? 'ok' : probe.reason);
 */
export async function probeBackends(
  options: Pick<InitBackendOptions, 'importModule'> = {},
): Promise<BackendProbe[]> {
  const importModule = options.importModule ?? defaultImporter;
  silenceTfjs();
  const previous = tf.engine().backendName as string | null;
  const probes: BackendProbe[] = [];
  for (const candidate of CANDIDATES) {
    const reason = await activate(candidate, importModule);
    probes.push(
      reason === undefined ? { ...candidate, available: true } : { ...candidate, available: false, reason },
    );
  }
  if (previous) await tf.setBackend(previous);
  return probes;
}
