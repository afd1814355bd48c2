import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

/** Tests import the workspace packages from source, so they never run against a stale `dist/`. */
const alias = {
  '@litter/dataset': src('dataset'),
  '@litter/model-lite': src('model-lite'),
  '@litter/model': src('model'),
  '@litter/trainer': src('trainer'),
};

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
    projects: ['dataset', 'model', 'model-lite', 'trainer', 'cli'].map(project),
  },
});
