import { registerModel } from '@litter/model';

/** The model packages litter comes with, by the names `--model` takes (besides @litter/model's own seed-cnn). */
export const BUILTIN_MODEL_PACKAGES = {
  lite: '@litter/model-lite',
  'model-lite': '@litter/model-lite',
} as const;

/**
 * Registers litter's built-in models with `@litter/model`, which cannot import the packages that depend on it:
 * they are resolved from here (the CLI depends on them), in this thread and in the training workers.
 * Call it once the command has loaded `@litter/model` (it loads TensorFlow.js).
 */
export function registerBuiltinModels(): void {
  for (const [name, pkg] of Object.entries(BUILTIN_MODEL_PACKAGES)) {
    registerModel(name, { package: pkg, from: import.meta.url });
  }
}
