import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isProcessAlive } from '../packages/dataset/src/atomic.js';

/*
 * The one build check of the tests. Every worker thread and child process that a test starts runs built code
 * from the packages' dist/ (Node runs JavaScript, not our TypeScript; `builtModule` of @litter/dataset finds
 * a worker's built entry): the dataset's decoding threads, the trainer's worker threads (with the model
 * packages they load by name), the SIGKILL test's child and the built `litter` of the end-to-end tests.
 * `pnpm test` builds everything first; a test file run alone calls ensureBuilt() before it starts any of
 * them, which follows their imports through the sources and rebuilds each package where one of those
 * sources is newer than its build, so that an edit to `_loss.ts`, a kernel or the PNG decoder never runs as
 * the old code.
 */
const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const packagesDir = path.join(repoRoot, 'packages');

/** The packages that built code comes from, in build order (each built after those it imports). */
const PACKAGES = ['dataset', 'model', 'model-lite', 'report', 'trainer', 'render', 'cli'] as const;

/** Where the code that the tests run built starts (paths under packages/). */
const ROOTS = [
  'dataset/src/_decode-worker.ts', // the dataset's decoding threads
  'trainer/src/parallel/worker.ts', // the trainer's worker threads
  'model-lite/src/index.ts', // the model packages those load by name
  'dataset/test/_write-cache-child.mjs', // the child process of the cache's SIGKILL test
  'cli/src/bin.ts', // the `litter` that the CLI's end-to-end tests run
];

/** `import ... from 'x'`, `export ... from 'x'`, `import 'x'`, `import('x')`: the specifier, and whether type-only. */
const IMPORT =
  /\b(?:import|export)(\s+type\b)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

/** The source file of a built module path (`dist/x.js` -> `src/x.ts`), or the file itself outside dist/. */
function sourceOf(builtOrSource: string): string | undefined {
  const base = builtOrSource
    .replace(`${path.sep}dist${path.sep}`, `${path.sep}src${path.sep}`)
    .replace(/\.m?js$/, '');
  return [`${base}.ts`, builtOrSource].find((file) => existsSync(file));
}

/** The source a workspace package specifier (`@litter/model`, `@litter/trainer/options`) runs as, by its exports. */
function workspaceSource(specifier: string): string | undefined {
  const [, name, sub] = /^@litter\/([\w-]+)(?:\/(.+))?$/.exec(specifier) ?? [];
  if (name === undefined || !existsSync(path.join(packagesDir, name, 'package.json'))) return undefined;
  const pkg = JSON.parse(readFileSync(path.join(packagesDir, name, 'package.json'), 'utf8')) as {
    exports?: Record<string, { default?: string } | string>;
  };
  const entry = pkg.exports?.[sub === undefined ? '.' : `./${sub}`];
  const target = typeof entry === 'string' ? entry : entry?.default;
  return target === undefined ? undefined : sourceOf(path.join(packagesDir, name, target));
}

/** Every source file that runs built, found by following the imports (type-only ones run nothing) from ROOTS. */
export function builtSources(): string[] {
  const seen = new Set<string>();
  const queue = ROOTS.map((root) => path.join(packagesDir, root));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (match[1]) continue;
      const specifier = match[2] ?? match[3] ?? match[4]!;
      const next = specifier.startsWith('.')
        ? sourceOf(path.resolve(path.dirname(file), specifier))
        : workspaceSource(specifier);
      if (next !== undefined && !seen.has(next)) queue.push(next);
    }
  }
  return [...seen].sort();
}

/** The built file of a source file: `packages/x/src/a/b.ts` -> `packages/x/dist/a/b.js` (tests' files: themselves). */
export function builtOf(source: string): string {
  return source.replace(`${path.sep}src${path.sep}`, `${path.sep}dist${path.sep}`).replace(/\.ts$/, '.js');
}

/** The sources whose built file is missing or older than them. */
export function staleSources(
  sources: readonly string[],
  built: (source: string) => string = builtOf,
): string[] {
  return sources.filter((source) => {
    const file = built(source);
    return !existsSync(file) || statSync(file).mtimeMs < statSync(source).mtimeMs;
  });
}

const packageOf = (file: string) => path.relative(packagesDir, file).split(path.sep)[0]!;

/** Rebuilds (tsc) each package with a stale source that built code runs; throws if any is still stale. */
export function ensureBuilt(): void {
  const sources = builtSources();
  if (staleSources(sources).length === 0) return;
  // Test files run in parallel processes: one builds while the others wait, then finds nothing left to do.
  whileLocked(() => {
    const stale = new Set(staleSources(sources).map(packageOf));
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    for (const pkg of PACKAGES.filter((name) => stale.has(name))) {
      try {
        const cwd = path.join(packagesDir, pkg);
        execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd, stdio: 'pipe' });
      } catch {
        // tsc still writes its output when another file has type errors; what matters is the check below.
      }
    }
  });
  const left = staleSources(sources);
  if (left.length > 0) {
    const names = left.map((file) => path.relative(packagesDir, file)).join(', ');
    throw new Error(
      `could not build what the tests' workers and child processes run (${names}): run pnpm build`,
    );
  }
}

/** Runs `work` holding a lock file (its owner's pid inside), taking over the lock of a process that died. */
function whileLocked(work: () => void): void {
  const lock = path.join(repoRoot, 'node_modules', '.cache', 'litter-test-build.lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = lockOwner(lock);
      if (owner !== undefined && !isProcessAlive(owner)) rmSync(lock, { force: true });
      else Atomics.wait(pause, 0, 0, 100);
    }
  }
  try {
    work();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** The pid in the lock file; undefined while it is being written or once it is gone. */
function lockOwner(lock: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
