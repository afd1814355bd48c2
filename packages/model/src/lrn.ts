import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ModelError } from './errors.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** Parameters of {@link LocalResponseNormalization}, with TensorFlow's `tf.nn.local_response_normalization` meaning. */
export interface LocalResponseNormalizationArgs extends LayerArgs {
  /**
   * Half-width of the channel window: channel d is normalised over channels d - r .. d + r.
   * @default 5
   */
  depthRadius?: number;
  /** @default 1 */
  bias?: number;
  /** Scale of the sum of squares (not divided by the window size). @default 1 */
  alpha?: number;
  /** @default 0.5 */
  beta?: number;
}

/**
 * Local response normalisation across channels (AlexNet, the TensorFlow CIFAR-10 tutorial):
 * `y = x / (bias + alpha * sum(x[d - r .. d + r] ** 2)) ** beta`. tfjs-layers has no such layer; this one is
 * registered with `tf.serialization`, so models that contain it save and load back. Channels last.
 *
 * @example
 * tfl.sequential({ layers: [..., new LocalResponseNormalization({ depthRadius: 4, bias: 1, alpha: 0.001 / 9, beta: 0.75 })] });
 */
export class LocalResponseNormalization extends tfl.layers.Layer {
  static readonly className = 'LocalResponseNormalization';
  readonly depthRadius: number;
  readonly bias: number;
  readonly alpha: number;
  readonly beta: number;

  constructor(args: LocalResponseNormalizationArgs = {}) {
    super(args);
    this.depthRadius = args.depthRadius ?? 5;
    this.bias = args.bias ?? 1;
    this.alpha = args.alpha ?? 1;
    this.beta = args.beta ?? 0.5;
    this.supportsMasking = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      if (x === undefined || (x.rank !== 4 && x.rank !== 3)) {
        throw new ModelError(
          'invalid-options',
          `@litter/model: LocalResponseNormalization expects a rank 3 or 4 input, got rank ${x?.rank}`,
        );
      }
      return tf.localResponseNormalization(
        x as tf.Tensor4D,
        this.depthRadius,
        this.bias,
        this.alpha,
        this.beta,
      );
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      depthRadius: this.depthRadius,
      bias: this.bias,
      alpha: this.alpha,
      beta: this.beta,
    };
  }
}

tf.serialization.registerClass(LocalResponseNormalization);
