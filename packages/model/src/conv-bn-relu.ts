import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BATCH_NORM_RELU, BATCH_NORM_RELU_GRAD, type BatchNormReluAttrs } from './_batchnorm-kernels.js';
import { ModelError } from './errors.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Initializer = ReturnType<typeof tfl.initializers.heNormal>;

/** Parameters of {@link ConvBatchNormRelu}. */
export interface ConvBatchNormReluArgs extends LayerArgs {
  /** Output channels. */
  filters: number;
  /** Square kernel side. @default 3 */
  kernelSize?: number;
  /** Same stride along both axes. @default 1 */
  strides?: number;
  /** @default 'same' */
  padding?: 'same' | 'valid';
  /** Of the moving statistics, as tfjs-layers' BatchNormalization. @default 0.99 */
  momentum?: number;
  /** @default 1e-3 */
  epsilon?: number;
  /** Of the kernel (an initializer, or its serialised `{ className, config }` form). @default heNormal() */
  kernelInitializer?: Initializer | tf.serialization.ConfigDict;
}

/** An initializer from its serialised form, through the registry tfjs-layers fills with its initializers. */
function initializerFrom(value: Initializer | tf.serialization.ConfigDict | undefined): Initializer {
  if (value === undefined) return tfl.initializers.heNormal({});
  if (value instanceof tf.serialization.Serializable) return value as Initializer;
  const { className, config } = value as { className?: string; config?: tf.serialization.ConfigDict };
  const entry = className ? tf.serialization.SerializationMap.getMap().classNameMap[className] : undefined;
  if (!entry)
    throw new ModelError('invalid-options', `@litter/model: unknown kernel initializer ${String(className)}`);
  const [cls, fromConfig] = entry;
  return fromConfig(cls, config ?? {}) as Initializer;
}

/** Statistics of the batch the op normalised with, handed out for the moving averages (kept: caller disposes). */
interface BatchStatistics {
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

interface BlockAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  epsilon: number;
}

/** Batch norm + ReLU forward: the backend's fused kernel where registered (wasm, cpu), else tfjs ops. */
function normaliseForward(
  z: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): tf.Tensor[] {
  if (tf.getKernel(BATCH_NORM_RELU, tf.getBackend()) !== undefined) {
    const attrs: BatchNormReluAttrs = { epsilon };
    return tf
      .engine()
      .runKernel(BATCH_NORM_RELU, { x: z, gamma, beta }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  }
  const { mean, variance } = tf.moments(z, [0, 1, 2]);
  const invStd = tf.rsqrt(tf.add(variance, epsilon));
  const y = tf.relu(tf.add(tf.mul(tf.sub(z, mean), tf.mul(invStd, gamma)), beta));
  return [y, mean, variance, invStd];
}

/** Batch norm + ReLU backward: `[dz, dGamma, dBeta]`. */
function normaliseBackward(
  dy: tf.Tensor,
  z: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  mean: tf.Tensor,
  invStd: tf.Tensor,
  epsilon: number,
): tf.Tensor[] {
  if (tf.getKernel(BATCH_NORM_RELU_GRAD, tf.getBackend()) !== undefined) {
    const attrs: BatchNormReluAttrs = { epsilon };
    return tf
      .engine()
      .runKernel(
        BATCH_NORM_RELU_GRAD,
        { dy, x: z, gamma, beta, mean, invStd },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
  }
  const axes = [0, 1, 2];
  const count = z.size / gamma.size;
  const xhat = tf.mul(tf.sub(z, mean), invStd);
  const g = tf.mul(dy, tf.step(tf.add(tf.mul(xhat, gamma), beta)));
  const dBeta = tf.sum(g, axes);
  const dGamma = tf.sum(tf.mul(g, xhat), axes);
  const dz = tf.mul(
    tf.mul(gamma, invStd),
    tf.sub(tf.sub(g, tf.div(dBeta, count)), tf.mul(xhat, tf.div(dGamma, count))),
  );
  return [dz, dGamma, dBeta];
}

/**
 * conv (no bias) -> batch norm with the batch's statistics -> ReLU, as one differentiable op whose gradient
 * computes only what is needed: with `image` the input is treated as a constant (no input gradient; the tape
 * sees no path to it).
 */
function trainingBlock(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  attrs: BlockAttrs,
  image: boolean,
): { y: tf.Tensor4D; statistics: BatchStatistics } {
  let statistics: BatchStatistics | undefined;
  const { strides, pad, epsilon } = attrs;
  const forward = (
    input: tf.Tensor4D,
    k: tf.Tensor4D,
    g: tf.Tensor1D,
    b: tf.Tensor1D,
    save: tf.GradSaveFunc,
  ) => {
    const z = tf.conv2d(input, k, strides, pad);
    const [y, mean, variance, invStd] = normaliseForward(z, g, b, epsilon) as [
      tf.Tensor4D,
      tf.Tensor1D,
      tf.Tensor1D,
      tf.Tensor1D,
    ];
    statistics = { mean: tf.keep(mean), variance: tf.keep(variance) };
    save([input, k, g, b, z, mean, invStd]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [sx, sk, sg, sb, sz, sMean, sInvStd] = saved as [
          tf.Tensor4D,
          tf.Tensor4D,
          tf.Tensor1D,
          tf.Tensor1D,
          tf.Tensor4D,
          tf.Tensor1D,
          tf.Tensor1D,
        ];
        const [dz, dGamma, dBeta] = normaliseBackward(dy, sz, sg, sb, sMean, sInvStd, epsilon) as [
          tf.Tensor4D,
          tf.Tensor,
          tf.Tensor,
        ];
        const convAttrs = { strides, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
        const dKernel = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: sx, dy: dz }, {
          ...convAttrs,
          filterShape: sk.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const grads = [dKernel, dGamma, dBeta];
        if (image) return grads;
        const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dz, filter: sk }, {
          ...convAttrs,
          inputShape: sx.shape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        return [dx, ...grads];
      });
    return { value: y, gradFunc };
  };
  const y = image
    ? tf.customGrad((k, g, b, save) =>
        forward(x, k as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, save as tf.GradSaveFunc),
      )(kernel, gamma, beta)
    : tf.customGrad((input, k, g, b, save) =>
        forward(
          input as tf.Tensor4D,
          k as tf.Tensor4D,
          g as tf.Tensor1D,
          b as tf.Tensor1D,
          save as tf.GradSaveFunc,
        ),
      )(x, kernel, gamma, beta);
  if (statistics === undefined)
    throw new ModelError('unsupported', '@litter/model: the block ran no forward pass');
  return { y: y as tf.Tensor4D, statistics };
}

/**
 * A convolution (no bias), batch normalisation and ReLU in one layer: what model-lite's blocks are. The same
 * weights and arithmetic as tfjs-layers' `conv2d({ useBias: false })`, `batchNormalization()` and `reLU()` in a
 * row (`kernel`, `gamma`, `beta`, `moving_mean`, `moving_variance`; channels last), but in training one
 * differentiable op: batch norm + ReLU are two fused kernels each way on wasm and cpu (`_batchnorm-kernels.ts`)
 * where tfjs chains some thirty, and the gradient skips the input when the layer's input is the model's image
 * (nothing uses that gradient; tfjs's fused convolution computes it). Registered with `tf.serialization`.
 *
 * @example
 * x = new ConvBatchNormRelu({ name: 'block1', filters: 16, strides: 2 }).apply(x) as tfl.SymbolicTensor;
 */
export class ConvBatchNormRelu extends tfl.layers.Layer {
  static readonly className = 'ConvBatchNormRelu';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid';
  /** Public (not readonly): "precise batch norm" sets it to average statistics over batches. */
  momentum: number;
  readonly epsilon: number;
  private readonly kernelInitializer: Initializer;
  private kernel?: tfl.LayerVariable;
  private gamma?: tfl.LayerVariable;
  private beta?: tfl.LayerVariable;
  private movingMean?: tfl.LayerVariable;
  private movingVariance?: tfl.LayerVariable;

  constructor(args: ConvBatchNormReluArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1) {
      throw new ModelError(
        'invalid-options',
        `@litter/model: ConvBatchNormRelu needs filters >= 1, got ${String(args.filters)}`,
      );
    }
    this.filters = args.filters;
    this.kernelSize = args.kernelSize ?? 3;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 'same';
    this.momentum = args.momentum ?? 0.99;
    this.epsilon = args.epsilon ?? 1e-3;
    this.kernelInitializer = initializerFrom(args.kernelInitializer);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const channels = shape[shape.length - 1];
    if (shape.length !== 4 || channels == null) {
      throw new ModelError(
        'invalid-options',
        `@litter/model: ConvBatchNormRelu needs [batch, height, width, channels] inputs with known channels, got ${JSON.stringify(shape)}`,
      );
    }
    const side = this.kernelSize;
    const dim = [this.filters];
    this.kernel = this.addWeight(
      'kernel',
      [side, side, channels, this.filters],
      'float32',
      this.kernelInitializer,
    );
    this.gamma = this.addWeight('gamma', dim, 'float32', tfl.initializers.ones());
    this.beta = this.addWeight('beta', dim, 'float32', tfl.initializers.zeros());
    this.movingMean = this.addWeight(
      'moving_mean',
      dim,
      'float32',
      tfl.initializers.zeros(),
      undefined,
      false,
    );
    this.movingVariance = this.addWeight(
      'moving_variance',
      dim,
      'float32',
      tfl.initializers.ones(),
      undefined,
      false,
    );
    this.built = true;
  }

  /** Whether this layer's input is a model's input layer (an image: its gradient is never needed). */
  private inputIsModelInput(): boolean {
    const nodes = (this as unknown as { inboundNodes: { inboundLayers: tfl.layers.Layer[] }[] }).inboundNodes;
    return (
      nodes.length === 1 &&
      nodes[0]!.inboundLayers.length === 1 &&
      nodes[0]!.inboundLayers[0]!.getClassName() === 'InputLayer'
    );
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: tf.serialization.ConfigDict): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      const gamma = this.gamma!.read() as tf.Tensor1D;
      const beta = this.beta!.read() as tf.Tensor1D;
      const strides: [number, number] = [this.strides, this.strides];
      if (kwargs.training !== true) {
        const z = tf.conv2d(x, kernel, strides, this.padding);
        return tf.relu(
          tf.batchNorm(z, this.movingMean!.read(), this.movingVariance!.read(), beta, gamma, this.epsilon),
        );
      }
      const { y, statistics } = trainingBlock(
        x,
        kernel,
        gamma,
        beta,
        { strides, pad: this.padding, epsilon: this.epsilon },
        this.inputIsModelInput(),
      );
      try {
        // tfjs-layers' moving averages, op for op: moving - (moving - batch) * (1 - momentum).
        const decay = 1 - this.momentum;
        for (const [variable, value] of [
          [this.movingMean!, statistics.mean],
          [this.movingVariance!, statistics.variance],
        ] as const) {
          const current = variable.read();
          variable.write(tf.sub(current, tf.mul(tf.sub(current, value), decay)));
        }
      } finally {
        tf.dispose([statistics.mean, statistics.variance]);
      }
      return y;
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [batch, height, width] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    const out = (size: number | null) => {
      if (size == null) return null;
      return this.padding === 'same'
        ? Math.ceil(size / this.strides)
        : Math.ceil((size - this.kernelSize + 1) / this.strides);
    };
    return [batch ?? null, out(height ?? null), out(width ?? null), this.filters];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      momentum: this.momentum,
      epsilon: this.epsilon,
      kernelInitializer: {
        className: this.kernelInitializer.getClassName(),
        config: this.kernelInitializer.getConfig(),
      },
    };
  }
}

tf.serialization.registerClass(ConvBatchNormRelu);

/** Whether a layer keeps batch-norm moving statistics with a settable `momentum` (tfjs's or ours). */
export function isBatchNormLayer(layer: tfl.layers.Layer): layer is tfl.layers.Layer & { momentum: number } {
  return layer.getClassName() === 'BatchNormalization' || layer instanceof ConvBatchNormRelu;
}
