/**
 * A reusable barrier of the data-parallel workers over shared memory (Atomics): a step's workers meet at it
 * without a round trip through the main thread. A worker that fails never arrives; the pool then terminates
 * every worker, which also ends a wait.
 */
export class Barrier {
  /** `[arrived, generation]` in the shared buffer. */
  private readonly cells: Int32Array;

  /** Over `buffer` (at least {@link Barrier.BYTES}, zeroed, the same for every party) for `parties` threads. */
  constructor(
    buffer: SharedArrayBuffer,
    private readonly parties: number,
  ) {
    this.cells = new Int32Array(buffer, 0, 2);
  }

  /** Bytes a barrier's shared buffer needs. */
  static readonly BYTES = 8;

  /** Blocks until all parties have called it (for this use of the barrier); the milliseconds spent waiting. */
  wait(): number {
    const started = performance.now();
    const { cells, parties } = this;
    const generation = Atomics.load(cells, 1);
    if (Atomics.add(cells, 0, 1) === parties - 1) {
      // The last to arrive opens the barrier for this generation and resets it for the next.
      Atomics.store(cells, 0, 0);
      Atomics.add(cells, 1, 1);
      Atomics.notify(cells, 1);
    } else {
      while (Atomics.load(cells, 1) === generation) Atomics.wait(cells, 1, generation);
    }
    return performance.now() - started;
  }
}
