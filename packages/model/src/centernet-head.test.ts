import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from '../test/compare.js';
import { random } from '../test/random.js';
import { initBackend } from './backend.js';
import { addCenterNetHead, type CenterNetHeadOptions, centerNetHead } from './centernet.js';
import { testModelFactory } from './conformance.js';
import { checkCreateOptions, type ModelFactory } from './contract.js';
import { ModelError } from './errors.js';
import { initializerSeeds } from './seed-cnn.js';
import { registerTrainingKernels, restoreOriginalKernels } from './training-kernels.js';

const CLASSES = 2;

/**
 * A tiny backbone (two stride-2 convs: a stride-2 "fine" and a stride-4 "coarse" map) with the CenterNet head on
 * the coarse map, its neck to the fine one with `fine: true`.
 */
function tinyModel(
  height: number,
  width: number,
  head: Omit<CenterNetHeadOptions, 'fine'> & { fine?: boolean },
  { classes = CLASSES, seed: modelSeed = 3 }: { classes?: number; seed?: number } = {},
): tfl.LayersModel {
  const seed = initializerSeeds(modelSeed);
  const input = tfl.input({ shape: [height, width, 3] });
  const conv = (name: string) =>
    tfl.layers.conv2d({
      name,
      filters: 4,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tfl.initializers.heNormal(seed()),
    });
  const fine = conv('fine').apply(input) as tfl.SymbolicTensor;
  const coarse = conv('coarse').apply(fine) as tfl.SymbolicTensor;
  const { fine: withFine, ...rest } = head;
  const map = addCenterNetHead(coarse, { classes, ...rest, ...(withFine ? { fine } : {}) }, seed);
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(coarse);
  const logits = tfl.layers
    .dense({ units: classes, kernelInitializer: tfl.initializers.glorotUniform(seed()) })
    .apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: [logits, map] });
}

/** A model package whose CenterNet head has the stride-2 neck, for the conformance suite. */
const neckFactory: ModelFactory = {
  name: 'tiny-neck',
  description: 'Two stride-2 convs, the CenterNet head on the second with a neck to the first (a test model)',
  defaultInputSize: { width: 16, height: 16 },
  supportsBoxes: true,
  boxHead: centerNetHead,
  create(options) {
    checkCreateOptions(neckFactory, options);
    const [height, width] = options.inputShape;
    const model = tinyModel(
      height,
      width,
      { channels: 4, fine: true, backboneGradient: 0.5 },
      { classes: options.classes, ...(options.seed === undefined ? {} : { seed: options.seed }) },
    );
    return options.boxes ? model : tfl.model({ inputs: model.inputs, outputs: model.outputs[0]! });
  },
};

// Odd sides (11 x 13) crop the upsampled map; the suite saves, loads, trains and decodes it on both backends.
testModelFactory(neckFactory, {
  backends: ['cpu', 'wasm'],
  inputSizes: [
    [16, 16],
    [11, 13],
  ],
});

/** The CenterNet loss of a fixed batch on the tiny model with the neck, and its gradients by weight. */
function lossAndGradients(height: number, width: number): Float32Array[] {
  const model = tinyModel(height, width, { channels: 4, fine: true, backboneGradient: 0.5 });
  try {
    return tf.tidy(() => {
      const n = 3;
      const images = tf.tensor4d(random(n * height * width * 3, 11), [n, height, width, 3]);
      const labels = tf.tensor2d([1, 0, 1, 1, 0, 1], [n, CLASSES]);
      const boxes = tf.tensor2d(
        [
          0.1, 0.2, 0.5, 0.6, 0, 0, 0, 0, 0.3, 0.1, 0.9, 0.4, 0.05, 0.5, 0.3, 0.95, 0, 0, 0, 0, 0.6, 0.6, 0.8,
          0.9,
        ],
        [n, 4 * CLASSES],
      );
      const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () =>
          centerNetHead.loss(model.apply(images, { training: true }) as tf.Tensor[], {
            labels,
            boxes,
            mask: labels,
          }),
        weights,
      );
      return [value, ...weights.map((w) => grads[w.name]!)].map((t) => t.dataSync() as Float32Array);
    });
  } finally {
    model.dispose();
  }
}

describe('addCenterNetHead', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('without fine keeps the layers of the runs before it (same names, the outputs on the features grid)', () => {
    const model = tinyModel(16, 24, { hiddenLayers: 2 });
    try {
      const names = model.layers.map((layer) => layer.name).filter((name) => name.startsWith('centres'));
      expect(names).toEqual([
        'centres_gradient',
        'centres_conv',
        'centres_conv2',
        'centres_heatmap',
        'centres_box',
        'centres',
      ]);
      expect(model.outputs[1]!.shape).toEqual([null, 4, 6, CLASSES + 4]);
      expect(model.getLayer('centres_conv2').getWeights()[0]!.shape).toEqual([3, 3, 64, 64]);
    } finally {
      model.dispose();
    }
  });

  it.each([
    [16, 24, [8, 12], false],
    [11, 13, [6, 7], true],
  ] as const)(
    'with fine puts the outputs on the fine grid (%i x %i input: %j, cropped %s)',
    (height, width, grid, cropped) => {
      const model = tinyModel(height, width, { channels: 8, fine: true, fineLayers: 1 });
      try {
        expect(model.outputs[1]!.shape).toEqual([null, ...grid, CLASSES + 4]);
        const names = model.layers.map((layer) => layer.name);
        expect(names.includes('centres_crop')).toBe(cropped);
        expect(model.getLayer('centres_lateral').inboundNodes[0]!.inboundLayers[0]!.name).toBe(
          'centres_fine_gradient',
        );
        expect(model.getLayer('centres_fine_gradient').inboundNodes[0]!.inboundLayers[0]!.name).toBe('fine');
        expect(model.getLayer('centres_fine_conv1').getWeights()[0]!.shape).toEqual([3, 3, 8, 8]);
        expect(model.getLayer('centres_heatmap').inboundNodes[0]!.inboundLayers[0]!.name).toBe(
          'centres_fine_conv1',
        );
        // Each fine cell reads its coarse parent: the upsampled map repeats each coarse cell over 2 x 2.
        const up = tfl.model({
          inputs: model.inputs,
          outputs: model.getLayer('centres_up').output as tfl.SymbolicTensor,
        });
        const values = tf.tidy(() => {
          const out = up.predict(tf.randomUniform([1, height, width, 3], 0, 1, 'float32', 2)) as tf.Tensor4D;
          return out.arraySync()[0]!;
        });
        expect(values[1]![1]).toEqual(values[0]![0]);
        expect(values[3]![2]).toEqual(values[2]![3]);
      } finally {
        model.dispose();
      }
    },
  );

  it('refuses a fine map that is not twice the grid of the features', () => {
    const input = tfl.input({ shape: [16, 16, 3] });
    const coarse = tfl.layers
      .conv2d({ filters: 4, kernelSize: 1, strides: 4 })
      .apply(input) as tfl.SymbolicTensor;
    const seed = initializerSeeds(1);
    const attempt = () => addCenterNetHead(coarse, { classes: 2, fine: input }, seed);
    expect(attempt).toThrow(ModelError);
    expect(attempt).toThrow(/twice the grid/);
    try {
      attempt();
    } catch (error) {
      expect((error as ModelError).code).toBe('invalid-options');
    }
  });
});

describe('the CenterNet head with its neck on wasm', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    await initBackend({ backend: 'wasm' });
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each([
    [16, 24],
    [11, 13],
  ])(
    "gives the loss and the weights' gradients of tfjs's cpu backend (%i x %i input)",
    async (height, width) => {
      // tfjs's own kernels on cpu but ResizeNearestNeighborGrad: its own is wrong for batches (_resize-grad.ts).
      restoreOriginalKernels('cpu', [tf.Conv2DBackpropFilter]);
      await tf.setBackend('cpu');
      let expected: Float32Array[];
      try {
        expected = lossAndGradients(height, width);
      } finally {
        restoreOriginalKernels('cpu');
        registerTrainingKernels('cpu');
      }
      await tf.setBackend('wasm');
      const before = tf.memory().numTensors;
      const actual = lossAndGradients(height, width);
      expect(tf.memory().numTensors).toBe(before);
      expect(actual.length).toBe(expected.length);
      expect(expected.slice(1).every((g) => g.some((v) => v !== 0))).toBe(true);
      actual.forEach((values, k) => {
        expect(relativeError(values, expected[k]!), `output ${k}`).toBeLessThan(1e-4);
      });
    },
  );
});
