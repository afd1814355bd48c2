// @ts-check
// Plain JavaScript for the same reason as _png.js: decoding threads use it.
import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';

/**
 * Where an image file really is, if that is inside the dataset folder: symbolic links (of the file or of a
 * folder on its way) must not lead out of it. A file that is not a link lies where its folder really is, so
 * this costs one lstat per file and one realpath per folder (remembered in `folders`, which a caller keeps
 * for one load only, so that a changed link is noticed next time).
 *
 * @param {string} realRoot the real path of the dataset folder
 * @param {string} path the image's path (absolute, before resolving links)
 * @param {Map<string, string>} folders folder -> real folder, filled as it goes
 * @returns {{ inside: true, path: string } | { inside: false, path: string }} the real path, and whether it is inside
 * @throws the file system's error (ENOENT for a missing file or a dangling link)
 */
export function resolveInside(realRoot, path, folders) {
  let real;
  if (lstatSync(path).isSymbolicLink()) {
    real = realpathSync.native(path);
  } else {
    const folder = dirname(path);
    let realFolder = folders.get(folder);
    if (realFolder === undefined) {
      realFolder = realpathSync.native(folder);
      folders.set(folder, realFolder);
    }
    real = join(realFolder, basename(path));
  }
  const prefix = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  return { inside: real.startsWith(prefix), path: real };
}
