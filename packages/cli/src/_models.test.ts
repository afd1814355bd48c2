import { resolveModel } from '@litter/model';
import { model as lite } from '@litter/model-lite';
import { describe, expect, it } from 'vitest';
import { registerBuiltinModels } from './_models.js';

describe("litter's built-in models", () => {
  it('resolve lite and model-lite to @litter/model-lite once the CLI registered them (the swap works)', async () => {
    registerBuiltinModels();
    for (const name of ['lite', 'model-lite']) {
      const resolved = await resolveModel(name);
      expect(resolved.name).toBe('lite');
      expect(resolved.description).toBe(lite.description);
      expect(resolved.defaultInputSize).toEqual(lite.defaultInputSize);
    }
  });
});
