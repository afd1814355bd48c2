/*
 * The worker threads of a parallel trainer: one Replica per thread (its requests, answered in order), and the
 * WorkerPool that runs calls on them one at a time, keeps the process alive only while one is in flight, and
 * terminates every thread when one fails or the trainer is disposed.
 */
import { Worker } from 'node:worker_threads';
import { TrainerError, type TrainerErrorCode } from '../errors.js';
import type { ReplicaLayout, Reply, Request, RequestBody, WorkerInit } from './_protocol.js';

/** The code of failures of the workers themselves. */
export const WORKER_FAILED: TrainerErrorCode = 'worker-failed';

interface Pending {
  resolve: (reply: Extract<Reply, { type: 'done' }>) => void;
  reject: (error: Error) => void;
}

/** One worker thread and its outstanding requests (answered in order). */
export class Replica {
  readonly worker: Worker;
  readonly ready: Promise<ReplicaLayout>;
  readonly exited: Promise<number>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private onReady: { resolve: (layout: ReplicaLayout) => void; reject: (error: Error) => void } | undefined;

  constructor(
    readonly index: number,
    url: URL,
    init: WorkerInit,
    private readonly onFailure: (error: Error) => void,
  ) {
    this.worker = new Worker(url, { workerData: init });
    this.ready = new Promise<ReplicaLayout>((resolve, reject) => {
      this.onReady = { resolve, reject };
    });
    this.ready.catch(() => {}); // rejections also go through onFailure
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.on('message', (reply: Reply) => this.receive(reply));
    this.worker.on('error', (error) =>
      this.onFailure(
        new TrainerError(WORKER_FAILED, `parallel training worker ${index} failed: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    this.worker.on('exit', (code) =>
      this.onFailure(
        new TrainerError(
          WORKER_FAILED,
          `parallel training worker ${index} exited (code ${code}) in the middle of training`,
        ),
      ),
    );
  }

  private receive(reply: Reply): void {
    if (reply.type === 'ready') {
      this.onReady?.resolve(reply.layout);
      this.onReady = undefined;
      return;
    }
    if (reply.type === 'error') {
      const cause = Object.assign(new Error(reply.message), { stack: reply.stack });
      this.onFailure(
        new TrainerError(WORKER_FAILED, `parallel training worker ${this.index} failed: ${reply.message}`, {
          cause,
        }),
      );
      return;
    }
    const pending = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    pending?.resolve(reply);
  }

  request(message: RequestBody): Promise<Extract<Reply, { type: 'done' }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id } as Request);
    });
  }

  failAll(error: Error): void {
    this.onReady?.reject(error);
    this.onReady = undefined;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}

/** The replicas of one trainer: calls run one at a time; a failure of one ends them all. */
export class WorkerPool {
  readonly replicas: Replica[] = [];
  /** Resolves once every worker thread has exited. */
  readonly closed: Promise<void>;
  private failure: Error | undefined;
  private disposed = false;
  private inflight = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(url: URL, inits: readonly WorkerInit[]) {
    for (const init of inits)
      this.replicas.push(new Replica(init.index, url, init, (error) => this.fail(error)));
    this.closed = Promise.all(this.replicas.map((r) => r.exited)).then(() => undefined);
  }

  /** The failure that ended the pool, if one did. */
  get error(): Error | undefined {
    return this.failure;
  }

  private fail(error: Error): void {
    if (this.failure || this.disposed) return;
    this.failure = error;
    for (const replica of this.replicas) replica.failAll(error);
    for (const replica of this.replicas) void replica.worker.terminate();
  }

  /** Runs `work` with the workers referenced: they keep the process alive only while a call is in flight. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    if (this.disposed) throw new TrainerError('invalid-options', 'this parallel trainer was disposed');
    if (this.inflight++ === 0) for (const replica of this.replicas) replica.worker.ref();
    try {
      return await work();
    } finally {
      if (--this.inflight === 0) for (const replica of this.replicas) replica.worker.unref();
    }
  }

  /** Runs `work` after the calls before it (they share the input buffer). */
  serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => this.track(work));
    this.queue = result.catch(() => {});
    return result;
  }

  /** Sends `message` to every worker; their answers, in worker order. */
  broadcast(message: RequestBody): Promise<Extract<Reply, { type: 'done' }>[]> {
    return Promise.all(this.replicas.map((replica) => replica.request(message)));
  }

  /** Every worker's layout once it is ready. */
  ready(): Promise<ReplicaLayout[]> {
    return Promise.all(this.replicas.map((replica) => replica.ready));
  }

  /** Terminates the workers; resolves once every thread has exited. Safe to call more than once. */
  async dispose(): Promise<void> {
    if (!this.disposed) {
      this.disposed = true;
      for (const replica of this.replicas) {
        replica.failAll(new TrainerError('invalid-options', 'this parallel trainer was disposed'));
        void replica.worker.terminate();
      }
    }
    await this.closed;
  }
}
