import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pngBomb } from '@litter/dataset/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../test/_litter.js';
import { memoryIo } from '../../test/_memory-io.js';
import { main } from '../main.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'litter-inspect-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function copy(name: string, edit: (labels: string) => string): Promise<string> {
  const target = path.join(dir, name);
  await cp(fixture, target, { recursive: true, filter: (f) => !f.includes('litter-cache') });
  const labels = path.join(target, 'labels.json');
  await writeFile(labels, edit(await readFile(labels, 'utf8')));
  return target;
}

async function run(argv: string[]) {
  const capture = memoryIo();
  const code = await main(argv, capture.io);
  return { code, stdout: capture.stdout, stderr: capture.stderr };
}

describe('litter inspect on hostile names', () => {
  it('counts classes and label sets named constructor or __proto__ like any other', async () => {
    const ds = await copy('names', (t) =>
      t.replaceAll('"Can"', '"constructor"').replaceAll('"Cube"', '"__proto__"'),
    );
    const plain = JSON.parse((await run(['inspect', fixture, '--json'])).stdout);
    const { stdout } = await run(['inspect', ds, '--json']);
    const renamed = JSON.parse(stdout);
    // JSON.parse makes `__proto__` an own key, as the CLI's output has it.
    const expected = JSON.parse(
      `{"Sphere": ${plain.classes.Sphere}, "__proto__": ${plain.classes.Cube}, "constructor": ${plain.classes.Can}}`,
    );
    expect(JSON.stringify(renamed.classes)).toBe(JSON.stringify(expected));
    const counts = Object.values(renamed.labelSets) as unknown[];
    expect(counts.every((n) => typeof n === 'number')).toBe(true);
    expect(counts.reduce((a, b) => (a as number) + (b as number), 0)).toBe(75);
    expect(stdout).not.toContain('[native code]');
  });

  it('shows escape codes in names as text, never sends them to the terminal', async () => {
    const ds = await copy('escapes', (t) =>
      t.replaceAll('"Can"', '"Can\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m"'),
    );
    const text = await run(['inspect', ds]);
    const json = await run(['inspect', ds, '--json']);
    for (const out of [text.stdout, text.stderr, json.stdout]) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: they must not be there
      expect(out).not.toMatch(/[\u001b\u0007\u009b]/);
    }
    expect(text.stdout).toContain('Can\\u001b[2J\\u001b]0;pwned\\u0007\\u009b31m');
    expect(Object.keys(JSON.parse(json.stdout).classes)).toContain(
      'Can\u001b[2J\u001b]0;pwned\u0007\u009b31m',
    );
  });

  it('says an image is too large where train would refuse it', async () => {
    const ds = await copy('large', (t) => t);
    await writeFile(path.join(ds, '0-0y-1p.png'), pngBomb({ width: 5000, height: 4000, inflated: 100 }));
    const { code, stdout } = await run(['inspect', ds, '--json']);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).problems).toContain(
      '0-0y-1p.png: it is 5000x4000, more than the 16,777,216 pixels (4096x4096) an image may have',
    );
  });
});
