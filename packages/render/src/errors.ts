/**
 * What went wrong, as a stable string a program can branch on.
 *
 * - `blender-not-found`: no Blender at `--blender`, `LITTER_BLENDER` or on PATH.
 * - `blender-unsupported`: a Blender older than {@link MIN_BLENDER} or from {@link TOO_NEW_BLENDER} on (or one
 *   whose version cannot be read).
 * - `blender-failed`: Blender stopped or reported an error while rendering (its last output is in the message).
 * - `scene-file-invalid`: the JSON scene file is not valid (every problem is listed, `problems` has them all).
 * - `options-invalid`: a bad option value (scenes, views, shard, ...).
 * - `out-dir`: the output folder cannot be used (holds other files, holds a render without `--resume`, ...).
 * - `settings-mismatch`: `--resume` or `merge` met a render made with other settings.
 * - `merge-invalid`: the parts of a merge overlap, miss scenes or are unfinished.
 */
export type RenderErrorCode =
  | 'blender-not-found'
  | 'blender-unsupported'
  | 'blender-failed'
  | 'scene-file-invalid'
  | 'options-invalid'
  | 'out-dir'
  | 'settings-mismatch'
  | 'merge-invalid';

/** How many problems a message lists before "... and N more" (all are in `problems`). */
export const MAX_LISTED_PROBLEMS = 20;

/**
 * The one error class of `@litter/render`. `message` starts with `@litter/render:` and says what to do.
 *
 * @example
 * try {
 *   await render({ out: 'renders' });
 * } catch (error) {
 *   if (error instanceof RenderError && error.code === 'blender-not-found') console.error(error.message);
 *   else throw error;
 * }
 */
export class RenderError extends Error {
  override readonly name = 'RenderError';
  readonly code: RenderErrorCode;
  /** Each problem on its own, uncapped (scene files, merges). */
  readonly problems: readonly string[];
  /** What to do, when the message ends with it after its problems. */
  readonly advice: string | undefined;

  constructor(
    code: RenderErrorCode,
    message: string,
    options: { cause?: unknown; problems?: readonly string[]; advice?: string | undefined } = {},
  ) {
    super(
      message.startsWith('@litter/render:') ? message : `@litter/render: ${message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.problems = options.problems ?? [];
    this.advice = options.advice;
  }
}

/** A RenderError listing problems one per line (capped at {@link MAX_LISTED_PROBLEMS}), then advice. */
export function problemsError(
  code: RenderErrorCode,
  summary: string,
  problems: readonly string[],
  advice?: string,
): RenderError {
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  - ${p}`);
  if (problems.length > MAX_LISTED_PROBLEMS)
    listed.push(`  ... and ${problems.length - MAX_LISTED_PROBLEMS} more`);
  return new RenderError(code, `${summary}\n${listed.join('\n')}${advice ? `\n${advice}` : ''}`, {
    problems,
    advice,
  });
}
