import { describe, expect, it } from 'vitest';
import { memoryIo } from '../test/_memory-io.js';
import { ProgressRenderer, progressMode } from './_progress.js';

const begin = {
  runDir: '/tmp/run',
  step: 0,
  totalSteps: 4,
  backend: 'cpu',
  model: 'seed-cnn',
  parameters: 1000,
  batchSize: 2,
  trainSize: 10,
  validationSize: 5,
  testSize: 0,
  resumed: false,
};
const step = (n: number, logged: boolean) => ({
  step: n,
  totalSteps: 4,
  epoch: n / 5,
  loss: 0.5 / n,
  imagesPerSecond: 100 + n,
  learningRate: 1e-3,
  logged,
  elapsedSeconds: n * 0.02,
});
const validation = {
  step: 2,
  loss: 0.3,
  exactMatch: 0.6,
  macroF1: 0.7,
  microF1: 0.75,
  hammingLoss: 0.2,
  meanAveragePrecision: 0.8,
  best: true,
};

async function replay(renderer: ProgressRenderer) {
  const { callbacks } = renderer;
  await callbacks.onTrainBegin(begin);
  for (let n = 1; n <= 4; n++) {
    await callbacks.onStepEnd(step(n, n % 2 === 0));
    if (n === 2) await callbacks.onValidation(validation);
    if (n === 2) await callbacks.onCheckpoint({ step: 2, dir: '/tmp/run/checkpoints/best', kind: 'best' });
  }
  renderer.stop();
}

describe('ProgressRenderer', () => {
  it('picks the mode from --json and the terminal', () => {
    expect(progressMode(memoryIo({ isTTY: true }).io, true)).toBe('json');
    expect(progressMode(memoryIo({ isTTY: true }).io, false)).toBe('tty');
    expect(progressMode(memoryIo({ isTTY: false }).io, false)).toBe('plain');
    expect(progressMode(memoryIo({ isTTY: true, env: { CI: '1' } }).io, false)).toBe('plain');
  });

  it('prints one JSON object per line with the stable shapes', async () => {
    const capture = memoryIo();
    await replay(new ProgressRenderer(capture.io, 'json'));
    const events = capture.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.map((e) => e.event)).toEqual(['begin', 'step', 'validation', 'checkpoint', 'step']);
    expect(events[1]).toEqual({
      event: 'step',
      step: 2,
      totalSteps: 4,
      epoch: 0.4,
      loss: 0.25,
      imagesPerSecond: 102,
      learningRate: 1e-3,
    });
    expect(events[2]).toMatchObject({ event: 'validation', step: 2, exactMatch: 0.6, macroF1: 0.7 });
    expect(events[3]).toEqual({
      event: 'checkpoint',
      step: 2,
      kind: 'best',
      dir: '/tmp/run/checkpoints/best',
    });
    expect(capture.stderr).toBe('');
  });

  it('prints plain lines for logged steps and validations', async () => {
    const capture = memoryIo();
    await replay(new ProgressRenderer(capture.io, 'plain'));
    const lines = capture.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('training seed-cnn on cpu: 10 train / 5 validation images, 4 steps');
    expect(lines.filter((line) => line.startsWith('step '))).toEqual([
      'step 2/4  epoch 0.40  loss 0.2500  102.0 img/s  lr 1.00e-3',
      'step 4/4  epoch 0.80  loss 0.1250  104.0 img/s  lr 1.00e-3',
    ]);
    expect(
      lines.some((line) => /^validation at step 2: .*exact match 0.600 .*macro F1 0.700/.test(line)),
    ).toBe(true);
  });

  it('draws a bar on a terminal and keeps stdout for the report', async () => {
    const capture = memoryIo({ isTTY: true });
    await replay(new ProgressRenderer(capture.io, 'tty'));
    expect(capture.stderr).toMatch(/step 4\/4 .*loss 0\.1250 .*104\.0 img\/s .*ETA \d+s/);
    expect(capture.stderr).toMatch(/validation at step 2/);
    expect(capture.stdout).not.toMatch(/^step /m);
  });
});
