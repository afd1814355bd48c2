/**
 * The packages' messages name their API options (`skipBadImages: true`, `cachePath`, `cache: false`); on the
 * command line the user sets them with flags. Each phrase of a package message that names an option, and the
 * flag that says the same to a CLI user. Longer phrases first: they are replaced before their parts.
 */
const PHRASES: readonly (readonly [RegExp, string])[] = [
  [
    /Pass width and height \(e\.g\. \{ width: (\d+), height: (\d+) \}\)/g,
    'Pass --width and --height (e.g. --width $1 --height $2)',
  ],
  [/pass a smaller width and height/g, 'pass a smaller --width and --height'],
  [/cachePath: '([^']*)'/g, '--cache-path $1'],
  [/skipBadImages: true/g, '--skip-bad-images'],
  [/skipBadImages is off/g, '--skip-bad-images is off'],
  [/\bcache: false\b/g, '--no-cache'],
  [/\bcachePath\b/g, '--cache-path'],
  [/\bfullHash\b/g, '--full-hash'],
];

/** A package message as the CLI prints it: API option names replaced by the CLI flags that set them. */
export function withCliFlags(message: string): string {
  return PHRASES.reduce((text, [pattern, flag]) => text.replace(pattern, flag), message);
}

/** What to do about a file system error, by its code. */
const FILE_ADVICE: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full: free some space and run again',
  EDQUOT: 'the disk quota is used up: free some space and run again',
  EACCES: 'permission denied: check who owns it, or choose another path',
  EPERM: 'operation not permitted: check who owns it, or choose another path',
  EROFS: 'the file system is read-only: choose another path',
  EEXIST: 'something is already there: move it away, or choose another path',
  ENOTDIR: 'a part of the path is a file, not a folder: choose another path',
  EISDIR: 'it is a folder, where a file was expected',
  EMFILE: 'too many open files: raise the limit (ulimit -n) or use fewer workers',
};

/**
 * A file system error that reached the CLI unexplained (ENOSPC while writing a checkpoint, EEXIST, ...): one line
 * with the file it concerns and what to do, instead of "unexpected error". Undefined for other errors.
 */
export function fileSystemMessage(error: Error): string | undefined {
  const { code, path, syscall } = error as NodeJS.ErrnoException;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return undefined;
  const advice = FILE_ADVICE[code] ?? error.message.split('\n')[0];
  const file = typeof path === 'string' ? ` ${path}` : ' (the file system did not say which file)';
  return `@litter/cli: ${syscall ?? 'file system'}${file} failed with ${code}: ${advice}`;
}
