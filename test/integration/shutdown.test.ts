// SIGTERM during running jobs, against the real entry point (main.ts as a
// child process): new connections are refused, a job that ends within the
// grace period gets its result, a job still running after it is killed and
// answered 503 shutting_down, a job still queued is answered 503 at once, the
// warm pool is drained, the process exits 0, and no container or volume with
// its instance label is left.
import Dockerode from "dockerode";
import { afterAll, expect, it } from "vitest";
import { type MainProcess, spawnMain } from "../support/main-process.ts";
import { metricValue, parseMetrics } from "../support/metrics.ts";

const docker = new Dockerode();

interface Answer {
  status?: string;
  stdout?: string;
  error?: { code: string; message: string };
}
const GRACE_MS = 3000;
let main: MainProcess | undefined;

afterAll(async () => {
  // Only after a failure does anything remain to kill or remove.
  await main?.kill();
});

async function containersOf(instanceId: string) {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`airlock=${instanceId}`] },
  });
  return list.map((c) => ({ job: c.Labels["airlock.job"] ?? "", state: c.State }));
}

async function until(what: string, test: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("SIGTERM: running jobs get the grace period, the rest are cancelled, nothing is left", async () => {
  const gw = await spawnMain({
    env: {
      AIRLOCK_CONCURRENCY: "2",
      AIRLOCK_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      AIRLOCK_POOL_MIN: "1",
      AIRLOCK_POOL_MAX: "2",
    },
  });
  main = gw;
  const exec = (body: unknown) =>
    fetch(`http://127.0.0.1:${gw.port}/v1/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as Answer,
    }));

  // Parked containers exist before the signal, so draining the pool is part of the test.
  await until("a parked container", async () =>
    (await containersOf(gw.instanceId)).some(
      (c) => c.job.startsWith("park-") && c.state === "running",
    ),
  );
  // The gateway's own gauges say when each job runs or waits (a job may run in
  // a parked container, so container labels cannot tell jobs from the pool).
  const gauge = async (name: string) => {
    const res = await fetch(`http://127.0.0.1:${gw.port}/metrics`, {
      headers: { authorization: `Bearer ${gw.key}` },
    });
    return metricValue(parseMetrics(await res.text()), name);
  };
  const long = exec({ profile: "shell", command: "sleep 600", limits: { timeoutMs: 300_000 } });
  await until("the long job running", async () => (await gauge("airlock_jobs_running")) === 1);
  const short = exec({ profile: "shell", command: "sleep 1.5; echo finished" });
  await until("both jobs running", async () => (await gauge("airlock_jobs_running")) === 2);
  // concurrency 2: the third waits in the queue.
  const queued = exec({ profile: "shell", command: "echo never" });
  await until("a queued job", async () => (await gauge("airlock_queue_depth")) === 1);

  const signalledAt = Date.now();
  gw.child.kill("SIGTERM");
  const queuedAnswer = await queued;
  const refusedAfter = await fetch(`http://127.0.0.1:${gw.port}/healthz`).then(
    (r) => `HTTP ${r.status}`,
    () => "refused",
  );
  const shortAnswer = await short;
  const longAnswer = await long;
  const longTook = Date.now() - signalledAt;
  const code = await gw.exited;

  expect(queuedAnswer.status).toBe(503);
  expect(queuedAnswer.body.error).toMatchObject({ code: "shutting_down" });
  expect(queuedAnswer.body.error?.message).toContain("before this job left the queue");
  expect(refusedAfter).toBe("refused");
  expect(shortAnswer.status).toBe(200);
  expect(shortAnswer.body).toMatchObject({ status: "ok", stdout: "finished\n" });
  expect(longAnswer.status).toBe(503);
  expect(longAnswer.body.error).toMatchObject({ code: "shutting_down" });
  expect(longAnswer.body.error?.message).toContain("after its grace period");
  // Killed once the grace period was over, not before; not long after either.
  expect(longTook).toBeGreaterThanOrEqual(GRACE_MS - 100);
  expect(longTook).toBeLessThan(GRACE_MS + 10_000);
  expect(code).toBe(0);
  expect(gw.output()).toMatch(/"finished":1,"cancelled":2.*stopped cleanly/);
  expect(await gw.leftovers()).toEqual({ containers: [], volumes: [] });
});
