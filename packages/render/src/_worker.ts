import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SceneRecord } from './labels.js';

/** The Python script Blender runs (shipped in the package: `python/litter_render.py`). */
export const SCRIPT = fileURLToPath(new URL('../python/litter_render.py', import.meta.url));

/** What the script says on stdout (lines `LITTER {json}`). */
export type WorkerMessage =
  | { event: 'ready'; protocol: number; blender: string }
  | { event: 'view'; scene: number; view: number; views: number; image: string }
  | ({ event: 'scene' } & Omit<SceneRecord, 'fingerprint'>)
  | { event: 'error'; scene: number; message: string; trace: string };

export interface WorkerHandlers {
  onMessage(message: WorkerMessage): void;
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** How many of Blender's own output lines are kept for error messages. */
const TAIL = 20;

/** One headless Blender running the script, rendering the scenes it is sent, one at a time. */
export class BlenderWorker {
  readonly #child: ChildProcess;
  readonly #tail: string[] = [];
  /** The scene it is rendering, if any. */
  scene: number | undefined;
  exited = false;

  constructor(blender: string, settingsFile: string, handlers: WorkerHandlers) {
    this.#child = spawn(
      blender,
      ['-b', '--factory-startup', '--python-exit-code', '2', '--python', SCRIPT, '--', settingsFile],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const keep = (line: string) => {
      if (line.trim() === '' || line.startsWith('Fra:')) return;
      this.#tail.push(line);
      if (this.#tail.length > TAIL) this.#tail.shift();
    };
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const at = line.indexOf('LITTER {');
      if (at === -1) return keep(line);
      if (at > 0) keep(line.slice(0, at));
      handlers.onMessage(JSON.parse(line.slice(at + 7)) as WorkerMessage);
    });
    createInterface({ input: this.#child.stderr! }).on('line', keep);
    this.#child.stdin!.on('error', () => {}); // a Blender that died is reported by its exit
    this.#child.on('error', (error) => keep(`cannot start ${blender}: ${error.message}`));
    this.#child.on('close', (code, signal) => {
      this.exited = true;
      handlers.onExit(code, signal);
    });
  }

  send(scene: number): void {
    this.scene = scene;
    this.#child.stdin!.write(`${JSON.stringify({ scene })}\n`);
  }

  /** No more scenes: the script ends after the current one. */
  finish(): void {
    this.scene = undefined;
    this.#child.stdin!.end(`${JSON.stringify({ quit: true })}\n`);
  }

  /** Stops Blender now (SIGTERM, SIGKILL after `graceMs`). */
  kill(graceMs = 3000): void {
    if (this.exited) return;
    this.#child.kill('SIGTERM');
    setTimeout(() => {
      if (!this.exited) this.#child.kill('SIGKILL');
    }, graceMs).unref();
  }

  /** Blender's last output lines (without the per-tile progress). */
  get tail(): string {
    return this.#tail.join('\n');
  }
}
