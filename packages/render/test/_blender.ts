import { type BlenderInfo, findBlender } from '../src/blender.js';

/**
 * The Blender the tests render with, or undefined (with a message saying why the tests that need it are
 * skipped): `pnpm test` installs Debian's blender where it can (scripts/install-test-tools.sh).
 */
export async function testBlender(suite: string): Promise<BlenderInfo | undefined> {
  try {
    return await findBlender();
  } catch (error) {
    console.warn(
      `${suite}: skipped, no usable Blender (${(error as Error).message}). scripts/install-test-tools.sh installs it on Debian as root.`,
    );
    return undefined;
  }
}

/** The tiny render: 48x36, 2 samples, 2 scenes x 4 views, three classes. */
export const TINY = {
  scenes: 2,
  views: 4,
  width: 48,
  height: 36,
  samples: 2,
  seed: 7,
  objects: ['Cube', 'Sphere', 'Can'],
};
