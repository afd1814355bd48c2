import { type BoxHead, classificationLoss } from '@litter/model';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** What {@link batchLoss} needs to train a box head. */
export interface BoxLossInput {
  /** The model's box head (`boxHeadOf`): its loss is the training loss. */
  head: BoxHead;
  /** `[n, 4C]` true boxes, class-major `[x1, y1, x2, y2]`, y down. */
  targets: tf.Tensor2D;
  /** `[n, C]` 1 where the class is visible. */
  mask: tf.Tensor2D;
  weight: number;
  /** Visible boxes in the whole batch, for a data-parallel shard: the box terms divide by it. */
  count?: number;
}

/**
 * The training loss: sigmoid cross entropy on the logits (visible classes' terms times `positiveWeight`), or
 * with a box head that head's loss (which includes the classification, weighted the same way).
 *
 * For a data-parallel shard of a batch, `share` (its rows / the batch's) weights the cross entropy (a mean over
 * the shard) and `box.count` is the whole batch's count of visible boxes, so that the shards' losses and
 * gradients add up to the whole batch's.
 */
export function batchLoss(
  model: tfl.LayersModel,
  images: tf.Tensor4D,
  labels: tf.Tensor2D,
  box: BoxLossInput | undefined,
  share = 1,
  positiveWeight = 1,
): tf.Scalar {
  const output = model.apply(images, { training: true }) as tf.Tensor | tf.Tensor[];
  if (!box) {
    const loss = classificationLoss(labels, output as tf.Tensor2D, undefined, positiveWeight);
    return (share === 1 ? loss : tf.mul(loss, share)) as tf.Scalar;
  }
  const n = labels.shape[0];
  return box.head.loss(
    [output].flat(),
    { labels, boxes: box.targets, mask: box.mask },
    {
      weight: box.weight,
      positiveWeight,
      ...(share === 1 && box.count === undefined
        ? {}
        : { batch: { images: n / share, boxes: box.count ?? tf.sum(box.mask).dataSync()[0]! } }),
    },
  );
}
