import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ReportData, ReportSample } from '../src/index.js';

/** The shared fixture: 96x72 Blender renders of Can, Cube and Sphere. */
export const FIXTURE_DIR = fileURLToPath(
  new URL('../../../test/fixtures/blender-three-wide/', import.meta.url),
);

/** A small deterministic PRNG (mulberry32), so the made-up predictions are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * ReportData from the fixture's real images and boxes with made-up predictions: probabilities lean towards the
 * truth with noise (a few clear mistakes), predicted boxes are the true boxes shifted a little.
 */
export function syntheticReportData(options: { samples?: number; seed?: number } = {}): ReportData {
  const { samples: count = 12, seed = 1 } = options;
  const next = random(seed);
  const entries = JSON.parse(readFileSync(`${FIXTURE_DIR}labels.json`, 'utf8')) as {
    image: string;
    meshes: Record<string, { x1: number; y1: number; x2: number; y2: number }>;
  }[];
  const classes = ['Can', 'Cube', 'Sphere'];
  const samples: ReportSample[] = entries.slice(0, count).map((entry) => {
    const trueBoxes = classes.map((name) => {
      const m = entry.meshes[name];
      // labels.json has Blender's y up; the report takes y down (image rows).
      return m ? [m.x1, 1 - m.y2, m.x2, 1 - m.y1] : null;
    });
    const labels = trueBoxes.map((b) => (b ? 1 : 0));
    const probabilities = labels.map((l) => {
      const confident = next() < 0.8;
      const p = confident ? (l ? 0.7 + 0.3 * next() : 0.3 * next()) : next();
      return Math.round(p * 1000) / 1000;
    });
    const shift = () => (next() - 0.5) * 0.08;
    const predictedBoxes = trueBoxes.map((b, c) =>
      probabilities[c]! >= 0.5
        ? b
          ? b.map((v) => Math.min(1, Math.max(0, v + shift())))
          : [0.1, 0.1, 0.3, 0.3]
        : null,
    );
    // Made up as the rest: the report shows the IoU it is given.
    const iou = trueBoxes.map((b, c) =>
      b && predictedBoxes[c] ? Math.round(600 + 400 * next()) / 1000 : null,
    );
    return {
      imagePath: `${FIXTURE_DIR}${entry.image}`,
      labels,
      probabilities,
      trueBoxes,
      predictedBoxes,
      iou,
    };
  });
  const history = Array.from({ length: 40 }, (_, i) => ({
    step: (i + 1) * 25,
    loss: 0.7 * Math.exp(-i / 12) + 0.05 + 0.03 * next(),
  }));
  const validation = Array.from({ length: 5 }, (_, i) => ({
    step: (i + 1) * 200,
    loss: 0.65 * Math.exp(-i / 3) + 0.1,
    exactMatch: Math.min(1, 0.3 + 0.15 * i),
    macroF1: Math.min(1, 0.5 + 0.1 * i),
  }));
  // Per-class figures and curves as the trainer hands them over; made up here (the report computes none).
  const metrics = classes.map((name, c) => ({
    name,
    threshold: [0.5, 0.45, 0.55][c]!,
    support: samples.filter((s) => s.labels[c] === 1).length,
    precision: 0.8 + 0.2 * next(),
    recall: 0.7 + 0.3 * next(),
    f1: 0.75 + 0.2 * next(),
    averagePrecision: 0.8 + 0.2 * next(),
    box: { count: 5, meanIoU: 0.6 + 0.3 * next() },
  }));
  const curves = metrics.map((m) => ({
    averagePrecision: m.averagePrecision,
    points: [0.9, 0.7, 0.5, 0.3, 0.1].map((threshold, k) => ({
      threshold,
      precision: 1 - 0.1 * k * next(),
      recall: (k + 1) / 5,
    })),
  }));
  return {
    title: 'run-2024-05-01',
    classes,
    metrics,
    curves: count > 0 ? curves : undefined,
    history,
    validation,
    samples,
    thresholds: [0.5, 0.45, 0.55],
    summary: { 'exact match': 0.9, 'macro F1': 0.947, steps: 1000, backend: 'cpu' },
  };
}
