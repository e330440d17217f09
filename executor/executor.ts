// The executor: a job goes through the queue into its own sandbox. Engine
// failures become docker_unavailable here, once, so routes never see raw
// dockerode errors.
import { AirlockError, isDockerUnreachable } from "../core/errors.ts";
import type { Job } from "../core/job.ts";
import type { ExecResult } from "../core/schemas.ts";
import type { ContainerClient } from "./docker.ts";
import type { ManifestCache } from "./manifest-cache.ts";
import type { WarmPool } from "./pool.ts";
import { JobQueue } from "./queue.ts";
import { type ReapReport, reap } from "./reaper.ts";
import { JobCancelledError, type RunOptions, runSandbox } from "./sandbox.ts";

export interface ExecutorDeps {
  client: ContainerClient;
  instanceId: string;
  concurrency: number;
  maxQueue: number;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
  pool?: WarmPool | undefined;
  manifests?: ManifestCache | undefined;
}

export interface ExecutorRunOptions extends RunOptions {
  /**
   * Called once, when the job leaves the queue for its sandbox (metrics,
   * graceful shutdown, the operators' view of running jobs). A wrapper that
   * sets its own passes the caller's on.
   */
  onStart?: ((job: Job) => void) | undefined;
}

export interface Executor {
  run(job: Job, options?: ExecutorRunOptions): Promise<ExecResult>;
  readonly running: number;
  readonly waiting: number;
  /** Removes orphans: own leftovers too when `includeOwn`. */
  reap(includeOwn: boolean): Promise<ReapReport>;
  /** Stops taking jobs from the queue, waits for running ones, removes what is left. */
  drain(): Promise<void>;
}

export function createExecutor(deps: ExecutorDeps): Executor {
  const queue = new JobQueue({ concurrency: deps.concurrency, maxQueue: deps.maxQueue });
  // Removals of finished jobs' containers, done after the answer has gone out.
  const cleanups = new Set<Promise<void>>();
  const sandboxDeps = {
    background: (work: Promise<void>) => {
      cleanups.add(work);
      void work.finally(() => cleanups.delete(work));
    },
    client: deps.client,
    instanceId: deps.instanceId,
    orphanGraceMs: deps.orphanGraceMs,
    warn: deps.warn,
    pool: deps.pool,
    manifests: deps.manifests,
  };
  return {
    async run(job, options = {}) {
      try {
        const { onStart, ...runOptions } = options;
        // The answer goes out as soon as there is one; the slot is given back
        // only once whatever the sandbox asked to hold it for has ended.
        const held: Promise<void>[] = [];
        let answer: ((result: ExecResult) => void) | undefined;
        const answered = new Promise<ExecResult>((resolve) => {
          answer = resolve;
        });
        const slot = queue.run(async () => {
          onStart?.(job);
          const holdSlot = (work: Promise<void>) => held.push(work);
          const result = await runSandbox({ ...sandboxDeps, holdSlot }, job, runOptions);
          answer?.(result);
          await Promise.allSettled(held);
          return result;
        }, options.signal);
        return await Promise.race([answered, slot]);
      } catch (err) {
        throw translate(err);
      }
    },
    get running() {
      return queue.running;
    },
    get waiting() {
      return queue.waiting;
    },
    async reap(includeOwn) {
      try {
        return await reap(deps.client, { instanceId: deps.instanceId, includeOwn });
      } catch (err) {
        throw translate(err);
      }
    },
    async drain() {
      await deps.pool?.drain();
      queue.clearWaiting();
      await queue.idle();
      await Promise.allSettled([...cleanups]);
      await reap(deps.client, { instanceId: deps.instanceId, includeOwn: true });
    },
  };
}

/**
 * Engine failures become docker_unavailable, once, here: a refused or reset
 * socket, and any 5xx from the engine (a daemon shutting down answers 500
 * "database not open" mid-job) — the engine's fault, not airlock's, and worth a retry.
 */
function translate(err: unknown): unknown {
  if (err instanceof AirlockError || err instanceof JobCancelledError) return err;
  if ((err as { name?: unknown } | null)?.name === "AbortError") {
    return new JobCancelledError("the client went away while the job was queued", { cause: err });
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (isDockerUnreachable(err) || (typeof status === "number" && status >= 500)) {
    const detail = (err as Error).message.replace(/\s+/g, " ").slice(0, 200);
    return new AirlockError(
      "docker_unavailable",
      `the Docker engine failed; retry shortly (${detail})`,
      {
        cause: err,
        retryAfterSeconds: 5,
      },
    );
  }
  return err;
}
