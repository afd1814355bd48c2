import { resolveModel } from '@litter/model';
import { testModelFactory } from '@litter/model/conformance';
import { describe, expect, it } from 'vitest';
import liteDefault, { model } from './index.js';

testModelFactory(model, { backends: ['cpu', 'wasm'] });

describe('@litter/model-lite', () => {
  it('is what the built-in name "lite" resolves to (the swap works)', async () => {
    expect(liteDefault).toBe(model);
    const resolved = await resolveModel('lite');
    expect(resolved.name).toBe('lite');
    expect(resolved.create).toBe(model.create);
  });

  it('is compact: conv-batchnorm-relu blocks, global average pooling, few weights', () => {
    const built = model.create({ inputShape: [64, 48, 3], classes: 3 });
    try {
      const kinds = built.layers.map((layer) => layer.getClassName());
      expect(kinds.filter((k) => k === 'ConvBatchNormRelu')).toHaveLength(6);
      expect(kinds).toContain('GlobalAveragePooling2D');
      expect(kinds).not.toContain('Flatten');
      expect(built.countParams()).toBeLessThan(200_000);
    } finally {
      built.dispose();
    }
  });
});
