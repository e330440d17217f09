// Operations without Docker: the graceful stop, the metering wrappers, the
// /metrics route and its key and the request log (the socket proxy's rules:
// socket-proxy.test.ts).
import { Writable } from "node:stream";
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../../api/app.ts";
import { hashKey, loadConfig } from "../../api/config.ts";
import { createMetrics } from "../../api/metrics.ts";
import { createRequestScope, requestIdMixin } from "../../api/request-log.ts";
import { AirlockError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { Executor, ExecutorRunOptions } from "../../executor/executor.ts";
import { meterClient } from "../../executor/metered-client.ts";
import { meterExecutor } from "../../executor/metered-executor.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import { stoppable } from "../../executor/shutdown.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { loadProfiles } from "../../policies/load.ts";
import { resolveJob } from "../../policies/resolve.ts";
import { FakeExecutor, okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const profiles = loadProfiles();
const job = (tenant = "a"): Job =>
  resolveJob(profiles, { profile: "shell", command: ["true"] }, tenant) as Job;

/** An executor whose jobs run until released or aborted; `slots` of them run, the rest wait. */
function controllable(slots: number) {
  let running = 0;
  const waiters: (() => void)[] = [];
  const release: (() => void)[] = [];
  const executor: Executor = {
    async run(j, options: ExecutorRunOptions = {}) {
      if (running >= slots) {
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          options.signal?.addEventListener("abort", () =>
            reject(new JobCancelledError("dropped from the queue")),
          );
        });
      }
      running++;
      options.onStart?.(j);
      try {
        return await new Promise<ExecResult>((resolve, reject) => {
          release.push(() => resolve(okResult(j.id, "done")));
          options.signal?.addEventListener("abort", () => reject(new JobCancelledError("killed")));
        });
      } finally {
        running--;
        waiters.shift()?.();
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return waiters.length;
    },
    reap: async () => ({ containers: 0, volumes: 0 }),
    drain: vi.fn(async () => {}),
  };
  return { executor, release };
}

describe("graceful stop", () => {
  it("lets running jobs finish within the grace period, cancels the queued one at once", async () => {
    const { executor, release } = controllable(1);
    const s = stoppable(executor);
    const first = s.run(job());
    const queued = s.run(job()).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 10));
    const stopped = s.stop(5000);
    const err = (await queued) as AirlockError;
    expect(err).toBeInstanceOf(AirlockError);
    expect(err.code).toBe("shutting_down");
    expect(err.status).toBe(503);
    expect(err.message).toContain("before this job left the queue");
    release[0]?.();
    expect((await first).stdout).toBe("done");
    expect(await stopped).toEqual({ finished: 1, cancelled: 1 });
    expect(executor.drain).toHaveBeenCalledOnce();
  });

  it("kills what still runs after the grace period, and admits nothing new", async () => {
    const { executor } = controllable(2);
    const s = stoppable(executor);
    const long = s.run(job()).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 10));
    const t0 = Date.now();
    const report = await s.stop(100);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
    expect(report).toEqual({ finished: 0, cancelled: 1 });
    expect(await long).toMatchObject({ code: "shutting_down" });
    expect(((await long) as Error).message).toContain("after its grace period");
    await expect(s.run(job())).rejects.toMatchObject({ code: "shutting_down" });
  });

  it("leaves a client's own cancellation alone", async () => {
    const { executor } = controllable(1);
    const s = stoppable(executor);
    const client = new AbortController();
    const run = s.run(job(), { signal: client.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 10));
    client.abort();
    expect(await run).toBeInstanceOf(JobCancelledError);
  });
});

describe("metering wrappers", () => {
  it("counts jobs by profile, tenant and status, errors by their code", async () => {
    const metrics = createMetrics(new Registry());
    const fake = new FakeExecutor();
    const metered = meterExecutor(fake, metrics);
    await metered.run(job("a"));
    fake.behaviour = async () => {
      throw new AirlockError("busy", "full");
    };
    await expect(metered.run(job("b"))).rejects.toThrow("full");
    const text = await metrics.registry.metrics();
    expect(text).toContain('airlock_jobs_total{profile="shell",tenant="a",status="ok"} 1');
    expect(text).toContain('airlock_jobs_total{profile="shell",tenant="b",status="busy"} 1');
  });

  it("times Docker calls and counts the ones that fail, by operation", async () => {
    const metrics = createMetrics(new Registry());
    const inner = {
      create: async () => "id",
      start: async () => {
        throw Object.assign(new Error("engine said no"), { statusCode: 500 });
      },
    } as unknown as ContainerClient;
    const client = meterClient(inner, metrics);
    expect(await client.create({})).toBe("id");
    await expect(client.start("id")).rejects.toThrow("engine said no");
    const text = await metrics.registry.metrics();
    expect(text).toContain('airlock_docker_operation_seconds_count{operation="create"} 1');
    expect(text).toContain('airlock_docker_operation_seconds_count{operation="start"} 1');
    expect(text).toContain('airlock_docker_errors_total{operation="start"} 1');
    expect(text).not.toContain('airlock_docker_errors_total{operation="create"}');
  });
});

const KEY = "metrics-test-key-0123456789";

function app(
  options: { metricsPublic?: boolean; logger?: pino.Logger; executor?: FakeExecutor } = {},
) {
  const metrics = createMetrics(new Registry());
  const executor = options.executor ?? new FakeExecutor();
  metrics.watch({
    running: () => executor.running,
    waiting: () => executor.waiting,
    parked: () => ({}),
  });
  return createApp({
    executor,
    client: { ping: async () => {}, imagePresent: async () => true } as unknown as ContainerClient,
    profiles,
    keys: [{ tenant: "a", hash: hashKey(KEY) }],
    maxBodyBytes: 64 * 1024,
    logger: options.logger ?? pino({ level: "silent" }),
    workspaces: {
      store: {} as WorkspaceStore,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state: tempState().state,
    instanceId: "unit",
    metrics,
    metricsPublic: options.metricsPublic,
  });
}

describe("/metrics", () => {
  it("needs a key by default", async () => {
    const a = app();
    expect((await a.request("/metrics")).status).toBe(401);
    const res = await a.request("/metrics", { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("airlock_jobs_running 0");
  });

  it("answers without a key when public", async () => {
    expect((await app({ metricsPublic: true }).request("/metrics")).status).toBe(200);
  });

  it("counts error answers by code", async () => {
    const a = app({ metricsPublic: true });
    await a.request("/v1/profiles");
    await a.request("/nowhere");
    const text = await (await a.request("/metrics")).text();
    expect(text).toContain('airlock_http_errors_total{code="unauthorized"} 1');
    expect(text).toContain('airlock_http_errors_total{code="not_found"} 1');
  });
});

describe("request log", () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    return { lines, sink };
  }

  it("writes one access line per request with its request id, tenant and status", async () => {
    const { lines, sink } = capture();
    const a = app({ logger: pino({ level: "info" }, sink) });
    const res = await a.request("/v1/profiles", {
      headers: { authorization: `Bearer ${KEY}`, "x-request-id": "req-123" },
    });
    expect(res.headers.get("x-request-id")).toBe("req-123");
    await new Promise((r) => setImmediate(r));
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: "request",
        requestId: "req-123",
        method: "GET",
        path: "/v1/profiles",
        status: 200,
        tenant: "a",
      }),
    );
  });

  it("writes a streamed job's access line when the job ends", async () => {
    const { lines, sink } = capture();
    const executor = new FakeExecutor();
    let finish: (() => void) | undefined;
    executor.behaviour = async (job, options) => {
      options.onOutput?.("stdout", Buffer.from("tick\n"));
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return okResult(job.id, "tick\n");
    };
    const a = app({ logger: pino({ level: "info" }, sink), executor });
    const res = await a.request("/v1/exec", {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEY}`,
        "content-type": "application/json",
        accept: "text/event-stream",
      },
      body: JSON.stringify({ profile: "shell", command: "echo tick" }),
    });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => l["msg"] === "request")).toEqual([]);
    finish?.();
    await res.text();
    await new Promise((r) => setImmediate(r));
    const access = lines.filter((l) => l["msg"] === "request");
    expect(access).toMatchObject([{ path: "/v1/exec", status: 200 }]);
    expect(access[0]?.["durationMs"]).toBeGreaterThanOrEqual(45);
  });

  it("puts the request id on lines logged by the root logger within the request", async () => {
    const { lines, sink } = capture();
    const scope = createRequestScope();
    const logger = pino({ level: "info", mixin: requestIdMixin(scope) }, sink);
    await scope.run("req-456", async () => {
      await new Promise((r) => setTimeout(r, 1));
      logger.warn("deep inside");
      logger.child({ requestId: "req-456" }).info("from the child");
    });
    logger.info("outside");
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => [l["msg"], l["requestId"]])).toEqual([
      ["deep inside", "req-456"],
      ["from the child", "req-456"],
      ["outside", undefined],
    ]);
  });
});

describe("operations settings", () => {
  const base = { AIRLOCK_API_KEYS: "t:settings-key-0123456789" };
  it("defaults: /metrics needs a key, 30 s of grace, plain HTTP", () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({ metricsPublic: false, shutdownGraceMs: 30_000, tls: undefined });
  });
  it("parses them", () => {
    const config = loadConfig({
      ...base,
      AIRLOCK_METRICS_PUBLIC: "true",
      AIRLOCK_SHUTDOWN_GRACE_MS: "1500",
    });
    expect(config).toMatchObject({ metricsPublic: true, shutdownGraceMs: 1500 });
  });
  it.each([
    [{ AIRLOCK_METRICS_PUBLIC: "yes" }, "AIRLOCK_METRICS_PUBLIC"],
    [{ AIRLOCK_SHUTDOWN_GRACE_MS: "-1" }, "AIRLOCK_SHUTDOWN_GRACE_MS"],
    [
      { AIRLOCK_TLS_CERT: "/nonexistent.crt", AIRLOCK_TLS_KEY: "/nonexistent.key" },
      "AIRLOCK_TLS_CERT",
    ],
  ])("refuses %j naming the variable", (env, name) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(name);
  });
});
