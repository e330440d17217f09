// An Executor that counts and times the one it wraps: jobs by profile, tenant
// and final status, the time each waited in the queue, and how long it ran.
// A job that ends in an error counts under its error code (busy,
// docker_unavailable, shutting_down…) or `cancelled` when its client left.
import { AirlockError } from "../core/errors.ts";
import type { JobMetrics } from "../core/metrics.ts";
import type { Executor } from "./executor.ts";
import { JobCancelledError } from "./sandbox.ts";

export function meterExecutor(inner: Executor, metrics: JobMetrics): Executor {
  return {
    async run(job, options = {}) {
      const profile = job.profile.name;
      const admitted = performance.now();
      let started: number | undefined;
      const finish = (status: string) => {
        metrics.jobs.inc({ profile, tenant: job.tenant, status });
        if (started !== undefined) {
          metrics.jobDuration.observe({ profile, status }, (performance.now() - started) / 1000);
        }
      };
      try {
        const result = await inner.run(job, {
          ...options,
          onStart: (dequeued) => {
            started = performance.now();
            metrics.queueWait.observe({ profile }, (started - admitted) / 1000);
            options.onStart?.(dequeued);
          },
        });
        finish(result.status);
        return result;
      } catch (err) {
        finish(outcome(err));
        throw err;
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
  };
}

function outcome(err: unknown): string {
  if (err instanceof AirlockError) return err.code;
  if (err instanceof JobCancelledError) return "cancelled";
  return "internal";
}
