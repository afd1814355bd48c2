import {
  addCenterNetHead,
  ConvBatchNormRelu,
  type CreateModelOptions,
  centerNetHead,
  checkCreateOptions,
  classificationHead,
  initializerSeeds,
  type ModelFactory,
} from '@litter/model';
import * as tfl from '@tensorflow/tfjs-layers';

/** Output channels and stride of each conv-batchnorm-relu block. */
const BLOCKS: readonly (readonly [filters: number, stride: number])[] = [
  [16, 2],
  [32, 1],
  [32, 2],
  [64, 1],
  [64, 2],
  [128, 1],
];

/**
 * Where and how the CenterNet head sits on the backbone: on block 5's stride-8 map (64 channels), with two
 * hidden layers of its own and half of its gradient into the backbone, so that block 6 serves classification
 * alone. Measured at 260 steps, 120x90, scenes 8 and 9 held out (BENCHMARKS.md, issue 14, session 5): on block 6
 * with one hidden layer and the full gradient, exact match 0.690 / 0.450 (blender-five / another render set)
 * against 0.884 / 0.826 without boxes; on block 5 with two hidden layers and the box terms at half weight, 0.901 /
 * 0.806 at about the same mean IoU (0.751 / 0.651 against 0.762 / 0.693). Half the weight and half the gradient
 * into the backbone differ only in the head's own gradient scale, which Adam's steps do not depend on; the kept
 * form was then measured in `--time 2m` runs (BENCHMARKS.md). Session 7 (BENCHMARKS.md, issue 14, 600 steps, half
 * at 80x60, three render sets): hidden layers of 32 channels instead of 64 cost 1.15x instead of 1.27x of a step
 * without boxes at 120x90 (CPU time) but gave AP50 -0.057 / +0.022 / -0.023; a stride-4 output through
 * `addCenterNetHead`'s `fine` neck on block 4 (1.37x) gave exact match -0.119 / -0.050 and AP50 -0.099 / -0.012
 * on the two sets it ran on: neither kept.
 */
const BOX_HEAD = { block: 5, hiddenLayers: 2, backboneGradient: 0.5, channels: 64 } as const;

/**
 * A compact modern network, the fast choice: six 3x3 conv-batchnorm-relu blocks (three of them with stride 2)
 * then global average pooling and a dense logits layer. About 0.15 M weights, so it trains several times faster
 * than `seed-cnn` and works at any input size. With `boxes`, the CenterNet head on block 5's stride-8 map
 * ({@link BOX_HEAD}) is a second output (`centerNetHead`).
 */
export const model: ModelFactory = {
  name: 'lite',
  description: 'Compact conv-batchnorm-relu network with global average pooling (fast, ~0.15 M weights)',
  defaultInputSize: { width: 96, height: 96 },
  supportsBoxes: true,
  boxHead: centerNetHead,
  create(options: CreateModelOptions): tfl.LayersModel {
    checkCreateOptions(model, options);
    const seed = initializerSeeds(options.seed, 104729);

    const input = tfl.input({ shape: options.inputShape, name: 'image' });
    const blocks: tfl.SymbolicTensor[] = [];
    BLOCKS.forEach(([filters, strides], i) => {
      const block = new ConvBatchNormRelu({
        name: `block${i + 1}`,
        filters,
        kernelSize: 3,
        strides,
        padding: 'same',
        kernelInitializer: tfl.initializers.heNormal(seed()),
      });
      blocks.push(block.apply(blocks.at(-1) ?? input) as tfl.SymbolicTensor);
    });
    const pooled = tfl.layers
      .globalAveragePooling2d({ name: 'pool' })
      .apply(blocks.at(-1)!) as tfl.SymbolicTensor;
    const logits = classificationHead(pooled, { ...options, boxes: false }, seed);
    const featureMap = blocks[BOX_HEAD.block - 1]!;
    const outputs = options.boxes
      ? [logits, addCenterNetHead(featureMap, { ...options, ...BOX_HEAD }, seed)]
      : logits;
    return tfl.model({ inputs: input, outputs, name: 'lite' });
  },
};

export default model;
