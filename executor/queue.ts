// Concurrency and backpressure: at most `concurrency` jobs run, at most
// `maxQueue` wait; past that, 429 busy with a Retry-After estimated from recent
// job durations. A waiting job whose client leaves is dropped from the queue;
// a running one keeps its slot until its container is gone (p-queue would free
// the slot on abort while the kill and cleanup are still under way).
import { AsyncLocalStorage } from "node:async_hooks";
import PQueue from "p-queue";
import { AirlockError } from "../core/errors.ts";

export interface JobQueueOptions {
  concurrency: number;
  maxQueue: number;
  /** What it queues, as the busy answer names it (default "job"). */
  name?: string;
}

export class JobQueue {
  private readonly queue: PQueue;
  private readonly maxQueue: number;
  private readonly concurrency: number;
  private readonly name: string;
  private averageMs = 1000;

  constructor(options: JobQueueOptions) {
    this.queue = new PQueue({ concurrency: options.concurrency });
    this.maxQueue = options.maxQueue;
    this.concurrency = options.concurrency;
    this.name = options.name ?? "job";
  }

  get running(): number {
    return this.queue.pending;
  }

  get waiting(): number {
    return this.queue.size;
  }

  /**
   * Runs `task` when a slot is free; rejects at once with busy when every slot
   * is taken and `maxQueue` jobs already wait. Counted as one capacity, so
   * maxQueue 0 means "run now or refuse", never "refuse everything".
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.queue.pending + this.queue.size >= this.concurrency + this.maxQueue) {
      const seconds = Math.max(
        1,
        Math.ceil(((this.queue.size + 1) * this.averageMs) / this.concurrency / 1000),
      );
      throw new AirlockError(
        "busy",
        `the ${this.name} queue is full (${this.queue.size} waiting, limit ${this.maxQueue}); retry in about ${seconds} s`,
        {
          retryAfterSeconds: seconds,
          details: { waiting: this.queue.size, maxQueue: this.maxQueue },
        },
      );
    }
    const whileQueued = new AbortController();
    let started = false;
    const onAbort = () => {
      if (!started) whileQueued.abort(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      // Bound to the caller's async context: a queued task starts when another
      // ends, and would otherwise run in that one's (its request id, its timings).
      return await this.queue.add(
        AsyncLocalStorage.bind(async () => {
          started = true;
          const t0 = performance.now();
          try {
            return await task();
          } finally {
            this.averageMs = this.averageMs * 0.8 + (performance.now() - t0) * 0.2;
          }
        }),
        { signal: whileQueued.signal },
      );
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Resolves when nothing runs and nothing waits. */
  async idle(): Promise<void> {
    await this.queue.onIdle();
  }

  /** Drops every waiting job (they reject); running ones go on. */
  clearWaiting(): void {
    this.queue.clear();
  }
}
