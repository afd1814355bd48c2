// TEMPORARY stand-in for @litter/dataset while it is being written. Remove when it lands.
type Dataset = {
  size: number;
  width: number;
  height: number;
  vocabulary: readonly string[];
  pixels: Uint8Array;
  labels: Float32Array;
  boxes: Float32Array;
  boxMask: Float32Array;
  scenes: readonly string[];
};
function mulberry(state: number) {
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export class EpochSampler {
  private order: number[] = [];
  private position = 0;
  epoch = 0;
  constructor(
    private readonly o: {
      indices: number[];
      batchSize: number;
      seed: number;
      dropLast?: boolean;
      shuffle?: boolean;
    },
  ) {
    this.reshuffle();
  }
  private reshuffle() {
    const random = mulberry(this.o.seed * 1000 + this.epoch);
    this.order = [...this.o.indices];
    for (let i = this.order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [this.order[i], this.order[j]] = [this.order[j]!, this.order[i]!];
    }
    this.position = 0;
  }
  next(): Int32Array {
    if (this.position >= this.order.length) {
      this.epoch++;
      this.reshuffle();
    }
    const out = Int32Array.from(this.order.slice(this.position, this.position + this.o.batchSize));
    this.position += out.length;
    return out;
  }
  state() {
    return { epoch: this.epoch, position: this.position };
  }
  restore(s: { epoch: number; position: number }) {
    this.epoch = s.epoch;
    this.reshuffle();
    this.position = s.position;
  }
}
export function createBatcher(d: Dataset, { sampler }: { sampler: EpochSampler; format?: string }) {
  const C = d.vocabulary.length;
  const P = d.width * d.height * 3;
  return {
    sampler,
    next() {
      const indices = sampler.next();
      const n = indices.length;
      const images = new Float32Array(n * P);
      const labels = new Float32Array(n * C);
      const boxes = new Float32Array(n * C * 4);
      const boxMask = new Float32Array(n * C);
      indices.forEach((idx, k) => {
        for (let j = 0; j < P; j++) images[k * P + j] = d.pixels[idx * P + j]! / 255;
        labels.set(d.labels.subarray(idx * C, idx * C + C), k * C);
        boxes.set(d.boxes.subarray(idx * C * 4, idx * C * 4 + C * 4), k * C * 4);
        boxMask.set(d.boxMask.subarray(idx * C, idx * C + C), k * C);
      });
      return { images, labels, boxes, boxMask, indices, size: n, shape: [n, d.height, d.width, 3] };
    },
  };
}
export function splitDataset(d: Dataset) {
  const train: number[] = [];
  const validation: number[] = [];
  d.scenes.forEach((s, i) => (s === d.scenes[0] ? validation : train).push(i));
  return { train, validation, test: [] };
}
export async function decodeImage(): Promise<Uint8Array> {
  throw new Error('shim');
}
