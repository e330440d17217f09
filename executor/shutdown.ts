// Graceful shutdown of the executor: once `stop` is called no job is admitted
// (503 shutting_down), jobs still queued are dropped at once, running ones get
// a grace period to finish, and those still running after it are killed
// through their abort signal (the sandbox's cancellation path kills and
// removes the container). Every job ended this way answers 503 shutting_down,
// never a result it did not earn. Then the executor drains: the warm pool is
// emptied and this instance's leftovers are reaped.
import { AirlockError } from "../core/errors.ts";
import type { Executor } from "./executor.ts";
import { JobCancelledError } from "./sandbox.ts";

export interface StopReport {
  /** Jobs that finished within the grace period. */
  finished: number;
  /** Jobs killed (running past the grace period) or dropped from the queue. */
  cancelled: number;
}

export interface StoppableExecutor extends Executor {
  /** Stops admitting, waits up to `graceMs` for running jobs, cancels the rest, drains. */
  stop(graceMs: number): Promise<StopReport>;
}

interface Tracked {
  abort: AbortController;
  started: boolean;
  settled: Promise<unknown>;
}

const RETRY_SECONDS = 5;

function shuttingDown(message: string, cause?: unknown): AirlockError {
  return new AirlockError("shutting_down", message, {
    retryAfterSeconds: RETRY_SECONDS,
    ...(cause === undefined ? {} : { cause }),
  });
}

export function stoppable(inner: Executor): StoppableExecutor {
  const jobs = new Set<Tracked>();
  let stopping = false;
  return {
    async run(job, options = {}) {
      if (stopping)
        throw shuttingDown(
          "the gateway is shutting down; send the job to another replica or retry shortly",
        );
      const abort = new AbortController();
      const signal =
        options.signal === undefined
          ? abort.signal
          : AbortSignal.any([options.signal, abort.signal]);
      const entry: Tracked = { abort, started: false, settled: Promise.resolve() };
      const running = inner.run(job, {
        ...options,
        signal,
        onStart: (dequeued) => {
          entry.started = true;
          options.onStart?.(dequeued);
        },
      });
      entry.settled = running.catch(() => undefined);
      jobs.add(entry);
      try {
        return await running;
      } catch (err) {
        // Ours, not the client's: the client is still there and deserves a reason.
        const ours =
          abort.signal.aborted &&
          (err instanceof JobCancelledError || isAbort(err) || err === abort.signal.reason);
        if (ours) {
          throw shuttingDown(
            entry.started
              ? "the gateway shut down and killed this job after its grace period"
              : "the gateway shut down before this job left the queue",
            err,
          );
        }
        throw err;
      } finally {
        jobs.delete(entry);
      }
    },
    get running() {
      return inner.running;
    },
    get waiting() {
      return inner.waiting;
    },
    reap: (includeOwn) => inner.reap(includeOwn),
    drain: () => inner.drain(),
    async stop(graceMs) {
      stopping = true;
      const at = [...jobs];
      const queued = at.filter((j) => !j.started);
      for (const j of queued) j.abort.abort();
      const running = at.filter((j) => j.started);
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"grace_over">((resolve) => {
        timer = setTimeout(() => resolve("grace_over"), graceMs);
      });
      let killed = 0;
      const all = Promise.all(running.map((j) => j.settled));
      if ((await Promise.race([all, graceOver])) === "grace_over") {
        for (const j of jobs) {
          if (!j.abort.signal.aborted) {
            killed++;
            j.abort.abort();
          }
        }
        await Promise.all([...jobs].map((j) => j.settled));
      }
      clearTimeout(timer);
      await inner.drain();
      return { finished: running.length - killed, cancelled: queued.length + killed };
    },
  };
}

function isAbort(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === "AbortError";
}
