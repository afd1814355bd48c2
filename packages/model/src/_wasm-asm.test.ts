import { beforeAll, describe, expect, it } from 'vitest';
import { random } from '../test/random.js';
import {
  get,
  hasRelaxedSimd,
  multiplyAddTile,
  simdInstances,
  V128,
  v128Load,
  v128Load32Splat,
  v128Store,
  wasmModule,
} from './_wasm-asm.js';
import { initBackend } from './backend.js';

/** tile(b, a, acc): acc[r][0..7] += a[r] * b[0..7] for r = 0..3, the accumulators loaded from and stored to acc. */
function tileModule(fused: boolean): Uint8Array {
  const [B, A, ACC] = [0, 1, 2];
  const acc = [3, 4, 5, 6, 7, 8, 9, 10];
  const [b0, b1, a] = [11, 12, 13];
  const load = acc.flatMap((register, k) => [...get(ACC), ...v128Load(16 * k), 0x21, register]);
  const store = acc.flatMap((register, k) => [...get(ACC), ...get(register), ...v128Store(16 * k)]);
  const body = [
    ...load,
    ...multiplyAddTile(B, (r) => [...get(A), ...v128Load32Splat(4 * r)], { acc, b0, b1, a }, fused),
    ...store,
  ];
  return wasmModule([{ name: 'tile', params: 3, locals: [[11, V128]], body }]);
}

describe('multiplyAddTile', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('has relaxed SIMD once the wasm backend is set up (Node 20: through the V8 flag initBackend sets)', () => {
    expect(hasRelaxedSimd()).toBe(true);
  });

  it.each([false, true])('adds a x b into the 4 x 8 tile (fused multiply-add: %s)', (fused) => {
    // The project's TypeScript libs do not declare WebAssembly (see _wasm-asm.ts).
    const { Memory } = (
      globalThis as unknown as {
        WebAssembly: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } };
      }
    ).WebAssembly;
    const memory = new Memory({ initial: 1 });
    const tile = simdInstances<{ tile(b: number, a: number, acc: number): void }>(() => tileModule(fused))(
      memory,
    )!;
    expect(tile).toBeDefined();
    const heap = new Float32Array(memory.buffer);
    const [b, a, acc] = [random(8, 1), random(4, 2), random(32, 3)];
    heap.set(b, 0);
    heap.set(a, 8);
    heap.set(acc, 16);
    tile.tile(0, 32, 64);
    for (let r = 0; r < 4; r++) {
      for (let c = 0; c < 8; c++) {
        expect(heap[16 + r * 8 + c]).toBeCloseTo(acc[r * 8 + c]! + a[r]! * b[c]!, 6);
      }
    }
  });
});
