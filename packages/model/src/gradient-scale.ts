import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** Options of {@link GradientScale}. */
export interface GradientScaleArgs {
  /** Factor on the gradient passed back (0 stops it). @default 1 */
  scale?: number;
  name?: string;
}

/**
 * The identity forward, the gradient times `scale` backward. Put between a shared feature map and a second head,
 * it sets how much that head's loss may reshape the features the first one uses (0: not at all, the features are
 * trained by the first head alone; 1: as an ordinary layer).
 *
 * @example
 * const detached = new GradientScale({ scale: 0, name: 'centres_detach' }).apply(featureMap);
 */
export class GradientScale extends tfl.layers.Layer {
  static readonly className = 'GradientScale';
  readonly scale: number;

  constructor(args: GradientScaleArgs = {}) {
    super(args);
    this.scale = args.scale ?? 1;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const scale = this.scale;
    const identity = (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([]);
      return {
        value: tf.clone(input),
        gradFunc: (dy: tf.Tensor) => (scale === 0 ? tf.zerosLike(dy) : tf.mul(dy, scale)),
      };
    };
    const f = tf.customGrad(identity);
    return f(x) as tf.Tensor;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

tf.serialization.registerClass(GradientScale);
