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
