// The executor: a job goes through the queue into its own sandbox. A job's
// failures leave it typed: cancelled, or docker_unavailable for the engine's
// (executor/engine-errors.ts), so routes never see raw dockerode errors.
import { AirlockError } from "../core/errors.ts";
import type { Job } from "../core/job.ts";
import type { ExecResult } from "../core/schemas.ts";
import { phase } from "../core/timing.ts";
import type { ContainerClient } from "./docker.ts";
import type { Egress } from "./egress-network.ts";
import { engineFailure } from "./engine-errors.ts";
import type { ManifestCache } from "./manifest-cache.ts";
import type { WarmPool } from "./pool.ts";
import { JobQueue } from "./queue.ts";
import { type ReapReport, reap } from "./reaper.ts";
import { JobCancelledError, type RunOptions, runSandbox } from "./sandbox.ts";
import type { WorkspaceMeter } from "./workspace-meter.ts";

export interface ExecutorDeps {
  client: ContainerClient;
  instanceId: string;
  concurrency: number;
  maxQueue: number;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
  pool?: WarmPool | undefined;
  manifests?: ManifestCache | undefined;
  /** Watches workspace jobs' workspaces while they run (their size caps). */
  meter?: WorkspaceMeter | undefined;
  egress?: Egress | undefined;
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
    meter: deps.meter,
    egress: deps.egress,
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
          phase("queue");
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
        const report = await reap(deps.client, { instanceId: deps.instanceId, includeOwn });
        // Expired egress networks after the containers: their holders are gone by then.
        await deps.egress?.reapExpired();
        return report;
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
 * The client's calls are translated by its decorator (translateEngineErrors);
 * the job's own streams (attach, archives) fail outside any call, so their
 * engine failures are translated here, as are the client's when a caller
 * passes an undecorated one.
 */
function translate(err: unknown): unknown {
  if (err instanceof AirlockError || err instanceof JobCancelledError) return err;
  if ((err as { name?: unknown } | null)?.name === "AbortError") {
    return new JobCancelledError("the client went away while the job was queued", { cause: err });
  }
  return engineFailure(err) ?? err;
}
