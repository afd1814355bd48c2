import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['dataset', 'model', 'model-lite', 'trainer', 'report', 'render', 'cli'];
const src = (pkg: string, file: string) =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url));

/**
 * Tests import the workspace packages from source, so they never run against a stale `dist/`.
 * `@litter/x` maps to `src/index.ts`, `@litter/x/sub` to `src/sub.ts`.
 */
const alias = packages.flatMap((pkg) => [
  { find: new RegExp(`^@litter/${pkg}$`), replacement: src(pkg, 'index.ts') },
  { find: new RegExp(`^@litter/${pkg}/([\\w-]+)$`), replacement: src(pkg, '$1.ts') },
]);

const project = (name: string) => ({
  extends: true as const,
  test: {
    name,
    root: fileURLToPath(new URL(`./packages/${name}`, import.meta.url)),
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: packages.map(project),
  },
});
