import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it, vi } from 'vitest';
import { CUBE_SPHERE, copyFixture, tempDir } from './helpers.js';

/** The README's example, between the marker comment and the end of its code block. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const match = /<!-- example: run by test\/readme\.test\.ts -->\s*```js\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('README.md has no example block');
  return match[1]!;
}

it('the README example runs as written (on a copy of the sample)', async () => {
  const code = await readmeExample();
  expect(code).toContain("from '@litter/dataset'");
  expect(code).toContain("'examples/blender-cube-sphere'");
  const sample = await copyFixture(CUBE_SPHERE); // so that the cache is not written into the repository
  const file = join(await tempDir(), 'example.mjs');
  await writeFile(file, code.replace("'examples/blender-cube-sphere'", JSON.stringify(sample)));
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.join(' '));
  });
  try {
    await import(pathToFileURL(file).href);
  } finally {
    log.mockRestore();
  }
  const output = lines.join('\n');
  expect(output).toContain('cache: build');
  expect(output).toContain('196 images of 64x64, classes: Cube, Sphere');
  expect(output).toMatch(/train \d+ images, validation \d+/);
  expect(output).toContain('shape 32,64,64,3');
});
