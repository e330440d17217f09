// The metrics sink the engine writes to. The composition root makes one with
// prom-client (api/metrics.ts) and passes it down, so the engine counts jobs
// and Docker calls without knowing who serves /metrics.
import type { Counter, Histogram } from "prom-client";

/** Live values read at scrape time, so gauges can never drift from the truth. */
export interface LiveSources {
  /** Jobs running now. */
  running(): number;
  /** Jobs admitted and waiting for a slot. */
  waiting(): number;
  /** Started containers parked in the warm pool, by profile. */
  parked(): Record<string, number>;
}

export interface EngineMetrics {
  /** Latency of Docker API calls, seconds (create and start matter most). */
  readonly dockerLatency: Histogram<"operation">;
  readonly dockerErrors: Counter<"operation">;
}

export interface JobMetrics {
  /** Jobs by profile, tenant and final status (a result status, or the error code). */
  readonly jobs: Counter<"profile" | "tenant" | "status">;
  /** From leaving the queue to the answer, seconds. */
  readonly jobDuration: Histogram<"profile" | "status">;
  /** From admission to leaving the queue, seconds. */
  readonly queueWait: Histogram<"profile">;
}

export interface MetricsSink extends EngineMetrics, JobMetrics {
  /** Lets the gauges read the engine's live values at scrape time. */
  watch(sources: LiveSources): void;
}
