import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * The box loss: mean absolute error over the coordinates of the visible classes only. An absent object has no
 * box to learn, so its four outputs get no error (and no gradient).
 *
 * @param predicted [n, 4C] box outputs, class-major `[x1, y1, x2, y2]`
 * @param targets [n, 4C] true boxes, same layout (anything where the class is absent)
 * @param mask [n, C] 1 where the class is visible
 * @param count what the sum is divided by: default the number of visible coordinates here (4 per visible
 *   class); a data-parallel shard passes the whole batch's, so that the shards' losses add up to the batch's
 * @returns the sum of |predicted - target| over visible coordinates divided by `count` (at least 1)
 *   Call it inside `tf.tidy` (or a gradient function): the intermediate tensors are not disposed here.
 */
export function maskedBoxLoss(
  predicted: tf.Tensor2D,
  targets: tf.Tensor2D,
  mask: tf.Tensor2D,
  count?: number,
): tf.Scalar {
  const [n, classes] = mask.shape;
  const coordinates = tf.reshape(tf.tile(tf.reshape(mask, [n, classes, 1]), [1, 1, 4]), [n, classes * 4]);
  const total = tf.sum(tf.mul(tf.abs(tf.sub(predicted, targets)), coordinates));
  return (
    count === undefined
      ? tf.div(total, tf.maximum(tf.sum(coordinates), 1))
      : tf.div(total, Math.max(count, 1))
  ) as tf.Scalar;
}

/**
 * The training loss: sigmoid cross entropy on the logits, plus the weighted masked L1 box loss with a box head.
 *
 * For a data-parallel shard of a batch, `share` (its rows / the batch's) weights the cross entropy (a mean over
 * the shard) and `box.count` is the whole batch's count of visible coordinates, so that the shards' losses and
 * gradients add up to the whole batch's.
 */
export function batchLoss(
  model: tfl.LayersModel,
  images: tf.Tensor4D,
  labels: tf.Tensor2D,
  classes: number,
  box: { targets: tf.Tensor2D; mask: tf.Tensor2D; weight: number; count?: number } | undefined,
  share = 1,
): tf.Scalar {
  const output = model.apply(images, { training: true }) as tf.Tensor2D;
  const weighted = (loss: tf.Tensor) => (share === 1 ? loss : tf.mul(loss, share));
  if (!box) return weighted(tf.losses.sigmoidCrossEntropy(labels, output)) as tf.Scalar;
  const n = output.shape[0];
  const logits = tf.slice(output, [0, 0], [n, classes]);
  const predicted = tf.slice(output, [0, classes], [n, classes * 4]);
  const classification = weighted(tf.losses.sigmoidCrossEntropy(labels, logits));
  return tf.add(
    classification,
    tf.mul(maskedBoxLoss(predicted, box.targets, box.mask, box.count), box.weight),
  ) as tf.Scalar;
}
