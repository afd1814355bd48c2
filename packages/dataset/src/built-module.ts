/**
 * Where a module that runs on its own (a worker thread's entry, a child process's script) is, built: worker
 * threads and child processes run what Node loads, JavaScript, never the TypeScript sources. `relative` (a
 * `.js` path) is resolved next to the calling module (`from`, its `import.meta.url`) when that runs built; from
 * the TypeScript sources (as under vitest, which imports the workspace packages from `src/`), it is the same
 * file in the package's `dist/`, which tests bring up to date first (their build check, `test/built.ts`).
 *
 * @example
 * new Worker(builtModule('./_decode-worker.js', import.meta.url));
 */
export function builtModule(relative: string, from: string): URL {
  const sources = from.lastIndexOf('/src/');
  if (!from.endsWith('.ts') || sources < 0) return new URL(relative, from);
  return new URL(relative, `${from.slice(0, sources)}/dist/${from.slice(sources + '/src/'.length)}`);
}
