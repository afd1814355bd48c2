import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  type BoxHead,
  type BoxLossOptions,
  type BoxTargets,
  classificationLoss,
  orderBoxes,
  registerBoxHead,
} from './box-head.js';
import type { CreateModelOptions } from './contract.js';
import { ModelError } from './errors.js';
import { GradientScale } from './gradient-scale.js';

/**
 * The CenterNet head's constants ("Objects as Points", Zhou et al. 2019, with TTFNet's elliptical Gaussians).
 * Focal loss exponents alpha 2 and beta 4 as in the paper; the Gaussian of an object of w x h cells has
 * sigma = (0.54 w / 6, 0.54 h / 6) (TTFNet's alpha 0.54), at least {@link CENTERNET.minSigma} cells; the heatmap
 * bias starts at -2.19 (a prior of 0.1, as CenterNet). Size (normalised w, h) and offset (within the cell) are
 * L1 losses at the object's centre cell, weighted {@link CENTERNET.sizeWeight} and {@link CENTERNET.offsetWeight}
 * (sizes are fractions of the image here, not pixels: CenterNet's 0.1 would make them vanish). The box terms
 * together weigh {@link CENTERNET.weight} (times the trainer's `boxLossWeight`) against the classification's
 * cross entropy, and the head's gradient reaches the shared feature map times
 * {@link CENTERNET.backboneGradient}. Measured on blender-five (BENCHMARKS.md, issue 14): weight 1 gave boxes of
 * mean IoU 0.735 but dropped exact match to 0.29-0.36; no gradient into the backbone (0) kept exact match
 * (0.90) but gave IoU 0.45; weight 0.2 with the full gradient gave IoU 0.72 and exact match 0.89 (0.91 without boxes).
 * A GIoU term ({@link giouLoss}, weight {@link CENTERNET.giouWeight} beside the L1 terms) raised mean IoU from
 * 0.732 to 0.775 on blender-five and from 0.633 to 0.687 on another render set (260 steps, Adam 8e-3; BENCHMARKS.md,
 * issue 14, session 4). Decoding averages the boxes of the cells within {@link CENTERNET.voteRadius} of a class's
 * peak (3 x 3), weighted by their squared heatmap probability ({@link decodeCenterNet}).
 */
export const CENTERNET = {
  alpha: 2,
  beta: 4,
  gaussian: 0.54,
  minSigma: 0.5,
  heatmapBias: -2.19,
  sizeWeight: 5,
  offsetWeight: 1,
  giouWeight: 1,
  channels: 64,
  backboneGradient: 1,
  voteRadius: 1,
  weight: 0.2,
} as const;

/** The heatmap and regression targets of a batch on an `h x w` grid, as {@link centerNetTargets} makes them. */
export interface CenterNetTargets {
  /** `[n, h, w, C]` Gaussians peaking at 1 on each visible object's centre cell (0 for absent classes). */
  heatmap: tf.Tensor4D;
  /** `[n, h, w, C]` 1 at each visible object's centre cell, else 0. */
  centre: tf.Tensor4D;
  /** `[n, 1, 1, C]` each object's offset of the centre within its cell, x then y, in [0, 1): two tensors. */
  offset: [tf.Tensor4D, tf.Tensor4D];
  /** `[n, 1, 1, C]` each object's normalised width and height. */
  size: [tf.Tensor4D, tf.Tensor4D];
  /** `[n, 1, 1, C]` each object's box corners `x1, y1, x2, y2` (normalised, ordered): four tensors. */
  box: [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
  /** `[n, 1, 1, C]` each object's centre cell, column then row: two tensors. */
  cell: [tf.Tensor4D, tf.Tensor4D];
  /** `[n, 1, 1, C]` 1 for each visible object (the class's mask). */
  visible: tf.Tensor4D;
}

/**
 * The targets of the CenterNet loss, from the batch's boxes (call inside `tf.tidy`). An object's centre
 * `(cx, cy)` in grid units (`cx = (x1 + x2) / 2 * w`) lies in cell `(floor(cy), floor(cx))` (clamped to the grid);
 * its offset is `(cx - floor(cx), cy - floor(cy))`; its size `(x2 - x1, y2 - y1)` of the image.
 */
export function centerNetTargets(
  boxes: tf.Tensor2D,
  mask: tf.Tensor2D,
  height: number,
  width: number,
): CenterNetTargets {
  const [n, classes] = mask.shape;
  const coordinate = (k: number) =>
    tf.reshape(tf.slice(tf.reshape(boxes, [n, classes, 4]), [0, 0, k], [n, classes, 1]), [n, 1, 1, classes]);
  const [x1, y1, x2, y2] = [0, 1, 2, 3].map(coordinate) as [
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
    tf.Tensor4D,
  ];
  const m = tf.reshape(mask, [n, 1, 1, classes]);
  const axis = (a: tf.Tensor4D, b: tf.Tensor4D, cells: number) => {
    const centre = tf.mul(tf.add(a, b), cells / 2);
    const cell = tf.clipByValue(tf.floor(centre), 0, cells - 1);
    const size = tf.abs(tf.sub(b, a));
    const sigma = tf.maximum(tf.mul(size, (CENTERNET.gaussian * cells) / 6), CENTERNET.minSigma);
    return {
      cell: cell as tf.Tensor4D,
      offset: tf.sub(centre, cell) as tf.Tensor4D,
      size: size as tf.Tensor4D,
      sigma,
    };
  };
  const x = axis(x1, x2, width);
  const y = axis(y1, y2, height);
  const columns = tf.reshape(tf.range(0, width, 1, 'float32'), [1, 1, width, 1]);
  const rows = tf.reshape(tf.range(0, height, 1, 'float32'), [1, height, 1, 1]);
  const dx = tf.sub(columns, x.cell); // [n, 1, w, C]
  const dy = tf.sub(rows, y.cell); // [n, h, 1, C]
  const exponent = tf.add(
    tf.div(tf.square(dx), tf.mul(2, tf.square(x.sigma))),
    tf.div(tf.square(dy), tf.mul(2, tf.square(y.sigma))),
  );
  const heatmap = tf.mul(tf.exp(tf.neg(exponent)), m) as tf.Tensor4D;
  const centre = tf.mul(
    tf.mul(tf.cast(tf.equal(dx, 0), 'float32'), tf.cast(tf.equal(dy, 0), 'float32')),
    m,
  ) as tf.Tensor4D;
  const box = [
    tf.minimum(x1, x2),
    tf.minimum(y1, y2),
    tf.maximum(x1, x2),
    tf.maximum(y1, y2),
  ] as CenterNetTargets['box'];
  return {
    heatmap,
    centre,
    offset: [x.offset, y.offset],
    size: [x.size, y.size],
    box,
    cell: [x.cell, y.cell],
    visible: m as tf.Tensor4D,
  };
}

/** Slices channel `k` (or `count` from it) of a `[n, h, w, channels]` map. */
const channels = (map: tf.Tensor4D, k: number, count = 1): tf.Tensor4D => {
  const [n, h, w] = map.shape;
  return tf.slice(map, [0, 0, 0, k], [n, h, w, count]);
};

/**
 * CenterNet's penalty-reduced focal loss on heatmap logits, summed (divide by the object count):
 * `-(1 - p)^alpha log p` at centre cells, `-(1 - y)^beta p^alpha log(1 - p)` elsewhere, with `p = sigmoid(x)`
 * and the logs as softplus for stability.
 */
export function focalLoss(logits: tf.Tensor4D, targets: CenterNetTargets): tf.Scalar {
  const p = tf.sigmoid(logits);
  const logP = tf.neg(tf.softplus(tf.neg(logits)));
  const log1mP = tf.neg(tf.softplus(logits));
  const oneMinusP = tf.sub(1, p);
  const positive = tf.mul(tf.mul(tf.square(oneMinusP), logP), targets.centre);
  const reduce = tf.square(tf.square(tf.sub(1, targets.heatmap))); // (1 - y)^4
  const negative = tf.mul(tf.mul(tf.mul(reduce, tf.square(p)), log1mP), tf.sub(1, targets.centre));
  return tf.neg(tf.sum(tf.add(positive, negative))) as tf.Scalar;
}

/**
 * The head's output map, `[B, h, w, C + 4]` on a stride-s grid: channels `0..C-1` per-class centre heatmap
 * logits, then the offset (x, y) and size (w, h) logits, read through a sigmoid. The model's first output is the
 * pooled `[B, C]` logits, which give the presence of each class.
 */
function mapOf(outputs: tf.Tensor[]): tf.Tensor4D {
  return outputs[1] as tf.Tensor4D;
}

/**
 * The head's four box logits (offset x, y, size w, h) at each object's centre cell, `[n, 1, 1, C]` each (0 for
 * absent classes): one batched matrix product of the centre mask `[n, h*w, C]` with the map's box channels
 * `[n, h*w, 4]`, so the box terms cost `n x C` values whatever the grid (before session 7 they were computed on
 * the whole `[n, h, w, C]` map, then masked: the same values, at a cost that grew with the grid).
 */
export function boxLogitsAtCentres(
  map: tf.Tensor4D,
  targets: CenterNetTargets,
): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const [n, height, width, depth] = map.shape;
  const classes = depth - 4;
  const centre = tf.reshape(targets.centre, [n, height * width, classes]);
  const box = tf.reshape(channels(map, classes, 4), [n, height * width, 4]);
  const atCentres = tf.reshape(tf.matMul(centre, box, true, false), [n, classes, 4]);
  return [0, 1, 2, 3].map((k) =>
    tf.reshape(tf.slice(atCentres, [0, 0, k], [n, classes, 1]), [n, 1, 1, classes]),
  ) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
}

/**
 * `1 - GIoU` (generalised IoU, Rezatofighi et al. 2019) of the box the head predicts at each object's centre
 * cell against the object's box, summed over the objects (divide by their count). GIoU is scale-free and
 * rewards overlap itself, where the L1 terms reward each coordinate apart: it tightens boxes that are roughly
 * right (TTFNet trains its boxes with it alone).
 *
 * @param map the head's `[n, h, w, C + 4]` output (regression channels as {@link decodeCenterNet} reads them)
 * @param logits the box logits at the centres ({@link boxLogitsAtCentres}) when the caller has them already
 */
export function giouLoss(
  map: tf.Tensor4D,
  targets: CenterNetTargets,
  logits = boxLogitsAtCentres(map, targets),
): tf.Scalar {
  const [, height, width] = map.shape;
  const [ox, oy, sw, sh] = logits.map((t) => tf.sigmoid(t));
  const cx = tf.div(tf.add(targets.cell[0], ox!), width);
  const cy = tf.div(tf.add(targets.cell[1], oy!), height);
  const halfW = tf.mul(sw!, 0.5);
  const halfH = tf.mul(sh!, 0.5);
  const [px1, py1, px2, py2] = [tf.sub(cx, halfW), tf.sub(cy, halfH), tf.add(cx, halfW), tf.add(cy, halfH)];
  const [gx1, gy1, gx2, gy2] = targets.box;
  const extent = (a1: tf.Tensor, a2: tf.Tensor, b1: tf.Tensor, b2: tf.Tensor, inner: boolean) =>
    inner
      ? tf.relu(tf.sub(tf.minimum(a2, b2), tf.maximum(a1, b1)))
      : tf.sub(tf.maximum(a2, b2), tf.minimum(a1, b1));
  const intersection = tf.mul(extent(px1, px2, gx1, gx2, true), extent(py1, py2, gy1, gy2, true));
  const area = (x1: tf.Tensor, y1: tf.Tensor, x2: tf.Tensor, y2: tf.Tensor) =>
    tf.mul(tf.sub(x2, x1), tf.sub(y2, y1));
  const union = tf.sub(tf.add(area(px1, py1, px2, py2), area(gx1, gy1, gx2, gy2)), intersection);
  const enclosing = tf.mul(extent(px1, px2, gx1, gx2, false), extent(py1, py2, gy1, gy2, false));
  const eps = 1e-7;
  const iou = tf.div(intersection, tf.add(union, eps));
  const giou = tf.sub(iou, tf.div(tf.sub(enclosing, union), tf.add(enclosing, eps)));
  return tf.sum(tf.mul(tf.sub(1, giou), targets.visible)) as tf.Scalar;
}

function centerNetLoss(outputs: tf.Tensor[], targets: BoxTargets, options: BoxLossOptions = {}): tf.Scalar {
  const map = mapOf(outputs);
  const [, height, width, depth] = map.shape;
  const classes = depth - 4;
  const t = centerNetTargets(targets.boxes, targets.mask, height, width);
  const objects: tf.Scalar | number =
    options.batch === undefined
      ? (tf.maximum(tf.sum(targets.mask), 1) as tf.Scalar)
      : Math.max(options.batch.boxes, 1);
  const heatmap = tf.div(focalLoss(channels(map, 0, classes), t), objects);
  const logits = boxLogitsAtCentres(map, t);
  const regression = (k: number, target: tf.Tensor4D) =>
    tf.sum(tf.mul(tf.abs(tf.sub(tf.sigmoid(logits[k]!), target)), t.visible));
  const offset = tf.add(regression(0, t.offset[0]), regression(1, t.offset[1]));
  const size = tf.add(regression(2, t.size[0]), regression(3, t.size[1]));
  const l1 = tf.div(
    tf.add(tf.mul(offset, CENTERNET.offsetWeight), tf.mul(size, CENTERNET.sizeWeight)),
    tf.mul(objects, 2),
  );
  const box =
    CENTERNET.giouWeight > 0
      ? tf.add(l1, tf.mul(tf.div(giouLoss(map, t, logits), objects), CENTERNET.giouWeight))
      : l1;
  return tf.add(
    classificationLoss(
      targets.labels,
      outputs[0] as tf.Tensor2D,
      options.batch?.images,
      options.positiveWeight,
    ),
    tf.mul(tf.add(heatmap, box), CENTERNET.weight * (options.weight ?? 1)),
  ) as tf.Scalar;
}

/**
 * Decodes a CenterNet output map `[n, h, w, C + 4]` (as a flat array): for each image and class, the cell with the
 * highest heatmap logit (one object per class per image), then the boxes its {@link CENTERNET.voteRadius}
 * neighbourhood predicts, averaged with weights `sigmoid(heatmap logit)^2` (box voting: the neighbours of a peak
 * see the same object, and their mean is tighter than the peak's box alone). A cell `(row, column)` predicts
 * `cx = (column + sigmoid(ox)) / w`, `cy = (row + sigmoid(oy)) / h`, box `cx -+ sigmoid(sw) / 2`,
 * `cy -+ sigmoid(sh) / 2`; the result is clipped to [0, 1]. Measured on the held-out scenes of three render sets
 * (BENCHMARKS.md, issue 14, session 6): mean IoU 0.768 / 0.698 / 0.680 with the peak's box alone, 0.786 / 0.738 /
 * 0.733 voted, from the same weights.
 *
 * @returns `boxes` (`n * C * 4`, corners ordered) and `peaks` (`n * C`, each class's highest heatmap logit: the
 *   heatmap's own presence score)
 */
export function decodeCenterNet(
  values: Float32Array,
  shape: readonly [n: number, height: number, width: number, depth: number],
): { boxes: Float32Array; peaks: Float32Array } {
  const [n, height, width, depth] = shape;
  const classes = depth - 4;
  const boxes = new Float32Array(n * classes * 4);
  const peaks = new Float32Array(n * classes);
  for (let b = 0; b < n; b++) {
    const image = b * height * width;
    for (let c = 0; c < classes; c++) {
      let best = Number.NEGATIVE_INFINITY;
      let at = 0;
      for (let cell = 0; cell < height * width; cell++) {
        const v = values[(image + cell) * depth + c]!;
        if (v > best) {
          best = v;
          at = cell;
        }
      }
      boxes.set(voteBox(values, shape, image, c, at), (b * classes + c) * 4);
      peaks[b * classes + c] = best;
    }
  }
  return { boxes: orderBoxes(boxes), peaks };
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Class `c`'s box voted by the cells around `peak` (a cell index of the image starting at cell `image`). */
function voteBox(
  values: Float32Array,
  [, height, width, depth]: readonly [n: number, height: number, width: number, depth: number],
  image: number,
  c: number,
  peak: number,
): number[] {
  const classes = depth - 4;
  const [row, column] = [Math.floor(peak / width), peak % width];
  const r = CENTERNET.voteRadius;
  const sum = [0, 0, 0, 0];
  let total = 0;
  for (let y = Math.max(0, row - r); y <= Math.min(height - 1, row + r); y++) {
    for (let x = Math.max(0, column - r); x <= Math.min(width - 1, column + r); x++) {
      const at = (image + y * width + x) * depth;
      const weight = sigmoid(values[at + c]!) ** 2;
      const [ox, oy, sw, sh] = [0, 1, 2, 3].map((k) => sigmoid(values[at + classes + k]!)) as [
        number,
        number,
        number,
        number,
      ];
      const [cx, cy] = [(x + ox) / width, (y + oy) / height];
      [cx - sw / 2, cy - sh / 2, cx + sw / 2, cy + sh / 2].forEach((v, k) => {
        sum[k]! += weight * v;
      });
      total += weight;
    }
  }
  return sum.map((v) => v / total);
}

/**
 * The confidence of each decoded box: the geometric mean of the class's presence probability (pooled logits) and
 * its heatmap peak's probability, `sqrt(sigmoid(logit) * sigmoid(peak))`. The pooled logits tell best whether the
 * class is there; the peak also says how sure the head is of where (CenterNet ranks by the peak alone, FCOS
 * multiplies its class score by a localisation quality in the same way). Measured on the held-out scenes of three
 * render sets (BENCHMARKS.md, issue 14, session 6): AP at IoU 0.5 0.897 / 0.679 / 0.773 ranked by the presence
 * probability, 0.913 / 0.677 / 0.783 by this score, from the same weights and boxes.
 *
 * @param logits `n * C` presence logits
 * @param peaks `n * C` heatmap peak logits ({@link decodeCenterNet})
 */
export function detectionScores(logits: Float32Array, peaks: Float32Array): Float32Array {
  return logits.map((logit, k) => Math.sqrt(sigmoid(logit) * sigmoid(peaks[k]!)));
}

/**
 * The CenterNet head ("Objects as Points"): per-class centre heatmaps plus offset and size on the model's
 * stride-4 or stride-8 feature map, trained with the penalty-reduced focal loss and L1 at the centres, decoded
 * at each class's peak (each class is at most once in an image), the box voted by the peak's 3 x 3 cells
 * ({@link decodeCenterNet}). The presence of a class comes from the pooled
 * logits, trained with sigmoid cross entropy as without boxes. Outputs: `[B, C]` logits and `[B, h, w, C + 4]`
 * (see {@link addCenterNetHead}).
 */
export const centerNetHead: BoxHead = {
  name: 'centernet',
  matches(model, classes) {
    const shapes = model.outputs.map((o) => o.shape);
    return (
      shapes.length === 2 &&
      shapes[0]!.length === 2 &&
      shapes[0]![1] === classes &&
      shapes[1]!.length === 4 &&
      shapes[1]![3] === classes + 4
    );
  },
  loss: centerNetLoss,
  decode(outputs) {
    const map = mapOf(outputs);
    const logits = Float32Array.from(outputs[0]!.dataSync() as Float32Array);
    const { boxes, peaks } = decodeCenterNet(
      map.dataSync() as Float32Array,
      map.shape as [number, number, number, number],
    );
    return { logits, boxes, scores: detectionScores(logits, peaks) };
  },
};

registerBoxHead(centerNetHead);

/** How a model package shapes its CenterNet head ({@link addCenterNetHead}). */
export interface CenterNetHeadOptions {
  /**
   * The factor on the head's gradient where it enters the shared feature map (the box terms' pull on the
   * backbone against the classification's).
   * @default CENTERNET.backboneGradient (1)
   */
  backboneGradient?: number;
  /**
   * 3x3 conv layers (relu) of the head's own before its 1x1 outputs: more of them let the head localise from
   * features shared with classification without bending them as much.
   * @default 1
   */
  hiddenLayers?: number;
  /**
   * The channels of the head's hidden layers (and of its neck with `fine`).
   * @default CENTERNET.channels (64)
   */
  channels?: number;
  /**
   * A finer feature map of the backbone, twice the resolution of `features` (stride 4 under stride 8): the head's
   * hidden features are upsampled x2 (nearest), cropped to its grid and added to its 1x1 projection (an FPN-style
   * neck, its gradient into the backbone scaled as `features`'), then `fineLayers` 3x3 convs and the 1x1 outputs
   * at its resolution. The output keeps the `[B, h, w, C + 4]` layout: the decoder reads the grid from the map.
   * @default undefined (the outputs on `features`' grid)
   */
  fine?: tfl.SymbolicTensor;
  /**
   * 3x3 conv layers (relu) after the neck's merge, at the fine map's resolution (with `fine` only).
   * @default 1
   */
  fineLayers?: number;
}

/** A 3x3 relu conv of the head, He-initialised from the model's seed sequence. */
function headConv(name: string, filters: number, initialiserSeed: () => { seed?: number }, kernelSize = 3) {
  return tfl.layers.conv2d({
    name,
    filters,
    kernelSize,
    padding: 'same',
    activation: kernelSize === 1 ? 'linear' : 'relu',
    kernelInitializer: tfl.initializers.heNormal(initialiserSeed()),
  });
}

/**
 * The neck of {@link CenterNetHeadOptions.fine}: `coarse` upsampled x2, cropped to `fine`'s grid (the same padding
 * rounds odd sides up at each stride, so the upsampled map may be a row or column too big), plus `fine`'s 1x1
 * projection to `coarse`'s channels, then relu.
 */
function addNeck(
  coarse: tfl.SymbolicTensor,
  fine: tfl.SymbolicTensor,
  gradient: number,
  initialiserSeed: () => { seed?: number },
): tfl.SymbolicTensor {
  const [, coarseHeight, coarseWidth, filters] = coarse.shape as number[];
  const [, height, width] = fine.shape as number[];
  if (
    coarseHeight! * 2 < height! ||
    coarseWidth! * 2 < width! ||
    coarseHeight! * 2 > height! + 1 ||
    coarseWidth! * 2 > width! + 1
  ) {
    throw new ModelError(
      'invalid-options',
      `@litter/model: addCenterNetHead: fine must have twice the grid of the features (${coarseHeight} x ${coarseWidth}), got ${height} x ${width}`,
    );
  }
  let up = tfl.layers.upSampling2d({ name: 'centres_up', size: [2, 2] }).apply(coarse) as tfl.SymbolicTensor;
  if (coarseHeight! * 2 !== height || coarseWidth! * 2 !== width) {
    up = tfl.layers
      .cropping2D({
        name: 'centres_crop',
        cropping: [
          [0, coarseHeight! * 2 - height!],
          [0, coarseWidth! * 2 - width!],
        ],
      })
      .apply(up) as tfl.SymbolicTensor;
  }
  const scaled = new GradientScale({ name: 'centres_fine_gradient', scale: gradient }).apply(fine);
  const lateral = headConv('centres_lateral', filters!, initialiserSeed, 1).apply(
    scaled,
  ) as tfl.SymbolicTensor;
  const merged = tfl.layers.add({ name: 'centres_merge' }).apply([up, lateral]) as tfl.SymbolicTensor;
  return tfl.layers.reLU({ name: 'centres_merge_relu' }).apply(merged) as tfl.SymbolicTensor;
}

/**
 * Builds the CenterNet head on a feature map: `hiddenLayers` 3x3 convs of `channels` (relu), with `fine` a neck to
 * the finer map and `fineLayers` 3x3 convs there, then a 1x1 conv to `C + 4` channels (heatmap bias -2.19). Model
 * packages call it in `create` when `options.boxes` is set and return
 * `tfl.model({ inputs, outputs: [logits, map] })`, with `boxHead: centerNetHead` in their factory.
 *
 * @param features a `[B, h, w, channels]` feature map of stride 4 or 8 (any stride works: the grid is its own)
 * @param initialiserSeed the model's seed sequence ({@link initializerSeeds}); draw it after the other layers' so
 *   that adding the head leaves their initial weights unchanged
 * @example
 * const logits = classificationHead(pooled, { ...options, boxes: false }, seed);
 * if (!options.boxes) return tfl.model({ inputs: input, outputs: logits });
 * return tfl.model({ inputs: input, outputs: [logits, addCenterNetHead(featureMap, options, seed)] });
 */
export function addCenterNetHead(
  features: tfl.SymbolicTensor,
  options: Pick<CreateModelOptions, 'classes'> & CenterNetHeadOptions,
  initialiserSeed: () => { seed?: number },
): tfl.SymbolicTensor {
  const gradient = options.backboneGradient ?? CENTERNET.backboneGradient;
  const filters = options.channels ?? CENTERNET.channels;
  let hidden = new GradientScale({ name: 'centres_gradient', scale: gradient }).apply(
    features,
  ) as tfl.SymbolicTensor;
  for (let layer = 1; layer <= (options.hiddenLayers ?? 1); layer++) {
    const name = layer === 1 ? 'centres_conv' : `centres_conv${layer}`;
    hidden = headConv(name, filters, initialiserSeed).apply(hidden) as tfl.SymbolicTensor;
  }
  if (options.fine !== undefined) {
    hidden = addNeck(hidden, options.fine, gradient, initialiserSeed);
    for (let layer = 1; layer <= (options.fineLayers ?? 1); layer++) {
      hidden = headConv(`centres_fine_conv${layer}`, filters, initialiserSeed).apply(
        hidden,
      ) as tfl.SymbolicTensor;
    }
  }
  const heatmap = tfl.layers
    .conv2d({
      name: 'centres_heatmap',
      filters: options.classes,
      kernelSize: 1,
      kernelInitializer: tfl.initializers.glorotUniform(initialiserSeed()),
      biasInitializer: tfl.initializers.constant({ value: CENTERNET.heatmapBias }),
    })
    .apply(hidden) as tfl.SymbolicTensor;
  const box = tfl.layers
    .conv2d({
      name: 'centres_box',
      filters: 4,
      kernelSize: 1,
      kernelInitializer: tfl.initializers.glorotUniform(initialiserSeed()),
    })
    .apply(hidden) as tfl.SymbolicTensor;
  return tfl.layers.concatenate({ axis: -1, name: 'centres' }).apply([heatmap, box]) as tfl.SymbolicTensor;
}
