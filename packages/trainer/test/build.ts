import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * Workers run built code (worker threads cannot run TypeScript): dist/parallel/worker.js and everything it
 * imports, the trainer's own modules (`_loss.js`, ...), the built @litter/model (its kernels), @litter/dataset,
 * and the model packages a worker loads (@litter/model-lite). `pnpm test` builds everything first; a test file
 * run alone calls ensureWorkerBuilt(), which follows the worker's imports through the sources and rebuilds each
 * package where one of those sources is newer than its build, so that an edit to `_loss.ts` or a kernel never
 * runs as the old code.
 */
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));

/** The packages a worker's code comes from, in build order (each built after those it imports). */
const PACKAGES = ['dataset', 'model', 'model-lite', 'trainer'] as const;

/** Where a worker's code starts: the worker entry, and the model packages it loads by name. */
const ROOTS = ['trainer/src/parallel/worker.ts', 'model-lite/src/index.ts'];

/** `import ... from 'x'`, `export ... from 'x'`, `import 'x'`, `import('x')`: the specifier, and whether type-only. */
const IMPORT =
  /\b(?:import|export)(\s+type\b)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

/** The source file of a built module path (`dist/x.js` -> `src/x.ts`, or `src/x.js` for JavaScript sources). */
function sourceOf(builtOrSource: string): string | undefined {
  const base = builtOrSource
    .replace(`${path.sep}dist${path.sep}`, `${path.sep}src${path.sep}`)
    .replace(/\.js$/, '');
  return [`${base}.ts`, `${base}.js`].find((file) => existsSync(file));
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

/** Every source file a worker runs, found by following the imports (type-only ones run nothing) from its roots. */
export function workerSources(): string[] {
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

/** The built file of a source file: `packages/x/src/a/b.ts` -> `packages/x/dist/a/b.js`. */
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

export function ensureWorkerBuilt(): void {
  const sources = workerSources();
  const stale = new Set(staleSources(sources).map(packageOf));
  if (stale.size === 0) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  for (const pkg of PACKAGES.filter((name) => stale.has(name))) {
    try {
      const cwd = path.join(packagesDir, pkg);
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd, stdio: 'pipe' });
    } catch {
      // tsc still writes its output when another file has type errors; what matters is the check below.
    }
  }
  const left = staleSources(sources);
  if (left.length > 0) {
    const names = left.map((file) => path.relative(packagesDir, file)).join(', ');
    throw new Error(`could not build what the workers run (${names}): run pnpm build`);
  }
}
