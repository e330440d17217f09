// /metrics against a real gateway and real containers: the values move as jobs
// run (counters by profile, tenant and status; duration, queue-wait and Docker
// latency histograms; running, queue-depth and warm-pool gauges; error codes).
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { metricValue, parseMetrics, type Sample } from "../support/metrics.ts";

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ metrics: true, concurrency: 1, maxQueue: 1, poolMin: 1, poolMax: 2 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function scrape(): Promise<Sample[]> {
  const res = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${gw.key}` } });
  expect(res.status).toBe(200);
  return parseMetrics(await res.text());
}

async function until(what: string, test: (s: Sample[]) => boolean, ms = 20_000): Promise<Sample[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const samples = await scrape();
    if (test(samples)) return samples;
    if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("needs a key unless AIRLOCK_METRICS_PUBLIC, and speaks the Prometheus format", async () => {
  expect((await fetch(`${gw.url}/metrics`)).status).toBe(401);
  const res = await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${gw.key}` } });
  expect(res.headers.get("content-type")).toContain("text/plain");
  const text = await res.text();
  expect(text).toContain("# TYPE airlock_jobs_total counter");
  expect(text).toContain("# TYPE airlock_job_duration_seconds histogram");
});

it("counts jobs by profile, tenant and status, and times them", async () => {
  // The warm pool parks a shell container ahead of demand: the gauge shows it.
  const before = await until(
    "a parked shell container",
    (s) => metricValue(s, "airlock_warm_pool_size", { profile: "shell" }) >= 1,
  );
  const jobs = (s: Sample[], status: string) =>
    metricValue(s, "airlock_jobs_total", { profile: "shell", tenant: "test", status });
  const runs = [
    { command: ["echo", "hi"] },
    { command: "exit 3" },
    { command: "sleep 5", limits: { timeoutMs: 500 } },
  ];
  const statuses = [];
  for (const run of runs) {
    const res = await gw.post("/v1/exec", { profile: "shell", ...run });
    statuses.push(((await res.json()) as { status: string }).status);
  }
  expect(statuses).toEqual(["ok", "error", "timeout"]);
  const after = await scrape();
  for (const status of ["ok", "error", "timeout"]) {
    expect(jobs(after, status) - jobs(before, status)).toBe(1);
  }
  const count = (s: Sample[], name: string, labels: Record<string, string> = {}) =>
    metricValue(s, name, labels);
  expect(
    count(after, "airlock_job_duration_seconds_count", { profile: "shell" }) -
      count(before, "airlock_job_duration_seconds_count", { profile: "shell" }),
  ).toBe(3);
  expect(
    count(after, "airlock_queue_wait_seconds_count", { profile: "shell" }) -
      count(before, "airlock_queue_wait_seconds_count", { profile: "shell" }),
  ).toBe(3);
  // The timed-out job ran at least its 0.5 s limit.
  const timeoutSum =
    count(after, "airlock_job_duration_seconds_sum", { status: "timeout" }) -
    count(before, "airlock_job_duration_seconds_sum", { status: "timeout" });
  expect(timeoutSum).toBeGreaterThanOrEqual(0.5);
  // Jobs taken from the pool skip create and start, but the pool refills: both grow.
  for (const operation of ["create", "start"]) {
    expect(count(after, "airlock_docker_operation_seconds_count", { operation })).toBeGreaterThan(
      count(before, "airlock_docker_operation_seconds_count", { operation }),
    );
  }
});

it("shows running jobs and queue depth while they happen, and counts busy answers", async () => {
  const before = await scrape();
  const slow = gw.post("/v1/exec", { profile: "shell", command: "sleep 2" });
  await until("a running job", (s) => metricValue(s, "airlock_jobs_running") === 1);
  const queued = gw.post("/v1/exec", { profile: "shell", command: "true" });
  await until("a queued job", (s) => metricValue(s, "airlock_queue_depth") === 1);
  // concurrency 1, maxQueue 1: a third job is turned away.
  const refused = await gw.post("/v1/exec", { profile: "shell", command: "true" });
  expect(refused.status).toBe(429);
  expect((await slow).status).toBe(200);
  expect((await queued).status).toBe(200);
  const after = await until(
    "the jobs done",
    (s) =>
      metricValue(s, "airlock_jobs_running") === 0 && metricValue(s, "airlock_queue_depth") === 0,
  );
  expect(
    metricValue(after, "airlock_http_errors_total", { code: "busy" }) -
      metricValue(before, "airlock_http_errors_total", { code: "busy" }),
  ).toBe(1);
  expect(
    metricValue(after, "airlock_jobs_total", { status: "busy", tenant: "test" }) -
      metricValue(before, "airlock_jobs_total", { status: "busy", tenant: "test" }),
  ).toBe(1);
  // The queued job waited for the slow one: its wait is in the histogram's sum.
  expect(
    metricValue(after, "airlock_queue_wait_seconds_sum") -
      metricValue(before, "airlock_queue_wait_seconds_sum"),
  ).toBeGreaterThan(0.5);
});

it("counts error answers by code (denials and rate limits land here too)", async () => {
  const before = await scrape();
  await gw.post("/v1/exec", { profile: "no-such-profile", command: "true" });
  await gw.post("/v1/exec", { profile: "shell" });
  await fetch(`${gw.url}/v1/profiles`, {
    headers: { authorization: "Bearer wrong-key-0123456789" },
  });
  const after = await scrape();
  const delta = (code: string) =>
    metricValue(after, "airlock_http_errors_total", { code }) -
    metricValue(before, "airlock_http_errors_total", { code });
  expect({
    not_found: delta("not_found"),
    invalid_request: delta("invalid_request"),
    unauthorized: delta("unauthorized"),
  }).toEqual({ not_found: 1, invalid_request: 1, unauthorized: 1 });
  expect(
    metricValue(after, "airlock_http_requests_total", { method: "POST", status: "404" }),
  ).toBeGreaterThan(
    metricValue(before, "airlock_http_requests_total", { method: "POST", status: "404" }),
  );
});
