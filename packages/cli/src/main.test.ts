import { DatasetError } from '@litter/dataset';
import { ModelError } from '@litter/model';
import { DEFAULTS as RENDER_DEFAULTS } from '@litter/render';
import { describe, expect, it } from 'vitest';
import { memoryIo } from '../test/_memory-io.js';
import { ExitCode } from './errors.js';
import { main, oneLine } from './main.js';

async function run(argv: string[]) {
  const capture = memoryIo();
  const code = await main(argv, capture.io);
  return { code, stdout: capture.stdout, stderr: capture.stderr };
}

describe('litter argument handling', () => {
  it('prints the version', async () => {
    const { code, stdout } = await run(['--version']);
    expect(code).toBe(ExitCode.ok);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('lists the commands in --help', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(ExitCode.ok);
    for (const command of ['train', 'evaluate', 'predict', 'inspect', 'cache', 'doctor', 'render']) {
      expect(stdout).toContain(command);
    }
  });

  it('documents the training defaults in train --help', async () => {
    const { code, stdout } = await run(['train', '--help']);
    expect(code).toBe(ExitCode.ok);
    expect(stdout).toMatch(/--width.*default: the images' aspect ratio in 5,400 pixels per core/);
    expect(stdout).toMatch(/--time.*default: 1 s per 8 training images, 20 s to 10 min/);
    expect(stdout).toMatch(/--progressive.*default: 0\.6 with a time budget/);
    expect(stdout).toContain('--test-scenes');
    expect(stdout).toContain('--resume');
  });

  it('shows the usage of a nested command', async () => {
    const { code, stdout } = await run(['cache', 'info', '--help']);
    expect(code).toBe(ExitCode.ok);
    expect(stdout).toContain('DATASET');
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['cache', 'shred', 'x'], /unknown command "cache shred"/],
    [['cache'], /missing command/],
    [[], /missing command/],
    [['inspect', 'x', '--bogus'], /unknown flag --bogus for "litter inspect"/],
    [['train', '--widht', '32'], /unknown flag --widht/],
    [['inspect'], /Missing required positional argument: DATASET/],
    [['inspect', 'a', 'b'], /too many arguments/],
    [['train', '--width', 'abc'], /--width must be an integer in \[8, 4096\], got "abc"/],
    [['train', '--width', '1.5'], /--width must be an integer/],
    [['train', '--lr', '-1'], /--lr must be a number > 0/],
    [['train', '--val-fraction', '1'], /--val-fraction must be a number >= 0 and < 1/],
    [['train', '--backend', 'gpu'], /--backend must be one of tensorflow, wasm, cpu, got "gpu"/],
    [['train', '--steps', '5', '--epochs', '2'], /--steps and --epochs cannot be combined/],
    [['train', '--time', '2m', '--steps', '5'], /--time and --steps cannot be combined/],
    [['train', '--time', 'soon'], /--time must be a duration such as 90s, 2m, 1h or 1m30s, got "soon"/],
    [['train', '--progressive', '1'], /--progressive must be a number >= 0 and < 1/],
    [['train', '--color-jitter', '0.2,0.2'], /--color-jitter must be four numbers in \[0, 1\)/],
    [['train', '--patience', '0'], /--patience must be an integer >= 1/],
    [['train', '--test-scenes', '1', '--test-fraction', '0.2'], /--test-scenes and --test-fraction cannot/],
    [['train', '--resume'], /--resume needs --out RUN_DIR/],
    [['train', '--out'], /--out needs a value/],
    [['predict', 'run'], /Missing required positional argument: IMAGE/],
    [['train', '--no-cache', '--steps', 'abc'], /--steps must be an integer >= 1, got "abc"/],
    [['evaluate', 'run', '--split', 'half'], /--split must be one of validation, test, train, all/],
  ])('exits 2 with one line for %j', async (argv, message) => {
    const { code, stderr, stdout } = await run(argv);
    expect(code).toBe(ExitCode.usage);
    const lines = stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^@litter\/cli: /);
    expect(lines.at(-1)).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(stdout).toBe('');
  });

  it('accepts a flag value that looks like a negative number only where it parses', async () => {
    const { code, stderr } = await run(['train', '--seed', '-3']);
    expect(code).toBe(ExitCode.usage);
    expect(stderr).toMatch(/--seed must be an integer in \[0, /);
  });
});

describe('sub-commands are found by position, not in flag values', () => {
  it('litter render --prefix merge OUT renders (the prefix is "merge"); litter render merge is merge', async () => {
    const renderHelp = await run(['render', '--prefix', 'merge', '--help']);
    expect(renderHelp.code).toBe(ExitCode.ok);
    expect(renderHelp.stdout).toMatch(/litter render/);
    expect(renderHelp.stdout).toContain('--scenes');
    // The help text's defaults come from @litter/render's DEFAULTS (its light `defaults` subpath).
    expect(renderHelp.stdout).toContain(`Scenes (object arrangements) (default: ${RENDER_DEFAULTS.scenes})`);
    expect(renderHelp.stdout).toContain(`Camera positions per scene (default: ${RENDER_DEFAULTS.views},`);
    expect(renderHelp.stdout).not.toContain('PART');
    // The render command itself runs: its own check of --scenes answers, not merge's unknown --prefix.
    const rendered = await run(['render', '--prefix', 'merge', 'out', '--scenes', '0']);
    expect(rendered.code).toBe(ExitCode.usage);
    expect(rendered.stderr).toMatch(/--scenes must be an integer >= 1, got "0"/);
    const mergeHelp = await run(['render', 'merge', '--help']);
    expect(mergeHelp.code).toBe(ExitCode.ok);
    expect(mergeHelp.stdout).toContain('PART');
    expect(mergeHelp.stdout).not.toContain('--scenes');
    const merged = await run(['render', '--json', 'merge', '--prefix', 'x', 'out', 'part']);
    expect(merged.stderr).toMatch(/unknown flag --prefix for "litter render merge"/);
  });
});

describe('oneLine', () => {
  it('keeps a one-line message as it is', () => {
    expect(oneLine(new ModelError('model-not-found', 'no such model'))).toBe('@litter/model: no such model');
  });

  it('folds a listed error into one line with the first problems and the advice', () => {
    // The CLI reads `problems` and `advice`, not the message's lines.
    const problems = ['entry 1: a', 'entry 2: b', 'entry 3: c', 'entry 4: d', 'entry 5: e'];
    const error = new DatasetError(
      'labels-invalid',
      `labels.json has 5 problems:\n${problems.map((p) => `  - ${p}`).join('\n')}\nFix these entries.`,
      { problems, advice: 'Fix these entries.' },
    );
    expect(oneLine(error)).toBe(
      '@litter/dataset: labels.json has 5 problems: entry 1: a; entry 2: b; entry 3: c (+2 more; --verbose lists them). Fix these entries.',
    );
  });

  it('reads a message that looks like a package error but is not one as unexpected', () => {
    const lookalike = new Error('@litter/dataset: labels.json has 2 problems:\n  - a\n  - b');
    expect(oneLine(lookalike)).toBe(
      '@litter/cli: unexpected error: @litter/dataset: labels.json has 2 problems: - a. - b',
    );
  });

  it('marks an error that is not ours as unexpected', () => {
    expect(oneLine(new TypeError('x is undefined'))).toBe(
      '@litter/cli: unexpected error: x is undefined (run with --verbose for the stack trace)',
    );
  });
});

describe('package errors name CLI flags, not API options', () => {
  it('says --skip-bad-images, --cache-path, --no-cache, --width and --height', async () => {
    const { mkdtemp, cp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { fixture } = await import('../test/_litter.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'litter-flags-'));
    try {
      await cp(fixture, dir, { recursive: true, filter: (f) => !f.includes('litter-cache') });
      await writeFile(path.join(dir, '0-0y-1p.png'), 'not an image');
      const broken = await run(['cache', 'build', dir, '--cache-path', path.join(dir, 'c.litter-cache')]);
      expect(broken.code).toBe(ExitCode.input);
      expect(broken.stderr).toContain('pass --skip-bad-images to leave them out');
      expect(broken.stderr).not.toMatch(/skipBadImages|cachePath|cache: false/);
      const skipped = await run(['cache', 'build', dir, '--skip-bad-images', '--json']);
      expect(skipped.code).toBe(ExitCode.ok);
      expect(JSON.parse(skipped.stdout).images).toBe(74);
      await writeFile(path.join(dir, 'notes.txt'), 'mine');
      const refused = await run(['cache', 'build', dir, '--cache-path', path.join(dir, 'notes.txt')]);
      expect(refused.code).toBe(ExitCode.input);
      expect(refused.stderr).toContain('pass another --cache-path');
      expect(refused.stderr).not.toMatch(/cachePath/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('file system errors', () => {
  it('are one line naming the file and what to do, not "unexpected error"', async () => {
    const { fileSystemMessage } = await import('./_flags.js');
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
      path: '/runs/a/checkpoints/last.tmp-1-0123abcd/weights.bin',
    });
    expect(fileSystemMessage(full)).toBe(
      '@litter/cli: write /runs/a/checkpoints/last.tmp-1-0123abcd/weights.bin failed with ENOSPC: the disk is full: free some space and run again',
    );
    const exists = Object.assign(new Error('EEXIST: file already exists, mkdir'), {
      code: 'EEXIST',
      syscall: 'mkdir',
    });
    expect(fileSystemMessage(exists)).toMatch(
      /^@litter\/cli: mkdir \(the file system did not say which file\) failed with EEXIST: something is already there/,
    );
    expect(fileSystemMessage(new TypeError('x is undefined'))).toBeUndefined();
  });
});
