import { posix } from 'node:path';
import { DatasetError } from './errors.js';

/**
 * The scene of an image, for splits that keep a scene's renders together.
 *
 * Default: the file name (without folders) up to the first `-`, as in `{scene}-{yaw}y-{pitch}p.png`; a name
 * without `-` is its own scene (minus the extension). With `pattern` (a RegExp or its source): the first
 * capture group of the match on the image path as written in `labels.json`, or the whole match without groups.
 *
 * @throws DatasetError `options-invalid` when `pattern` does not match
 * @example
 * sceneOf('3-4y-2p.png');                       // '3'
 * sceneOf('renders/kitchen_07.png', /_(\d+)\./); // '07'
 */
export function sceneOf(image: string, pattern?: RegExp | string): string {
  if (pattern === undefined) {
    const name = posix.basename(image.replaceAll('\\', '/'));
    const dash = name.indexOf('-');
    if (dash > 0) return name.slice(0, dash);
    const dot = name.lastIndexOf('.');
    return dot > 0 ? name.slice(0, dot) : name;
  }
  const regex = toRegExp(pattern);
  const match = regex.exec(image);
  if (!match) {
    throw new DatasetError(
      'options-invalid',
      `the scene pattern ${regex} does not match the image "${image}": give a pattern that matches every image path`,
    );
  }
  return match[1] ?? match[0];
}

/** @internal */
export function toRegExp(pattern: RegExp | string): RegExp {
  if (pattern instanceof RegExp) return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  try {
    return new RegExp(pattern);
  } catch (error) {
    throw new DatasetError(
      'options-invalid',
      `the scene pattern "${pattern}" is not a valid regular expression`,
      {
        cause: error,
      },
    );
  }
}
