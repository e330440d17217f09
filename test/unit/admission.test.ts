// Admission through the HTTP layer (app.request, a fake executor, a fake
// engine for the stop markers, a fake workspace store): status codes,
// messages, Retry-After, the approval flow, the stop, and one audit line per
// operation. admit(plan) on its own: admit.test.ts.
import { type Logger, pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { createAccess } from "../../api/admission/access.ts";
import { createApp } from "../../api/app.ts";
import { hashKey } from "../../api/config.ts";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ContainerClient, LabelledObject } from "../../executor/docker.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { PolicyHolder, parsePolicy } from "../../policies/access/load.ts";
import { loadProfiles } from "../../policies/load.ts";
import { FAKE_WORKSPACE, GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { FakeExecutor, okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const KEYS = {
  agent: "agent-key-0123456789",
  reader: "reader-key-0123456789",
  admin: "admin-key-0123456789",
  net: "net-key-0123456789",
  gated: "gated-key-0123456789",
  pyonly: "pyonly-key-0123456789",
};
const h = (k: string) => `sha256:${hashKey(k).toString("hex")}`;

const POLICY = {
  tenants: {
    acme: {
      rateLimits: { exec: { perMinute: 3 } },
      quotas: { maxJobSeconds: 5, cpuSecondsPerHour: 2 },
      keys: [
        { id: "agent", hash: h(KEYS.agent), scopes: ["exec", "workspaces"] },
        { id: "reader", hash: h(KEYS.reader), scopes: ["files.read"], profiles: ["python"] },
        { id: "net", hash: h(KEYS.net), scopes: ["exec", "network"] },
        {
          id: "pyonly",
          hash: h(KEYS.pyonly),
          scopes: ["workspaces", "files.read"],
          profiles: ["python"],
        },
      ],
    },
    gate: {
      requireApproval: { network: true, jobsOverSeconds: 3 },
      keys: [{ id: "gated", hash: h(KEYS.gated), scopes: ["exec", "network"] }],
    },
    ops: { keys: [{ id: "root", hash: h(KEYS.admin), scopes: ["admin"] }] },
  },
};

/** Workspaces in a map, enough of the store for the routes that only look one up or remove it. */
function fakeWorkspaces() {
  const owned = new Map<string, { tenant: string; profile: string }>();
  const removed: string[] = [];
  const missing = (id: string) =>
    new AirlockError("not_found", `workspace ${JSON.stringify(id)} does not exist`);
  const find = (tenant: string, id: string) => {
    const ws = owned.get(id);
    if (ws === undefined || ws.tenant !== tenant) throw missing(id);
    return ws;
  };
  const store = {
    get: async (tenant: string, id: string) => {
      const ws = find(tenant, id);
      const at = new Date(0).toISOString();
      return { id, profile: ws.profile, createdAt: at, lastUsedAt: at, expiresAt: at };
    },
    remove: async (tenant: string, id: string) => {
      find(tenant, id);
      owned.delete(id);
      removed.push(id);
    },
  } as unknown as WorkspaceStore;
  return { store, owned, removed };
}

function setup(policy: unknown = POLICY, logger: Logger = pino({ level: "silent" })) {
  const base = loadProfiles();
  const shell = base.get("shell") as LoadedProfile;
  const profiles = new Map(base);
  profiles.set("web", { ...shell, name: "web", network: "bridge" });
  const volumes = new Map<string, Record<string, string>>();
  const client = {
    ping: async () => {},
    imagePresent: async () => true,
    createVolume: async (name: string, labels: Record<string, string>) => {
      volumes.set(name, labels);
    },
    removeVolume: async (name: string) => {
      volumes.delete(name);
    },
    listVolumes: async (label: string): Promise<LabelledObject[]> =>
      [...volumes]
        .filter(([, l]) => l[label] !== undefined)
        .map(([id, labels]) => ({ id, labels })),
  } as unknown as ContainerClient;
  let text = JSON.stringify(policy);
  const holder = new PolicyHolder(parsePolicy("p.json", text), () => parsePolicy("p.json", text));
  const lines: string[] = [];
  const state = tempState().state;
  const access = createAccess({
    policy: holder,
    client,
    approvals: state.approvals,
    instanceId: "unit",
    auditWrite: (l) => lines.push(l),
  });
  const executor = new FakeExecutor();
  const workspaces = fakeWorkspaces();
  const app = createApp({
    executor,
    client,
    profiles,
    access,
    maxBodyBytes: 1024 * 1024,
    logger,
    workspaces: {
      store: workspaces.store,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state,
    instanceId: "unit",
  });
  const call = (key: string, method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const audit = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    app,
    call,
    executor,
    access,
    state,
    audit,
    lines,
    workspaces,
    setPolicy: (p: string) => {
      text = p;
    },
  };
}

const EXEC = { profile: "shell", command: ["echo", "hi"] };

describe("admission through the routes", () => {
  it("403 names the missing scope; a key without network cannot use a networked profile", async () => {
    const { call, executor } = setup();
    const r1 = await call(KEYS.reader, "POST", "/v1/exec", EXEC);
    expect(r1.status).toBe(403);
    expect(await r1.json()).toMatchObject({
      error: {
        code: "forbidden",
        message: "this key lacks scope exec",
        details: { missingScopes: ["exec"] },
      },
    });
    const r2 = await call(KEYS.agent, "POST", "/v1/exec", { ...EXEC, profile: "web" });
    expect(r2.status).toBe(403);
    expect(await r2.json()).toMatchObject({
      error: { code: "forbidden", message: expect.stringContaining("lacks scope network") },
    });
    const r3 = await call(KEYS.net, "POST", "/v1/exec", { ...EXEC, profile: "web" });
    expect(r3.status).toBe(200);
    expect(executor.jobs.map((j) => j.profile.name)).toEqual(["web"]);
  });

  it("checks a workspace's profile on GET and DELETE too: a key that may not use it cannot", async () => {
    const { call, workspaces } = setup();
    workspaces.owned.set("ws_shell", { tenant: "acme", profile: "shell" });
    workspaces.owned.set("ws_python", { tenant: "acme", profile: "python" });
    for (const method of ["GET", "DELETE"]) {
      const r = await call(KEYS.pyonly, method, "/v1/workspaces/ws_shell");
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({
        error: { code: "forbidden", message: "this key may not use profile shell" },
      });
    }
    expect(workspaces.removed).toEqual([]);
    expect((await call(KEYS.pyonly, "GET", "/v1/workspaces/ws_python")).status).toBe(200);
    expect((await call(KEYS.agent, "GET", "/v1/workspaces/ws_shell")).status).toBe(200);
    expect((await call(KEYS.pyonly, "DELETE", "/v1/workspaces/ws_python")).status).toBe(204);
    expect(workspaces.removed).toEqual(["ws_python"]);
  });

  it("lists only the profiles a key may use", async () => {
    const { call } = setup();
    const names = async (key: string) =>
      (
        (await (await call(key, "GET", "/v1/profiles")).json()) as { profiles: { name: string }[] }
      ).profiles
        .map((p) => p.name)
        .sort();
    expect(await names(KEYS.reader)).toEqual(["python"]);
    expect(await names(KEYS.agent)).not.toContain("web");
    expect(await names(KEYS.net)).toContain("web");
  });

  it("a rate limit of 3/min gives exactly 3 successes, then 429 with Retry-After naming the limit", async () => {
    const { call } = setup();
    for (let i = 0; i < 3; i++)
      expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(200);
    const r = await call(KEYS.agent, "POST", "/v1/exec", EXEC);
    expect(r.status).toBe(429);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(55);
    expect(await r.json()).toMatchObject({
      error: { code: "rate_limited", details: { scope: "exec", window: "perMinute", limit: 3 } },
    });
  });

  it("refuses a timeout above maxJobSeconds and lowers the default to it", async () => {
    const { call, executor } = setup();
    const r = await call(KEYS.agent, "POST", "/v1/exec", { ...EXEC, limits: { timeoutMs: 6000 } });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({
      error: { details: { field: "limits.timeoutMs", quota: "maxJobSeconds" } },
    });
    expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(200);
    expect(executor.jobs[0]?.limits.timeoutMs).toBe(5000);
  });

  it("stops a tenant whose CPU-seconds reach the hourly budget", async () => {
    const { call, executor } = setup();
    executor.behaviour = async (job) => ({
      ...okResult(job.id),
      usage: { cpuMs: 2500, memoryPeakBytes: 1 },
    });
    expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(200);
    const r = await call(KEYS.agent, "POST", "/v1/exec", EXEC);
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).not.toBeNull();
    expect(await r.json()).toMatchObject({
      error: { code: "quota_exceeded", details: { limit: "cpuSecondsPerHour", max: 2, used: 2.5 } },
    });
  });

  it("an approval-gated job answers 202, runs once after approval, and its result is served to the poller", async () => {
    const { call, executor } = setup();
    const r = await call(KEYS.gated, "POST", "/v1/exec", {
      ...EXEC,
      profile: "web",
      limits: { timeoutMs: 2000 },
    });
    expect(r.status).toBe(202);
    const { approvalId, status, expiresAt, reasons } = (await r.json()) as Record<string, unknown>;
    expect(status).toBe("pending");
    expect(reasons).toEqual(["network"]);
    expect(typeof expiresAt).toBe("string");
    expect(executor.jobs).toHaveLength(0);
    // Only admins list and decide; the requesting tenant may read its own.
    expect((await call(KEYS.gated, "GET", "/v1/approvals")).status).toBe(403);
    expect((await call(KEYS.agent, "GET", `/v1/approvals/${approvalId}`)).status).toBe(404);
    const pending = (await (await call(KEYS.admin, "GET", "/v1/approvals")).json()) as {
      approvals: { id: string }[];
    };
    expect(pending.approvals.map((a) => a.id)).toEqual([approvalId]);
    const [a1, a2] = await Promise.all([
      call(KEYS.admin, "POST", `/v1/approvals/${approvalId}/approve`),
      call(KEYS.admin, "POST", `/v1/approvals/${approvalId}/approve`),
    ]);
    expect([a1.status, a2.status]).toEqual([200, 200]);
    const polled = (await (
      await call(KEYS.gated, "GET", `/v1/approvals/${approvalId}?wait=5`)
    ).json()) as {
      status: string;
      result: { stdout: string };
    };
    expect(polled.status).toBe("done");
    expect(polled.result.stdout).toBe("hi\n");
    expect(executor.jobs).toHaveLength(1);
  });

  it("retries an approved job's outcome the store cannot write, then logs it as lost, never runs it twice", async () => {
    const logged: Record<string, unknown>[] = [];
    const logger = pino({ level: "error" }, { write: (l: string) => logged.push(JSON.parse(l)) });
    const { call, executor, state } = setup(POLICY, logger);
    const r = await call(KEYS.gated, "POST", "/v1/exec", {
      ...EXEC,
      profile: "web",
      limits: { timeoutMs: 2000 },
    });
    const { approvalId } = (await r.json()) as { approvalId: string };
    const finish = vi
      .spyOn(state.approvals, "finish")
      .mockRejectedValue(new Error("database or disk is full"));
    expect((await call(KEYS.admin, "POST", `/v1/approvals/${approvalId}/approve`)).status).toBe(
      200,
    );
    await vi.waitFor(() => expect(logged).toHaveLength(1), { timeout: 5000, interval: 50 });
    expect(finish).toHaveBeenCalledTimes(4);
    expect(executor.jobs).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      approvalId,
      msg: "an approved job's outcome was lost",
      err: { message: expect.stringContaining(`approval ${approvalId}: its job ran, but`) },
    });
  });

  it("a denied job never runs; a job under the thresholds needs no approval", async () => {
    const { call, executor } = setup();
    const r = await call(KEYS.gated, "POST", "/v1/exec", { ...EXEC, limits: { timeoutMs: 4000 } });
    const { approvalId } = (await r.json()) as { approvalId: string };
    expect((await call(KEYS.admin, "POST", `/v1/approvals/${approvalId}/deny`)).status).toBe(200);
    const view = (await (await call(KEYS.gated, "GET", `/v1/approvals/${approvalId}`)).json()) as {
      status: string;
    };
    expect(view.status).toBe("denied");
    expect((await call(KEYS.admin, "POST", `/v1/approvals/${approvalId}/approve`)).status).toBe(
      200,
    );
    expect(executor.jobs).toHaveLength(0);
    expect(
      (await call(KEYS.gated, "POST", "/v1/exec", { ...EXEC, limits: { timeoutMs: 3000 } })).status,
    ).toBe(200);
  });

  it("an emergency stop answers 423 until resumed; only admins stop", async () => {
    const { call } = setup();
    expect((await call(KEYS.agent, "POST", "/v1/admin/stop", { tenant: "acme" })).status).toBe(403);
    const s = await call(KEYS.admin, "POST", "/v1/admin/stop", { tenant: "acme" });
    expect(s.status).toBe(200);
    expect(await s.json()).toMatchObject({ tenants: [{ tenant: "acme" }] });
    const r = await call(KEYS.agent, "POST", "/v1/exec", EXEC);
    expect(r.status).toBe(423);
    expect(await r.json()).toMatchObject({ error: { code: "stopped" } });
    // What needs no scope still answers: the profiles a key may use.
    expect((await call(KEYS.agent, "GET", "/v1/profiles")).status).toBe(200);
    const other = { ...EXEC, limits: { timeoutMs: 2000 } };
    expect((await call(KEYS.gated, "POST", "/v1/exec", other)).status).toBe(200);
    expect(await (await call(KEYS.admin, "GET", "/v1/admin/stop")).json()).toMatchObject({
      all: null,
    });
    await call(KEYS.admin, "POST", "/v1/admin/resume", { tenant: "acme" });
    expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(200);
    await call(KEYS.admin, "POST", "/v1/admin/stop");
    expect((await call(KEYS.gated, "POST", "/v1/exec", other)).status).toBe(423);
    // The admin routes still answer, or nobody could resume.
    expect((await call(KEYS.admin, "POST", "/v1/admin/resume")).status).toBe(200);
    expect((await call(KEYS.gated, "POST", "/v1/exec", other)).status).toBe(200);
  });

  it("a stop's body counts whatever its type says; an empty one, even typed JSON, is everything", async () => {
    const { app } = setup();
    const stop = (body: string, type?: string) =>
      app.request("/v1/admin/stop", {
        method: "POST",
        headers: {
          authorization: `Bearer ${KEYS.admin}`,
          ...(type === undefined ? {} : { "content-type": type }),
        },
        body,
      });
    // What `curl -d '{"tenant":"acme"}'` sends: a form type, a JSON body.
    const form = await stop('{"tenant":"acme"}', "application/x-www-form-urlencoded");
    expect(await form.json()).toMatchObject({ all: null, tenants: [{ tenant: "acme" }] });
    const bad = await stop('{"tenant":"no spaces"}', "text/plain");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      error: {
        code: "invalid_request",
        message: expect.stringMatching(/^tenant: must be a tenant/),
      },
    });
    expect((await stop("{ nope", "text/plain")).status).toBe(400);
    const all = await stop("", "application/json");
    expect(await all.json()).toMatchObject({ all: { since: expect.any(String) } });
  });

  it("a stop turns the running job's cancellation into 423 stopped and frees its quota slot", async () => {
    const { call, executor, access } = setup({
      tenants: {
        acme: {
          quotas: { concurrentJobs: 1 },
          keys: [{ id: "agent", hash: h(KEYS.agent), scopes: ["exec"] }],
        },
        ops: POLICY.tenants.ops,
      },
    });
    let started = (): void => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    executor.behaviour = (job, options) =>
      new Promise((resolve, reject) => {
        started();
        options.signal?.addEventListener("abort", () =>
          reject(new JobCancelledError("the client went away; the job was killed")),
        );
        setTimeout(() => resolve(okResult(job.id)), 10_000).unref();
      });
    const job = call(KEYS.agent, "POST", "/v1/exec", EXEC);
    await running;
    const second = await call(KEYS.agent, "POST", "/v1/exec", EXEC);
    expect(second.status).toBe(429);
    expect(await second.json()).toMatchObject({
      error: { code: "quota_exceeded", details: { limit: "concurrentJobs", max: 1 } },
    });
    await call(KEYS.admin, "POST", "/v1/admin/stop", { tenant: "acme" });
    const res = await job;
    expect(res.status).toBe(423);
    expect(await res.json()).toMatchObject({
      error: { code: "stopped", details: { cancelled: true } },
    });
    expect((await access.deps.quotas.used("acme")).running).toBe(0);
  });

  it("writes a streamed job's audit line when the job ends, with its status and exit code", async () => {
    const { app, executor, audit } = setup();
    let finish: (() => void) | undefined;
    executor.behaviour = async (job, options) => {
      options.onOutput?.("stdout", Buffer.from("partial\n"));
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return { ...okResult(job.id, "partial\n"), status: "error", exitCode: 3 };
    };
    const res = await app.request("/v1/exec", {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEYS.agent}`,
        "content-type": "application/json",
        accept: "text/event-stream",
      },
      body: JSON.stringify(EXEC),
    });
    expect(res.status).toBe(200);
    // The stream is open and the job still running: no line yet.
    await new Promise((r) => setTimeout(r, 20));
    expect(audit().filter((r) => r["op"] === "exec")).toEqual([]);
    finish?.();
    expect(await res.text()).toContain("event: result");
    await new Promise((r) => setTimeout(r, 20));
    expect(audit().filter((r) => r["op"] === "exec")).toMatchObject([
      { status: "error", exitCode: 3, httpStatus: 200, tenant: "acme" },
    ]);
  });

  it("lists an admitted job as queued, then running with its container's limits, until it ends", async () => {
    const { call, executor } = setup();
    let leaveQueue = () => {};
    let finish = () => {};
    executor.behaviour = async (job, options) => {
      await new Promise<void>((resolve) => {
        leaveQueue = resolve;
      });
      options.onStart?.(job);
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return okResult(job.id);
    };
    const jobs = async () =>
      (await (await call(KEYS.admin, "GET", "/v1/admin/jobs")).json()) as {
        jobs: Record<string, unknown>[];
        queue: { queuedByTenant: Record<string, number> };
      };
    const pending = call(KEYS.agent, "POST", "/v1/exec", { ...EXEC, limits: { memoryMb: 64 } });
    await vi.waitFor(() => expect(executor.jobs).toHaveLength(1));
    const queued = await jobs();
    expect(queued.jobs).toEqual([
      expect.objectContaining({
        tenant: "acme",
        keyId: "agent",
        profile: "shell",
        state: "queued",
        limits: { timeoutMs: 5000 },
      }),
    ]);
    expect(queued.queue.queuedByTenant).toEqual({ acme: 1 });
    leaveQueue();
    await vi.waitFor(async () => expect((await jobs()).jobs[0]?.["state"]).toBe("running"));
    const running = (await jobs()).jobs[0];
    expect(running).toMatchObject({
      jobId: executor.jobs[0]?.id,
      limits: { timeoutMs: 5000, memoryMb: 64, cpus: expect.any(Number) },
    });
    expect((await jobs()).queue.queuedByTenant).toEqual({});
    // Only admins see it.
    expect((await call(KEYS.agent, "GET", "/v1/admin/jobs")).status).toBe(403);
    finish();
    expect((await pending).status).toBe(200);
    expect((await jobs()).jobs).toEqual([]);
  });

  it("shows each tenant's quotas next to its usage", async () => {
    const { call } = setup();
    const usage = (await (await call(KEYS.admin, "GET", "/v1/admin/usage")).json()) as {
      tenants: { tenant: string; quotas: Record<string, number> }[];
    };
    expect(usage.tenants.find((t) => t.tenant === "acme")).toMatchObject({
      running: 0,
      quotas: { maxJobSeconds: 5, cpuSecondsPerHour: 2 },
    });
    expect(usage.tenants.find((t) => t.tenant === "ops")?.quotas).toEqual({});
  });

  it("audits a Piston call's inner /v1 exec under the caller's request id", async () => {
    const { app, audit } = setup();
    const res = await app.request("/api/v2/execute", {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEYS.agent}`,
        "content-type": "application/json",
        "x-request-id": "trace-1234",
      },
      body: JSON.stringify({ language: "bash", version: "*", files: [{ content: "echo hi" }] }),
    });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    expect(audit().filter((r) => r["op"] === "exec")).toMatchObject([
      { requestId: "trace-1234", tenant: "acme", status: "ok" },
    ]);
  });

  it("writes one audit line per operation, without the key, env values or output", async () => {
    const { call, audit, lines } = setup();
    await call(KEYS.agent, "POST", "/v1/exec", { ...EXEC, env: { TOKEN: "sup3r-s3cret-value" } });
    await call(KEYS.reader, "POST", "/v1/exec", EXEC);
    await call("wrong-key-0123456789", "POST", "/v1/exec", EXEC);
    // Lines go out in the event loop's turn after each answer.
    await new Promise((resolve) => setImmediate(resolve));
    const records = audit();
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({
      op: "exec",
      tenant: "acme",
      keyId: "agent",
      scope: "exec",
      profile: "shell",
      status: "ok",
      httpStatus: 200,
      exitCode: 0,
      bytesOut: 3,
      commandDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    expect(records[1]).toMatchObject({ keyId: "reader", status: "forbidden", httpStatus: 403 });
    expect(records[2]).toMatchObject({ tenant: null, status: "unauthorized", httpStatus: 401 });
    const all = lines.join("");
    for (const secret of ["sup3r-s3cret-value", KEYS.agent, "hi\\n", "echo"])
      expect(all).not.toContain(secret);
    const q = (await (
      await call(KEYS.admin, "GET", "/v1/audit?tenant=acme&status=forbidden")
    ).json()) as {
      records: unknown[];
    };
    expect(q.records).toHaveLength(1);
    expect((await call(KEYS.admin, "GET", "/v1/audit?limit=0")).status).toBe(400);
  });

  it("reloads the policy on an admin call; a bad file keeps the old one and says why", async () => {
    const { call, setPolicy } = setup();
    setPolicy("{not json");
    const bad = await call(KEYS.admin, "POST", "/v1/admin/policy/reload");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      error: { message: expect.stringContaining("p.json: not valid JSON") },
    });
    expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(200);
    setPolicy(JSON.stringify({ tenants: { ops: POLICY.tenants.ops } }));
    expect((await call(KEYS.admin, "POST", "/v1/admin/policy/reload")).status).toBe(200);
    expect((await call(KEYS.agent, "POST", "/v1/exec", EXEC)).status).toBe(401);
  });
});

describe("reading an approval (GET /v1/approvals/:id)", () => {
  const SLOW = { command: ["sleep", "1"], limits: { timeoutMs: 9000 } };
  function gated(rateLimits: unknown = {}) {
    const { app, access } = gatedApp({ rateLimits });
    const call = (key: string, method: string, path: string, body?: unknown) =>
      app.request(path, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const hold = async (path: string, body: unknown) => {
      const r = await call(GATED_KEYS.agent, "POST", path, body);
      expect(r.status).toBe(202);
      return ((await r.json()) as { approvalId: string }).approvalId;
    };
    return { call, hold, access };
  }

  it("needs the scopes the held job needed, or admin: 403 names what a key of the same tenant lacks", async () => {
    const { call, hold } = gated();
    const exec = await hold("/v1/exec", { profile: "shell", ...SLOW });
    const ws = await hold(`/v1/workspaces/${FAKE_WORKSPACE}/exec`, SLOW);
    const read = (key: string, id: string) => call(key, "GET", `/v1/approvals/${id}`);

    const reader = await read(GATED_KEYS.reader, exec);
    expect(reader.status).toBe(403);
    expect(await reader.json()).toMatchObject({
      error: {
        code: "forbidden",
        message: "this key lacks scope exec",
        details: { missingScopes: ["exec"] },
      },
    });
    // exec alone reads a plain exec's approval, not a workspace exec's.
    expect((await read(GATED_KEYS.runner, exec)).status).toBe(200);
    const runner = await read(GATED_KEYS.runner, ws);
    expect(runner.status).toBe(403);
    expect(await runner.json()).toMatchObject({
      error: {
        message: "this key lacks scope workspaces",
        details: { missingScopes: ["workspaces"] },
      },
    });
    const view = (await (await read(GATED_KEYS.agent, ws)).json()) as Record<string, unknown>;
    expect(view).toMatchObject({ status: "pending", scopes: ["exec", "workspaces"] });
    // An admin of another tenant reads any.
    expect((await read(GATED_KEYS.admin, ws)).status).toBe(200);
  });

  it("counts against the key's rate limit of those scopes (429 with Retry-After), an admin's against admin", async () => {
    const { call, hold } = gated({ exec: { perMinute: 3 } });
    const id = await hold("/v1/exec", { profile: "shell", ...SLOW });
    const read = (key: string) => call(key, "GET", `/v1/approvals/${id}`);
    expect((await read(GATED_KEYS.agent)).status).toBe(200);
    expect((await read(GATED_KEYS.agent)).status).toBe(200);
    const limited = await read(GATED_KEYS.agent);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({
      error: { code: "rate_limited", details: { scope: "exec", window: "perMinute", limit: 3 } },
    });
    // The key's exec budget is the same one its jobs use.
    const exec = await call(GATED_KEYS.agent, "POST", "/v1/exec", {
      profile: "shell",
      command: "x",
    });
    expect(exec.status).toBe(429);
    // Another key of the tenant has its own count; the admin's reads count against admin.
    expect((await read(GATED_KEYS.runner)).status).toBe(200);
    expect((await read(GATED_KEYS.admin)).status).toBe(200);
  });

  it("answers during an emergency stop, showing the approval cancelled", async () => {
    const { call, hold } = gated();
    const id = await hold("/v1/exec", { profile: "shell", ...SLOW });
    expect((await call(GATED_KEYS.admin, "POST", "/v1/admin/stop", { tenant: "a" })).status).toBe(
      200,
    );
    const r = await call(GATED_KEYS.agent, "GET", `/v1/approvals/${id}`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: "cancelled" });
    await call(GATED_KEYS.admin, "POST", "/v1/admin/resume");
  });
});
