import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/*
 * Workers run the built dist/parallel/worker.js (worker threads cannot run TypeScript), which imports the built
 * @litter/model (and @litter/model-lite). `pnpm test` builds everything first; a test file run alone calls
 * ensureWorkerBuilt() to rebuild the trainer package when its dist is older than src/parallel.
 */
const packageDir = fileURLToPath(new URL('../', import.meta.url));
const distWorker = `${packageDir}dist/parallel/worker.js`;
const sourceDir = `${packageDir}src/parallel/`;

export function ensureWorkerBuilt(): void {
  const newest = Math.max(
    ...readdirSync(sourceDir)
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
      .map((file) => statSync(sourceDir + file).mtimeMs),
  );
  if (existsSync(distWorker) && statSync(distWorker).mtimeMs >= newest) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: packageDir, stdio: 'pipe' });
  } catch {
    // tsc still writes its output when another file has type errors; what matters is the worker below.
  }
  if (!existsSync(distWorker) || statSync(distWorker).mtimeMs < newest) {
    throw new Error(`could not build ${distWorker}: run pnpm --filter @litter/trainer build`);
  }
}
