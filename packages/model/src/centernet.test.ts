import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { random } from '../test/random.js';
import { initBackend } from './backend.js';
import {
  boxLogitsAtCentres,
  CENTERNET,
  centerNetHead,
  centerNetTargets,
  decodeCenterNet,
  detectionScores,
  focalLoss,
  giouLoss,
} from './centernet.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const logit = (p: number) => Math.log(p / (1 - p));

describe('centerNetTargets', () => {
  it('puts the centre, offset and size of a known box where they belong', () => {
    // Grid 5 rows x 6 columns; box [0.1, 0.2, 0.5, 0.7]: centre x 0.3 * 6 = 1.8 (column 1, offset 0.8),
    // centre y 0.45 * 5 = 2.25 (row 2, offset 0.25), size 0.4 x 0.5.
    const t = tf.tidy(() => {
      const targets = centerNetTargets(tf.tensor2d([[0.1, 0.2, 0.5, 0.7]]), tf.tensor2d([[1]]), 5, 6);
      return {
        heatmap: Array.from(targets.heatmap.dataSync()),
        centre: Array.from(targets.centre.dataSync()),
        offset: targets.offset.map((o) => o.dataSync()[0]!),
        size: targets.size.map((s) => s.dataSync()[0]!),
      };
    });
    const at = (row: number, column: number) => row * 6 + column;
    expect(t.centre.indexOf(1)).toBe(at(2, 1));
    expect(t.centre.reduce((a, b) => a + b, 0)).toBe(1);
    expect(t.offset[0]).toBeCloseTo(0.8, 5);
    expect(t.offset[1]).toBeCloseTo(0.25, 5);
    expect(t.size[0]).toBeCloseTo(0.4, 6);
    expect(t.size[1]).toBeCloseTo(0.5, 6);
    // sigma x = max(0.54 * 0.4 * 6 / 6, 0.5) = 0.5; sigma y = max(0.54 * 0.5 * 5 / 6, 0.5) = 0.5
    expect(t.heatmap[at(2, 1)]).toBe(1);
    expect(t.heatmap[at(2, 2)]).toBeCloseTo(Math.exp(-1 / (2 * 0.25)), 6);
    expect(t.heatmap[at(3, 3)]).toBeCloseTo(Math.exp(-(4 + 1) / (2 * 0.25)), 6);
  });

  it('widens the Gaussian with the box (TTFNet sigma 0.54 w / 6) and is 0 for absent classes', () => {
    const heatmap = tf.tidy(() =>
      Array.from(
        centerNetTargets(
          tf.tensor2d([[0, 0, 1, 1, 0, 0, 1, 1]]),
          tf.tensor2d([[1, 0]]),
          8,
          8,
        ).heatmap.dataSync(),
      ),
    );
    const sigma = (CENTERNET.gaussian * 8) / 6; // 0.72 cells
    // class 0 (channel 0) peaks at row 4, column 4; class 1 is absent
    expect(heatmap[(4 * 8 + 4) * 2]).toBe(1);
    expect(heatmap[(4 * 8 + 5) * 2]).toBeCloseTo(Math.exp(-1 / (2 * sigma * sigma)), 6);
    expect(heatmap.filter((_, k) => k % 2 === 1).every((v) => v === 0)).toBe(true);
  });
});

describe('decodeCenterNet', () => {
  it("inverts the encoding of a known box: the targets' map decodes to the box", () => {
    const box = [0.1, 0.2, 0.5, 0.7];
    const values = tf.tidy(() => {
      const t = centerNetTargets(tf.tensor2d([box]), tf.tensor2d([[1]]), 5, 6);
      // The map a perfect head would output: a high logit at the centre, the regression targets everywhere.
      const heatmap = tf.sub(tf.mul(t.centre, 20), 10);
      const fill = (v: tf.Tensor4D) => tf.mul(tf.onesLike(t.centre), tf.log(tf.div(v, tf.sub(1, v))));
      const map = tf.concat(
        [heatmap, fill(t.offset[0]), fill(t.offset[1]), fill(t.size[0]), fill(t.size[1])],
        3,
      );
      return map.dataSync() as Float32Array;
    });
    const { boxes, peaks } = decodeCenterNet(values, [1, 5, 6, 5]);
    Array.from(boxes).forEach((v, k) => {
      expect(v).toBeCloseTo(box[k]!, 5);
    });
    expect(peaks[0]).toBeCloseTo(10, 6);
  });

  it('takes each class at its own peak and clips the box to the image', () => {
    // 1 image, 2 x 2 grid, 2 classes: class 0 peaks at (0, 1), class 1 at (1, 0); shared regression channels.
    // The other cells' logits are so low that their votes vanish.
    const depth = 6;
    const values = new Float32Array(4 * depth);
    const set = (cell: number, heat: [number, number], regression: number[]) =>
      values.set([...heat, ...regression], cell * depth);
    set(0, [-30, -30], [0, 0, 0, 0]);
    set(1, [3, -30], [0, 0, logit(0.5), logit(0.25)]); // centre (1.5 / 2, 0.5 / 2), size 0.5 x 0.25
    set(2, [-30, 2], [logit(0.9), logit(0.9), logit(0.8), logit(0.8)]); // centre (0.45, 0.95), size 0.8
    set(3, [-30, -30], [0, 0, 0, 0]);
    const { boxes, peaks } = decodeCenterNet(values, [1, 2, 2, depth]);
    const expected = [0.5, 0.125, 1, 0.375, 0.05, 0.55, 0.85, 1];
    Array.from(boxes).forEach((v, k) => {
      expect(v).toBeCloseTo(expected[k]!, 5);
    });
    expect(Array.from(peaks)).toEqual([3, 2]);
  });

  it("averages the boxes of the peak's 3 x 3 cells, weighted by their squared heatmap probability", () => {
    // 1 x 4 grid, one class; heatmap probabilities 0.7, 0.5, 0.8 (the peak), 0.6: cell 0 is two cells away and
    // has no vote. Cells 1, 2, 3 predict [0.25, 0.25, 0.5, 0.75], [0.375, 0.25, 0.875, 0.75] and
    // [0.75, 0.25, 1, 0.75] (centre offsets 0.5, sizes 0.25 / 0.5 / 0.25 wide, 0.5 high), weights 0.25, 0.64,
    // 0.36: x1 = (0.0625 + 0.24 + 0.27) / 1.25 = 0.458, x2 = (0.125 + 0.56 + 0.36) / 1.25 = 0.836.
    const depth = 5;
    const values = new Float32Array(4 * depth);
    const set = (cell: number, probability: number, width: number) =>
      values.set([logit(probability), 0, 0, logit(width), 0], cell * depth);
    set(0, 0.7, 0.9);
    set(1, 0.5, 0.25);
    set(2, 0.8, 0.5);
    set(3, 0.6, 0.25);
    const { boxes, peaks } = decodeCenterNet(values, [1, 1, 4, depth]);
    [0.458, 0.25, 0.836, 0.75].forEach((v, k) => {
      expect(boxes[k]).toBeCloseTo(v, 5);
    });
    expect(peaks[0]).toBeCloseTo(logit(0.8), 5);
  });
});

describe('detectionScores', () => {
  it('is the geometric mean of the presence probability and the peak probability', () => {
    const scores = detectionScores(new Float32Array([logit(0.9), 0]), new Float32Array([logit(0.4), 4]));
    expect(scores[0]).toBeCloseTo(Math.sqrt(0.9 * 0.4), 6);
    expect(scores[1]).toBeCloseTo(Math.sqrt(0.5 / (1 + Math.exp(-4))), 6);
  });

  it("is what the head's decoder gives beside the boxes", () => {
    const map = new Float32Array([logit(0.2), 0, 0, 0, 0, logit(0.6), 0, 0, 0, 0]); // 1 x 2 grid, 1 class
    const outputs = [tf.tensor2d([[logit(0.9)]]), tf.tensor4d(map, [1, 1, 2, 5])];
    const { scores } = centerNetHead.decode(outputs, 1);
    tf.dispose(outputs);
    expect(Array.from(scores!)).toHaveLength(1);
    expect(scores![0]).toBeCloseTo(Math.sqrt(0.9 * 0.6), 6);
  });
});

describe('the CenterNet loss', () => {
  it('is the penalty-reduced focal loss of the paper, by hand', () => {
    // One image, 1 x 3 grid, one class, centre in cell 1: targets y = [e^-2, 1, e^-2] (sigma 0.5).
    const x = [0.3, 1.2, -0.7];
    const value = tf.tidy(() => {
      const t = centerNetTargets(tf.tensor2d([[0.4, 0, 0.6, 1]]), tf.tensor2d([[1]]), 1, 3);
      return focalLoss(tf.tensor4d(x, [1, 1, 3, 1]), t).dataSync()[0]!;
    });
    const p = x.map((v) => 1 / (1 + Math.exp(-v)));
    const y = [Math.exp(-2), 1, Math.exp(-2)];
    const negative = (k: number) => (1 - y[k]!) ** 4 * p[k]! ** 2 * Math.log(1 - p[k]!);
    const expected = -((1 - p[1]!) ** 2 * Math.log(p[1]!) + negative(0) + negative(2));
    expect(value).toBeCloseTo(expected, 5);
  });

  it("of shards with the batch's totals adds up to the batch's", () => {
    const [n, h, w, classes] = [4, 3, 5, 2];
    const labels = [1, 0, 1, 1, 0, 0, 0, 1];
    const loss = (rows: [number, number], batch?: { images: number; boxes: number }) =>
      tf.tidy(() => {
        const count = rows[1] - rows[0];
        const slice = (values: Float32Array | number[], width: number) =>
          Array.from(values).slice(rows[0] * width, rows[1] * width);
        const map = tf.tensor4d(slice(random(n * h * w * (classes + 4), 3), h * w * (classes + 4)), [
          count,
          h,
          w,
          classes + 4,
        ]);
        const logits = tf.tensor2d(slice(random(n * classes, 4), classes), [count, classes]);
        const corners = Array.from(random(n * classes * 2, 5), (v) => (v + 1) / 4); // in [0, 0.5]
        const boxes = Array.from({ length: n * classes }, (_, k) => {
          const [a, b] = [corners[2 * k]!, corners[2 * k + 1]!];
          return [a, b, a + 0.4, b + 0.5];
        }).flat();
        const targets = {
          labels: tf.tensor2d(slice(labels, classes), [count, classes]),
          boxes: tf.tensor2d(slice(boxes, 4 * classes), [count, 4 * classes]),
          mask: tf.tensor2d(slice(labels, classes), [count, classes]),
        };
        return centerNetHead
          .loss([logits, map], targets, { weight: 2, ...(batch ? { batch } : {}) })
          .dataSync()[0]!;
      });
    const whole = loss([0, 4]);
    const totals = { images: 4, boxes: 4 };
    expect(loss([0, 1], totals) + loss([1, 4], totals)).toBeCloseTo(whole, 5);
  });
});

describe('giouLoss', () => {
  /**
   * The loss of a head that predicts `predicted` for `box`, one class, on a 1 x 1 grid (there the cell's offset
   * spans the image, so any centre can be predicted).
   */
  const lossFor = (box: number[], predicted: number[]) =>
    tf.tidy(() => {
      const t = centerNetTargets(tf.tensor2d([box]), tf.tensor2d([[1]]), 1, 1);
      const [x1, y1, x2, y2] = predicted as [number, number, number, number];
      const values = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1].map(logit);
      const map = tf.tensor4d([0, ...values], [1, 1, 1, 5]);
      return giouLoss(map, t).dataSync()[0]!;
    });

  it('is 0 for the exact box and 1 - GIoU by hand for another', () => {
    const box = [0.1, 0.2, 0.5, 0.7];
    expect(lossFor(box, box)).toBeCloseTo(0, 5);
    // Predicted [0.2, 0.3, 0.6, 0.8] (same size, shifted): intersection 0.3 x 0.4 = 0.12, union 0.2 + 0.2 -
    // 0.12 = 0.28, enclosing 0.5 x 0.6 = 0.3: GIoU = 0.12 / 0.28 - 0.02 / 0.3.
    const giou = 0.12 / 0.28 - 0.02 / 0.3;
    expect(lossFor(box, [0.2, 0.3, 0.6, 0.8])).toBeCloseTo(1 - giou, 4);
  });

  it('goes above 1 for disjoint boxes, more the farther apart (the gradient still points home)', () => {
    const box = [0.1, 0.2, 0.3, 0.4];
    const near = lossFor(box, [0.32, 0.2, 0.52, 0.4]);
    const far = lossFor(box, [0.6, 0.2, 0.8, 0.4]);
    expect(near).toBeGreaterThan(1);
    expect(far).toBeGreaterThan(near);
  });

  it("has a finite gradient of the map's shape, and a step along it raises the IoU", () => {
    const { before, after, shapeOk } = tf.tidy(() => {
      const t = centerNetTargets(
        tf.tensor2d([[0.1, 0.2, 0.5, 0.7, 0.3, 0.3, 0.9, 0.6]]),
        tf.tensor2d([[1, 1]]),
        4,
        5,
      );
      const map = tf.randomNormal([1, 4, 5, 6], 0, 0.5, 'float32', 7) as tf.Tensor4D;
      const grad = tf.grad((m: tf.Tensor) => giouLoss(m as tf.Tensor4D, t))(map);
      const values = grad.dataSync();
      const moved = tf.sub(map, tf.mul(grad, 0.5)) as tf.Tensor4D;
      return {
        before: giouLoss(map, t).dataSync()[0]!,
        after: giouLoss(moved, t).dataSync()[0]!,
        shapeOk: grad.shape.join() === map.shape.join() && values.every(Number.isFinite),
      };
    });
    expect(shapeOk).toBe(true);
    expect(after).toBeLessThan(before);
  });

  it('counts only centre cells: absent classes and other cells add nothing', () => {
    const value = tf.tidy(() => {
      const t = centerNetTargets(
        tf.tensor2d([[0.1, 0.2, 0.5, 0.7, 0, 0, 0, 0]]),
        tf.tensor2d([[0, 0]]),
        3,
        3,
      );
      return giouLoss(tf.randomNormal([1, 3, 3, 6], 0, 1, 'float32', 3) as tf.Tensor4D, t).dataSync()[0]!;
    });
    expect(value).toBe(0);
  });
});

describe('the box terms at the centre cells', () => {
  /** The box terms as before session 7: on the whole map, broadcast to every class, then masked by the centres. */
  function wholeMapBoxTerms(map: tf.Tensor4D, t: ReturnType<typeof centerNetTargets>): tf.Scalar {
    const [n, height, width, depth] = map.shape;
    const classes = depth - 4;
    const at = (k: number) => tf.slice(map, [0, 0, 0, classes + k], [n, height, width, 1]);
    const full = (x: tf.Tensor) => tf.broadcastTo(x, t.centre.shape);
    const l1 = (k: number, target: tf.Tensor) =>
      tf.sum(tf.mul(tf.abs(tf.sub(full(tf.sigmoid(at(k))), full(target))), t.centre));
    const columns = tf.reshape(tf.range(0, width, 1, 'float32'), [1, 1, width, 1]);
    const rows = tf.reshape(tf.range(0, height, 1, 'float32'), [1, height, 1, 1]);
    const cx = full(tf.div(tf.add(columns, tf.sigmoid(at(0))), width));
    const cy = full(tf.div(tf.add(rows, tf.sigmoid(at(1))), height));
    const [hw, hh] = [full(tf.mul(tf.sigmoid(at(2)), 0.5)), full(tf.mul(tf.sigmoid(at(3)), 0.5))];
    const [gx1, gy1, gx2, gy2] = t.box.map(full) as tf.Tensor[];
    const [px1, py1, px2, py2] = [tf.sub(cx, hw), tf.sub(cy, hh), tf.add(cx, hw), tf.add(cy, hh)];
    const inter = tf.mul(
      tf.relu(tf.sub(tf.minimum(px2, gx2!), tf.maximum(px1, gx1!))),
      tf.relu(tf.sub(tf.minimum(py2, gy2!), tf.maximum(py1, gy1!))),
    );
    const areaP = tf.mul(tf.sub(px2, px1), tf.sub(py2, py1));
    const areaG = tf.mul(tf.sub(gx2!, gx1!), tf.sub(gy2!, gy1!));
    const union = tf.sub(tf.add(areaP, areaG), inter);
    const enclosing = tf.mul(
      tf.sub(tf.maximum(px2, gx2!), tf.minimum(px1, gx1!)),
      tf.sub(tf.maximum(py2, gy2!), tf.minimum(py1, gy1!)),
    );
    const giou = tf.sub(
      tf.div(inter, tf.add(union, 1e-7)),
      tf.div(tf.sub(enclosing, union), tf.add(enclosing, 1e-7)),
    );
    return tf.addN([
      l1(0, t.offset[0]),
      l1(1, t.offset[1]),
      tf.mul(tf.add(l1(2, t.size[0]), l1(3, t.size[1])), 3),
      tf.mul(tf.sum(tf.mul(tf.sub(1, giou), t.centre)), 2),
    ]) as tf.Scalar;
  }

  it('give the values and map gradient of the same terms on the whole map, masked', () => {
    const [n, height, width, classes] = [3, 5, 7, 2];
    const { ours, theirs } = tf.tidy(() => {
      const corners = Array.from(random(n * classes * 2, 9), (v) => (v + 1) / 4);
      const boxes = tf.tensor2d(
        Array.from({ length: n * classes }, (_, k) => [
          corners[2 * k]!,
          corners[2 * k + 1]!,
          corners[2 * k]! + 0.3,
          corners[2 * k + 1]! + 0.5,
        ]).flat(),
        [n, 4 * classes],
      );
      const t = centerNetTargets(boxes, tf.tensor2d([1, 0, 1, 1, 0, 1], [n, classes]), height, width);
      const map = tf.tensor4d(random(n * height * width * (classes + 4), 12), [
        n,
        height,
        width,
        classes + 4,
      ]);
      const terms = (m: tf.Tensor) => {
        const logits = boxLogitsAtCentres(m as tf.Tensor4D, t);
        const l1 = (k: number, target: tf.Tensor) =>
          tf.sum(tf.mul(tf.abs(tf.sub(tf.sigmoid(logits[k]!), target)), t.visible));
        return tf.addN([
          l1(0, t.offset[0]),
          l1(1, t.offset[1]),
          tf.mul(tf.add(l1(2, t.size[0]), l1(3, t.size[1])), 3),
          tf.mul(giouLoss(m as tf.Tensor4D, t, logits), 2),
        ]) as tf.Scalar;
      };
      const run = (f: (m: tf.Tensor) => tf.Scalar) => {
        const { value, grad } = tf.valueAndGrad(f)(map);
        return [value.dataSync()[0]!, ...Array.from(grad.dataSync())];
      };
      return { ours: run(terms), theirs: run((m) => wholeMapBoxTerms(m as tf.Tensor4D, t)) };
    });
    expect(theirs[0]).toBeGreaterThan(1);
    expect(theirs.slice(1).some((g) => g !== 0)).toBe(true);
    ours.forEach((v, k) => {
      expect(v).toBeCloseTo(theirs[k]!, 5);
    });
  });
});
