import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RenderError } from './errors.js';

/** The oldest Blender `litter render` accepts: the script uses 3.x's Python API (3.3 is an LTS release). */
export const MIN_BLENDER = [3, 3] as const;
/**
 * The first Blender `litter render` refuses: 5.0 made the compositor a node group (no `Scene.node_tree`, no
 * Composite node), which the object-index pass is read through.
 */
export const TOO_NEW_BLENDER = [5, 0] as const;
/** The Blender versions the tests run on. 4.x is accepted: the script takes 4.x's renamed operators too. */
export const TESTED_BLENDER = ['3.4'] as const;

/** A Blender that was found and asked for its version. */
export interface BlenderInfo {
  /** The executable. */
  path: string;
  /** `3.4.1` */
  version: string;
  /** [major, minor, patch] */
  parts: [number, number, number];
  /** How it was found. */
  source: 'option' | 'LITTER_BLENDER' | 'PATH' | 'default location';
  /** Whether the tests ran on this major.minor ({@link TESTED_BLENDER}). */
  tested: boolean;
}

export interface FindBlenderOptions {
  /** An explicit executable (`--blender PATH`); wins over the environment. */
  blender?: string | undefined;
  /** @default process.env */
  env?: Record<string, string | undefined>;
}

/** How to install Blender on this platform, for error messages. */
export function installHint(platform: NodeJS.Platform = process.platform): string {
  const where =
    platform === 'linux'
      ? 'on Debian/Ubuntu: sudo apt-get install -y blender (Debian 12 has 3.4); or a release from https://www.blender.org/download/ unpacked anywhere'
      : platform === 'darwin'
        ? 'on macOS: brew install --cask blender, or the .dmg from https://www.blender.org/download/'
        : 'download it from https://www.blender.org/download/';
  return `Install Blender ${MIN_BLENDER.join('.')} or newer (${where}), then put it on PATH or pass --blender PATH (or set LITTER_BLENDER)`;
}

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `blender` on PATH (with PATHEXT on Windows). */
function onPath(env: Record<string, string | undefined>): string | undefined {
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE').split(';') : [''];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const file = path.join(dir, `blender${ext.toLowerCase()}`);
      if (isExecutable(file)) return file;
    }
  }
  return undefined;
}

const DEFAULT_LOCATIONS: Partial<Record<NodeJS.Platform, string[]>> = {
  darwin: ['/Applications/Blender.app/Contents/MacOS/Blender'],
};

/** Where Blender is, without running it: the option, LITTER_BLENDER, PATH, then the platform's usual place. */
export function locateBlender(options: FindBlenderOptions = {}): {
  path: string;
  source: BlenderInfo['source'];
} {
  const env = options.env ?? process.env;
  const explicit: [string | undefined, 'option' | 'LITTER_BLENDER'][] = [
    [options.blender, 'option'],
    [env.LITTER_BLENDER, 'LITTER_BLENDER'],
  ];
  for (const [file, source] of explicit) {
    if (file === undefined || file === '') continue;
    if (!isExecutable(file)) {
      const name = source === 'option' ? '--blender' : 'LITTER_BLENDER';
      throw new RenderError(
        'blender-not-found',
        `${name} ${file} is not an executable file. ${installHint()}`,
      );
    }
    return { path: path.resolve(file), source };
  }
  const found = onPath(env);
  if (found) return { path: found, source: 'PATH' };
  const usual = (DEFAULT_LOCATIONS[process.platform] ?? []).find(isExecutable);
  if (usual) return { path: usual, source: 'default location' };
  throw new RenderError('blender-not-found', `Blender was not found on PATH. ${installHint()}`);
}

/** Parses `Blender 3.4.1` (the first line of `blender --version`). */
export function parseBlenderVersion(output: string): [number, number, number] | undefined {
  const match = /Blender (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

const atLeast = ([major = 0, minor = 0]: readonly number[], [a, b]: readonly [number, number]) =>
  major > a || (major === a && minor >= b);

/** Whether a version is at least {@link MIN_BLENDER} and older than {@link TOO_NEW_BLENDER}. */
export function isSupportedBlender(parts: readonly number[]): boolean {
  return atLeast(parts, MIN_BLENDER) && !atLeast(parts, TOO_NEW_BLENDER);
}

/**
 * `blender --version` (a Blender start-up, about 0.3 s), remembered in the temporary folder per executable,
 * size and modification time: a replaced Blender is asked again.
 */
async function versionOutput(file: string): Promise<string> {
  const { size, mtimeMs } = statSync(file);
  const key = createHash('sha256').update(`${file}\0${size}\0${mtimeMs}`).digest('hex').slice(0, 16);
  const memo = path.join(os.tmpdir(), `litter-blender-version-${key}.txt`);
  try {
    return readFileSync(memo, 'utf8');
  } catch {
    // not asked yet
  }
  const output = await new Promise<string>((resolve, reject) => {
    execFile(file, ['--version'], { timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && !stdout) reject(error);
      else resolve(`${stdout}\n${stderr}`);
    });
  }).catch((error: unknown) => {
    throw new RenderError(
      'blender-unsupported',
      `${file} --version failed (${(error as Error).message.split('\n')[0]}). ${installHint()}`,
      { cause: error },
    );
  });
  const version = /Blender \d+\.\d+(?:\.\d+)?/.exec(output)?.[0];
  if (version) {
    try {
      const temporary = `${memo}.${process.pid}`;
      writeFileSync(temporary, version);
      renameSync(temporary, memo);
    } catch {
      // a read-only temporary folder: ask every time
    }
  }
  return output;
}

/**
 * Finds Blender (`--blender`, `LITTER_BLENDER`, PATH, the usual place) and checks its version. Throws
 * `blender-not-found` or `blender-unsupported` with how to install a usable one.
 *
 * @example
 * const blender = await findBlender({ blender: '/opt/blender-3.6/blender' });
 * console.log(blender.version); // '3.6.5'
 */
export async function findBlender(options: FindBlenderOptions = {}): Promise<BlenderInfo> {
  const { path: file, source } = locateBlender(options);
  const output = await versionOutput(file);
  const parts = parseBlenderVersion(output);
  if (!parts) {
    throw new RenderError(
      'blender-unsupported',
      `${file} --version did not print a Blender version. ${installHint()}`,
    );
  }
  const version = parts.join('.');
  if (!isSupportedBlender(parts)) {
    const tooNew = atLeast(parts, TOO_NEW_BLENDER);
    const needs = tooNew
      ? `litter render supports ${MIN_BLENDER.join('.')} to 4.x (${TOO_NEW_BLENDER.join('.')} changed the compositor's Python API it reads the object-index pass through). Install a 4.x (4.2 LTS: https://www.blender.org/download/lts/), then pass --blender PATH (or set LITTER_BLENDER)`
      : `litter render needs ${MIN_BLENDER.join('.')} or newer. ${installHint()}`;
    throw new RenderError('blender-unsupported', `${file} is Blender ${version}; ${needs}`);
  }
  const tested = (TESTED_BLENDER as readonly string[]).includes(`${parts[0]}.${parts[1]}`);
  return { path: file, version, parts, source, tested };
}
