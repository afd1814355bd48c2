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
 * A compact modern network, the fast choice: six 3x3 conv-batchnorm-relu blocks (three of them with stride 2)
 * then global average pooling and a dense logits layer. About 0.15 M weights, so it trains several times faster
 * than `seed-cnn` and works at any input size. With `boxes`, the CenterNet head on the last block's stride-8
 * map is a second output (`centerNetHead`).
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
    let x: tfl.SymbolicTensor = input;
    BLOCKS.forEach(([filters, strides], i) => {
      x = new ConvBatchNormRelu({
        name: `block${i + 1}`,
        filters,
        kernelSize: 3,
        strides,
        padding: 'same',
        kernelInitializer: tfl.initializers.heNormal(seed()),
      }).apply(x) as tfl.SymbolicTensor;
    });
    const featureMap = x;
    x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
    const logits = classificationHead(x, { ...options, boxes: false }, seed);
    const outputs = options.boxes ? [logits, addCenterNetHead(featureMap, options, seed)] : logits;
    return tfl.model({ inputs: input, outputs, name: 'lite' });
  },
};

export default model;
