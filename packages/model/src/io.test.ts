import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { ModelError } from './errors.js';
import { loadModel, readModelMetadata, saveModel } from './io.js';

function tinyModel(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [4],
        units: 3,
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
    ],
  });
}

function predict(model: tfl.LayersModel): Float32Array {
  return tf.tidy(
    () => (model.predict(tf.tensor2d([[0.1, 0.2, 0.3, 0.4]])) as tf.Tensor).dataSync() as Float32Array,
  );
}

describe('saveModel / loadModel', () => {
  let root: string;
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'litter-io-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes model.json + weights.bin (creating parents) and loads the same model back', async () => {
    const model = tinyModel(1);
    const dir = path.join(root, 'run', 'checkpoints', 'last');
    await saveModel(model, dir, { metadata: { vocabulary: ['Can', 'Cube'] } });
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
    expect(await readModelMetadata(dir)).toEqual({ vocabulary: ['Can', 'Cube'] });
    const loaded = await loadModel(dir);
    expect(predict(loaded)).toEqual(predict(model));
    // The path of model.json itself works too.
    const again = await loadModel(path.join(dir, 'model.json'));
    expect(predict(again)).toEqual(predict(model));
    for (const m of [model, loaded, again]) m.dispose();
  });

  it('refuses weights that are damaged but of the right length (checksum), naming the file', async () => {
    const dir = path.join(root, 'model');
    const model = tinyModel(1);
    await saveModel(model, dir);
    const weights = path.join(dir, 'weights.bin');
    const bytes = await readFile(weights);
    bytes[5]! ^= 0x10;
    await writeFile(weights, bytes);
    const error = await loadModel(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('model-io');
    expect((error as ModelError).message).toContain(`${weights} does not match the checksum in model.json`);
    model.dispose();
  });

  it('refuses NaN or infinite weights, naming the file', async () => {
    const dir = path.join(root, 'model');
    const model = tinyModel(1);
    const [kernel, bias] = model.getWeights();
    model.setWeights([kernel!, tf.fill(bias!.shape, Number.NaN)]);
    await saveModel(model, dir);
    const error = await loadModel(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ModelError);
    expect((error as ModelError).code).toBe('model-invalid');
    expect((error as ModelError).message).toContain(
      `${path.join(dir, 'weights.bin')} holds 3 NaN or infinite weights`,
    );
    model.dispose();
  });

  it('replaces an existing model atomically, keeps other files and leaves no staging directories', async () => {
    const dir = path.join(root, 'model');
    const first = tinyModel(1);
    const second = tinyModel(2);
    await saveModel(first, dir);
    await writeFile(path.join(dir, 'optimizer.json'), '{"kept":true}');
    await saveModel(second, dir);
    expect(await readFile(path.join(dir, 'optimizer.json'), 'utf8')).toBe('{"kept":true}');
    expect(await readdir(root)).toEqual(['model']);
    const loaded = await loadModel(dir);
    expect(predict(loaded)).toEqual(predict(second));
    expect(predict(loaded)).not.toEqual(predict(first));
    for (const m of [first, second, loaded]) m.dispose();
  });

  it('a save that fails leaves the old model untouched', async () => {
    const dir = path.join(root, 'model');
    const model = tinyModel(1);
    await saveModel(model, dir);
    const before = await readFile(path.join(dir, 'weights.bin'));
    const failing = {
      save: async () => {
        throw new Error('disk full');
      },
    } as unknown as tfl.LayersModel;
    await expect(saveModel(failing, dir)).rejects.toMatchObject({
      code: 'model-io',
      message: expect.stringMatching(/disk full/),
    });
    expect(await readFile(path.join(dir, 'weights.bin'))).toEqual(before);
    expect(await readdir(root)).toEqual(['model']);
    model.dispose();
  });

  it('says what is wrong with a missing, truncated or foreign model', async () => {
    await expect(loadModel(path.join(root, 'nope'))).rejects.toThrow(ModelError);
    await expect(loadModel(path.join(root, 'nope'))).rejects.toMatchObject({ code: 'model-not-found' });

    const dir = path.join(root, 'model');
    const model = tinyModel(1);
    await saveModel(model, dir);
    await truncate(path.join(dir, 'weights.bin'), 8);
    await expect(loadModel(dir)).rejects.toThrow(
      /weights are 8 bytes, model.json describes 60: the save was cut short/,
    );

    await writeFile(path.join(dir, 'model.json'), '{"hello":1}');
    await expect(loadModel(dir)).rejects.toMatchObject({
      code: 'model-io',
      message: expect.stringMatching(/not a tfjs model.json/),
    });
    model.dispose();
  });
});
