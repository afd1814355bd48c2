// Where an image file really is: symbolic links must not lead out of the dataset folder.
import { constants, lstatSync, openSync, realpathSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';

/**
 * Where an image file really is, if that is inside the dataset folder: symbolic links (of the file or of a
 * folder on its way) must not lead out of it. A file that is not a link lies where its folder really is, so
 * this costs one lstat per file and one realpath per folder (remembered in `folders`, which a caller keeps
 * for one load only, so that a changed link is noticed next time).
 *
 * @param realRoot the real path of the dataset folder
 * @param path the image's path (absolute, before resolving links)
 * @param folders folder -> real folder, filled as it goes
 * @returns the real path, and whether it is inside
 * @throws the file system's error (ENOENT for a missing file or a dangling link)
 */
export function resolveInside(
  realRoot: string,
  path: string,
  folders: Map<string, string>,
): { inside: boolean; path: string } {
  let real: string;
  if (lstatSync(path).isSymbolicLink()) {
    real = realpathSync.native(path);
  } else {
    const folder = dirname(path);
    let realFolder = folders.get(folder);
    if (realFolder === undefined) {
      realFolder = realpathSync.native(folder);
      folders.set(folder, realFolder);
    }
    real = inFolder(realFolder, basename(path));
  }
  const prefix = realRoot.endsWith(sep) ? realRoot : realRoot + sep;
  return { inside: real.startsWith(prefix), path: real };
}

/**
 * Opens an image file with `flags` if it is inside the dataset folder (see {@link resolveInside}). Where the
 * system has O_NOFOLLOW, a file that is not a link is opened straight away, without the lstat: a link makes
 * that open fail, and is then resolved as in {@link resolveInside}.
 *
 * @param realRoot the real path of the dataset folder
 * @param path the image's path (absolute, before resolving links)
 * @param folders folder -> real folder, filled as it goes
 * @param flags for open
 * @returns the open file, or the real path outside
 * @throws the file system's error (ENOENT for a missing file or a dangling link)
 */
export function openInside(
  realRoot: string,
  path: string,
  folders: Map<string, string>,
  flags: number,
): { inside: true; fd: number } | { inside: false; path: string } {
  const noFollow = constants.O_NOFOLLOW;
  if (noFollow !== undefined) {
    const folder = dirname(path);
    let realFolder = folders.get(folder);
    if (realFolder === undefined) {
      realFolder = realpathSync.native(folder);
      folders.set(folder, realFolder);
    }
    const real = inFolder(realFolder, basename(path));
    if (real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) {
      try {
        return { inside: true, fd: openSync(real, flags | noFollow) };
      } catch (error) {
        // ELOOP (EMLINK on FreeBSD): the file is a link, resolved below. Anything else is the answer.
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ELOOP' && code !== 'EMLINK') throw error;
      }
    }
  }
  const resolved = resolveInside(realRoot, path, folders);
  if (!resolved.inside) return { inside: false, path: resolved.path };
  return { inside: true, fd: openSync(resolved.path, flags) };
}

/**
 * `join(folder, name)` for a normalised absolute folder and a name without separators, as a concatenation
 * where that is what join would give (join normalises the whole path: a few microseconds per image).
 */
function inFolder(folder: string, name: string): string {
  if (name === '' || name === '.' || name === '..') return join(folder, name);
  return folder.endsWith(sep) ? folder + name : folder + sep + name;
}
