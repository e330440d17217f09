// Prometheus metrics (prom-client). One Registry, made by the composition root
// and passed in: no default registry, no module state. The counters and
// histograms are fed by wrappers (executor/metered-*.ts) and by the app's
// error handler; the gauges read live values from the executor and the warm
// pool when Prometheus scrapes (collect), so they can never drift.
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from "prom-client";
import type { EgressEntry } from "../core/egress.ts";
import type { LiveSources, MetricsSink } from "../core/metrics.ts";

/** Job and Docker call latencies: from a few ms (create) to minutes (long jobs). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export interface Metrics extends MetricsSink {
  readonly registry: Registry;
  /** HTTP error answers by code: denials (forbidden, stopped), rate_limited, busy… */
  readonly errors: Counter<"code">;
  readonly requests: Counter<"method" | "status">;
  /** Counts one egress connection when it ends (executor/egress-proxy.ts). */
  egress(entry: EgressEntry): void;
}

export function createMetrics(registry: Registry): Metrics {
  const registers = [registry];
  let sources: LiveSources | undefined;
  collectDefaultMetrics({ register: registry, prefix: "airlock_process_" });
  new Gauge({
    name: "airlock_jobs_running",
    help: "Jobs running now, each in its own container",
    registers,
    collect() {
      this.set(sources?.running() ?? 0);
    },
  });
  new Gauge({
    name: "airlock_queue_depth",
    help: "Jobs admitted and waiting for a free slot",
    registers,
    collect() {
      this.set(sources?.waiting() ?? 0);
    },
  });
  new Gauge({
    name: "airlock_warm_pool_size",
    help: "Started containers parked in the warm pool, by profile",
    labelNames: ["profile"],
    registers,
    collect() {
      this.reset();
      for (const [profile, n] of Object.entries(sources?.parked() ?? {})) {
        this.set({ profile }, n);
      }
    },
  });
  const egressConnections = new Counter({
    name: "airlock_egress_connections_total",
    help: "Connections through the egress proxy by network (- when denied) and decision",
    labelNames: ["network", "decision"],
    registers,
  });
  const egressBytes = new Counter({
    name: "airlock_egress_bytes_total",
    help: "Bytes through the egress proxy by network and direction (out: to the upstream)",
    labelNames: ["network", "direction"],
    registers,
  });
  return {
    registry,
    egress(entry) {
      const network = entry.network ?? "-";
      egressConnections.inc({ network, decision: entry.decision });
      if (entry.bytesOut > 0) egressBytes.inc({ network, direction: "out" }, entry.bytesOut);
      if (entry.bytesIn > 0) egressBytes.inc({ network, direction: "in" }, entry.bytesIn);
    },
    jobs: new Counter({
      name: "airlock_jobs_total",
      help: "Jobs by profile, tenant and final status (result status or error code)",
      labelNames: ["profile", "tenant", "status"],
      registers,
    }),
    jobDuration: new Histogram({
      name: "airlock_job_duration_seconds",
      help: "Time from leaving the queue to the job's answer",
      labelNames: ["profile", "status"],
      buckets: SECONDS,
      registers,
    }),
    queueWait: new Histogram({
      name: "airlock_queue_wait_seconds",
      help: "Time a job waited in the queue for a free slot",
      labelNames: ["profile"],
      buckets: SECONDS,
      registers,
    }),
    dockerLatency: new Histogram({
      name: "airlock_docker_operation_seconds",
      help: "Latency of Docker Engine API calls, by operation",
      labelNames: ["operation"],
      buckets: SECONDS,
      registers,
    }),
    dockerErrors: new Counter({
      name: "airlock_docker_errors_total",
      help: "Docker Engine API calls that failed, by operation",
      labelNames: ["operation"],
      registers,
    }),
    errors: new Counter({
      name: "airlock_http_errors_total",
      help: "Error answers by code (policy denials, rate limits, busy, ...)",
      labelNames: ["code"],
      registers,
    }),
    requests: new Counter({
      name: "airlock_http_requests_total",
      help: "HTTP requests by method and status",
      labelNames: ["method", "status"],
      registers,
    }),
    watch(next) {
      sources = next;
    },
  };
}
