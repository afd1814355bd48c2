/*
 * A tiny WebAssembly assembler for litter's SIMD kernels (_batchnorm-simd.ts, _filter-grad-simd.ts): opcode
 * bytes, locals, loops, and a module of i32-argument functions that imports tfjs-backend-wasm's own
 * `WebAssembly.Memory`, so kernels read and write tensors where they lie on its heap (pointers are heap byte
 * offsets). No toolchain: the bytes are built here.
 */

import { ModelError } from './errors.js';

/** Unsigned LEB128. */
export function u32(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** `i32.const` of a small non-negative constant (one signed LEB128 byte). */
export const i32Const = (value: number): number[] => {
  if (value < 0 || value > 63)
    throw new ModelError('unsupported', '@litter/model: i32 constant out of the encoded range');
  return [0x41, value];
};
export const get = (local: number) => [0x20, ...u32(local)];
export const set = (local: number) => [0x21, ...u32(local)];
export const tee = (local: number) => [0x22, ...u32(local)];
export const simd = (opcode: number) => [0xfd, ...u32(opcode)];
export const I32_ADD = [0x6a];
export const I32_SUB = [0x6b];
export const I32_LT_U = [0x49];
export const I32_SHL = [0x74];
export const I32_MUL = [0x6c];
export const I32_EQ = [0x46];
export const I32_LT_S = [0x48];
export const SELECT = [0x1b];
export const BLOCK = [0x02, 0x40];
export const BR_0 = [0x0c, 0x00];
export const BR_IF_1 = [0x0d, 0x01];
export const LOOP = [0x03, 0x40];
export const END = [0x0b];
export const BR_IF_0 = [0x0d, 0x00];
/** Memory argument: alignment hint 1 (any address), byte offset. */
const memarg = (offset: number) => [0x00, ...u32(offset)];
export const v128Load = (offset = 0) => [...simd(0x00), ...memarg(offset)];
export const v128Store = (offset = 0) => [...simd(0x0b), ...memarg(offset)];
/** One float32 at the address, in all four lanes. */
export const v128Load32Splat = (offset = 0) => [...simd(0x09), ...memarg(offset)];
export const V128_LOAD = v128Load();
export const V128_STORE = v128Store();
export const V128_ZERO = [...simd(0x0c), ...new Array<number>(16).fill(0)];
export const V128_AND = simd(0x4e);
export const F32X4_GT = simd(0x44);
export const F32X4_ADD = simd(0xe4);
export const F32X4_SUB = simd(0xe5);
export const F32X4_MUL = simd(0xe6);
export const F32X4_PMAX = simd(0xeb);
/** Relaxed SIMD's `f32x4.relaxed_madd`: `a * b + c`, fused into one rounding where the CPU has FMA. */
export const F32X4_RELAXED_MADD = simd(0x105);
export const I32 = 0x7f;
export const V128 = 0x7b;

/** `local += value` (both i32 locals). */
export const addTo = (local: number, value: number) => [
  ...get(local),
  ...get(value),
  ...I32_ADD,
  ...set(local),
];

/** `do { body } while (counter -= step)`: the counter (an i32 local) must start at a positive multiple of step. */
export const countdown = (counter: number, body: number[], step = 1) => [
  ...LOOP,
  ...body,
  ...get(counter),
  ...i32Const(step),
  ...I32_SUB,
  ...tee(counter),
  ...BR_IF_0,
  ...END,
];

/** `do { body; local += step } while (local < limit)` (i32 locals, unsigned compare; the body runs once at least). */
export const stepUntil = (local: number, step: number, limit: number, body: number[]) => [
  ...LOOP,
  ...body,
  ...get(local),
  ...i32Const(step),
  ...I32_ADD,
  ...tee(local),
  ...get(limit),
  ...I32_LT_U,
  ...BR_IF_0,
  ...END,
];

/** `target = value` (value: the bytes that push it). */
export const assign = (target: number, value: number[]) => [...value, ...set(target)];
/** Push `a + b` (i32 locals). */
export const sum = (a: number, b: number) => [...get(a), ...get(b), ...I32_ADD];

/**
 * A 4 x 8 tile's multiply-adds, the micro-kernel of the convolution kernels: b0 and b1 = the 8 floats at the
 * address in local `b`; for r = 0..3, a = splat(r) (the bytes that push the address and load one float as a
 * splat), acc[2 r] += a b0, acc[2 r + 1] += a b1. `registers` are v128 locals: 8 accumulators, b0, b1, a.
 * `fused`: each multiply-add as relaxed SIMD's `f32x4.relaxed_madd` (one instruction, FMA on x86-64 and Arm)
 * instead of a multiply and an add; by default where the engine has relaxed SIMD ({@link hasRelaxedSimd}).
 */
export function multiplyAddTile(
  b: number,
  splat: (r: number) => number[],
  registers: { acc: readonly number[]; b0: number; b1: number; a: number },
  fused = hasRelaxedSimd(),
): number[] {
  const { acc, b0, b1, a } = registers;
  const out = [...get(b), ...v128Load(0), ...set(b0), ...get(b), ...v128Load(16), ...set(b1)];
  for (let r = 0; r < 4; r++) {
    out.push(...splat(r), ...set(a));
    for (let h = 0; h < 2; h++) {
      const target = acc[2 * r + h]!;
      const [x, y] = [get(a), get(h === 0 ? b0 : b1)];
      out.push(
        ...(fused
          ? [...x, ...y, ...get(target), ...F32X4_RELAXED_MADD]
          : [...get(target), ...x, ...y, ...F32X4_MUL, ...F32X4_ADD]),
        ...set(target),
      );
    }
  }
  return out;
}

/** A function of the module: `params` i32 arguments, extra locals, the body (without the final `end`). */
export interface WasmFunction {
  name: string;
  params: number;
  locals: [count: number, type: number][];
  body: number[];
}

const vector = (items: number[][]) => [...u32(items.length), ...items.flat()];
const section = (id: number, content: number[]) => [id, ...u32(content.length), ...content];
const name = (text: string) => [...u32(text.length), ...[...text].map((ch) => ch.charCodeAt(0))];

/** The module's bytes: memory imported as env.memory, every function exported by its name. */
export function wasmModule(funcs: readonly WasmFunction[]): Uint8Array {
  const types = funcs.map((f) => [0x60, ...vector(new Array(f.params).fill([I32])), 0x00]);
  const imports = vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]]);
  const bodies = funcs.map((f) => {
    const code = [...vector(f.locals.map(([count, type]) => [...u32(count), type])), ...f.body, ...END];
    return [...u32(code.length), ...code];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector(types)),
    ...section(2, imports),
    ...section(3, vector(funcs.map((_, i) => u32(i)))),
    ...section(7, vector(funcs.map((f, i) => [...name(f.name), 0x00, ...u32(i)]))),
    ...section(10, vector(bodies)),
  ]);
}

/** The parts of the WebAssembly JS API used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  Memory: abstract new (...args: never[]) => { buffer: ArrayBufferLike };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
  validate(bytes: Uint8Array): boolean;
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** `(v128, v128, v128) -> v128` computing `f32x4.relaxed_madd`: valid only where the engine has relaxed SIMD. */
const RELAXED_SIMD_PROBE = (() => {
  const body = [0x00, ...get(0), ...get(1), ...get(2), ...F32X4_RELAXED_MADD, ...END];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vector([[0x60, ...vector([[V128], [V128], [V128]]), ...vector([[V128]])]])),
    ...section(3, vector([u32(0)])),
    ...section(10, vector([[...u32(body.length), ...body]])),
  ]);
})();

/**
 * Whether this engine has WebAssembly relaxed SIMD: on by default from V8 11.4 (Node 22); Node 20's V8 11.3 has
 * it behind `--experimental-wasm-relaxed-simd`, which `initBackend` sets for the wasm backend.
 */
export function hasRelaxedSimd(): boolean {
  return wasmApi?.validate(RELAXED_SIMD_PROBE) ?? false;
}

/**
 * A cache of one module's instances, one per memory: `instanceOn(memory)` is the module's exports on that
 * memory, or undefined where they cannot run (no memory, a shared memory of a threaded wasm build, or an engine
 * without WebAssembly SIMD).
 */
export function simdInstances<T>(bytes: () => Uint8Array): (memory: unknown) => T | undefined {
  const instances = new WeakMap<object, T | null>();
  return (memory) => {
    if (wasmApi === undefined || !(memory instanceof wasmApi.Memory)) return undefined;
    let instance = instances.get(memory);
    if (instance === undefined) {
      instance = null;
      const code = bytes();
      if (!(memory.buffer instanceof SharedArrayBuffer) && wasmApi.validate(code)) {
        const module = new wasmApi.Module(code);
        instance = new wasmApi.Instance(module, { env: { memory } }).exports as unknown as T;
      }
      instances.set(memory, instance);
    }
    return instance ?? undefined;
  };
}

/** tfjs-backend-wasm's `WebAssembly.Memory` (undefined on other backends). */
export function wasmMemory(backend: unknown): unknown {
  return (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
}
