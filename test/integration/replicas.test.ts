// Several gateways as one service (DESIGN.md "Replicas"), on real parts: a
// PostgreSQL database of this file's own (test/support/postgres.ts), the
// machine's Docker engine (A) and a second engine started here (B, its own
// socket, data root and exec root; test/support/private-engine.ts), and three
// gateway processes (main.ts): two on A, one on B, all on one store. Each case
// sends its requests to different gateways and judges the service as one.
// The same single-gateway cases run on one gateway with the embedded store.
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadProfiles } from "../../policies/load.ts";
import { keyHash } from "../support/gateway.ts";
import { freePort, type MainProcess, spawnMain } from "../support/main-process.ts";
import { postgresMissing, type TestDatabase, testDatabase } from "../support/postgres.ts";
import { PrivateEngine } from "../support/private-engine.ts";

const KEY = {
  agent: `agent-key-${randomUUID()}`,
  limited: `limited-key-${randomUUID()}`,
  gated: `gated-key-${randomUUID()}`,
  single: `single-key-${randomUUID()}`,
  admin: `admin-key-${randomUUID()}`,
};
// Tenants of this file only: a stop of one (a marker volume on the machine's engine, for the
// embedded store) never touches another run's gateways.
const run = randomUUID().slice(0, 8);
const T = {
  single: `single-${run}`,
  agent: `agent-${run}`,
  limited: `limited-${run}`,
  gated: `gated-${run}`,
  ops: `ops-${run}`,
};
const POLICY = {
  tenants: {
    [T.agent]: {
      keys: [
        {
          id: "agent",
          hash: keyHash(KEY.agent),
          scopes: ["exec", "workspaces", "files.read", "files.write"],
        },
      ],
    },
    [T.limited]: {
      keys: [
        {
          id: "limited",
          hash: keyHash(KEY.limited),
          scopes: ["exec"],
          rateLimits: { exec: { perMinute: 3 } },
        },
      ],
    },
    [T.gated]: {
      requireApproval: { jobsOverSeconds: 20 },
      keys: [
        { id: "gated", hash: keyHash(KEY.gated), scopes: ["exec", "workspaces", "files.read"] },
      ],
    },
    [T.single]: {
      quotas: { concurrentJobs: 1 },
      keys: [{ id: "single", hash: keyHash(KEY.single), scopes: ["exec"] }],
    },
    [T.ops]: { keys: [{ id: "root", hash: keyHash(KEY.admin), scopes: ["admin"] }] },
  },
};
const HEARTBEAT_MS = 300;
const TIMEOUT_MS = 2500;

const dir = mkdtempSync(join(tmpdir(), "airlock-replicas-"));
const policyFile = join(dir, "policy.json");
writeFileSync(policyFile, JSON.stringify(POLICY));
const started: MainProcess[] = [];

afterAll(async () => {
  // AIRLOCK_TEST_LOGS=dir keeps each gateway's log there (the first thing to read after a failure).
  const logs = process.env["AIRLOCK_TEST_LOGS"];
  if (logs !== undefined) {
    mkdirSync(logs, { recursive: true });
    for (const gw of started) writeFileSync(join(logs, `${gw.instanceId}.log`), gw.output());
  }
  for (const gw of started) await gw.kill().catch(() => {});
  await removeWorkspaces();
  rmSync(dir, { recursive: true, force: true });
});

/** After a failure: this file's tenants' workspace volumes on the machine's engine (B's go with B). */
async function removeWorkspaces(): Promise<void> {
  const docker = new Dockerode();
  const mine = new Set<string>(Object.values(T));
  const volumes =
    (await docker.listVolumes({ filters: { label: ["airlock.workspace"] } })).Volumes ?? [];
  const ids = volumes
    .filter((v) => mine.has(v.Labels?.["airlock.tenant"] ?? ""))
    .map((v) => v.Labels["airlock.workspace"]);
  const touches =
    (await docker.listVolumes({ filters: { label: ["airlock.workspace.touch"] } })).Volumes ?? [];
  for (const v of [
    ...volumes.filter((v) => mine.has(v.Labels?.["airlock.tenant"] ?? "")),
    ...touches.filter((v) => ids.includes(v.Labels?.["airlock.workspace.touch"])),
  ]) {
    await docker
      .getVolume(v.Name)
      .remove({ force: true })
      .catch(() => {});
  }
}

type Call = (
  key: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<Response>;

function caller(gw: MainProcess): Call {
  return (key, method, path, body, headers = {}) => {
    const raw = Buffer.isBuffer(body);
    return fetch(`http://127.0.0.1:${gw.port}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined || raw ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: raw ? new Uint8Array(body) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
  };
}

async function json<T>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not JSON (${res.status}): ${text}`);
  }
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function newWorkspace(call: Call): Promise<string> {
  const res = await call(KEY.agent, "POST", "/v1/workspaces", { profile: "shell" });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ id: string }>(res)).id;
}

async function lines(call: Call, ws: string, path: string): Promise<number> {
  const res = await call(KEY.agent, "GET", `/v1/workspaces/${ws}/files/content?path=${path}`);
  return res.status === 404 ? 0 : (await res.text()).split("\n").filter(Boolean).length;
}

/** The cases that hold for one gateway as for several: `gw` is three callers (three gateways, or one thrice). */
function sharedCases(name: string, gws: () => Call[]) {
  describe(name, () => {
    it("an idempotent POST retried on another gateway runs once", async () => {
      const [a, b, c] = gws() as [Call, Call, Call];
      const ws = await newWorkspace(a);
      const body = { command: ["sh", "-c", "echo run >> runs.txt; wc -l < runs.txt"] };
      const key = { "idempotency-key": `k-${randomUUID()}` };
      const first = await a(KEY.agent, "POST", `/v1/workspaces/${ws}/exec`, body, key);
      expect(first.status).toBe(200);
      const retries = await Promise.all(
        [b, c].map((g) => g(KEY.agent, "POST", `/v1/workspaces/${ws}/exec`, body, key)),
      );
      for (const r of retries) {
        expect(r.status).toBe(200);
        expect(r.headers.get("idempotent-replayed")).toBe("true");
      }
      expect(await lines(c, ws, "runs.txt")).toBe(1);
      expect((await a(KEY.agent, "DELETE", `/v1/workspaces/${ws}`)).status).toBe(204);
    });

    it("a rate limit of 3 per minute holds across the gateways", async () => {
      const all = gws();
      const answers: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await (all[i % 3] as Call)(KEY.limited, "POST", "/v1/exec", {
          profile: "shell",
          command: ["true"],
        });
        answers.push(res.status);
        await res.arrayBuffer();
      }
      expect(answers).toEqual([200, 200, 200]);
      for (const g of all) {
        const res = await g(KEY.limited, "POST", "/v1/exec", {
          profile: "shell",
          command: ["true"],
        });
        expect(res.status).toBe(429);
        expect((await json<{ error: { code: string } }>(res)).error.code).toBe("rate_limited");
      }
    });

    it("a quota of one job at a time holds across the gateways", async () => {
      const [a, b, c] = gws() as [Call, Call, Call];
      const job = { profile: "shell", command: ["sleep", "30"], limits: { timeoutMs: 60_000 } };
      const res = await a(KEY.single, "POST", "/v1/exec", job, { prefer: "respond-async" });
      expect(res.status).toBe(202);
      const { id } = await json<{ id: string }>(res);
      try {
        // The 202 means admitted: the job holds its slot from then on, before
        // it even runs, so the other gateways refuse at once.
        for (const g of [b, c]) {
          const refused = await g(KEY.single, "POST", "/v1/exec", {
            profile: "shell",
            command: ["true"],
          });
          expect(refused.status).toBe(429);
          expect((await json<{ error: { code: string } }>(refused)).error.code).toBe(
            "quota_exceeded",
          );
        }
        // And the job the 202 promised runs (it never fails for want of its slot).
        await until(
          "the first job to run",
          async () =>
            json<{ status: string; error?: unknown }>(
              await a(KEY.single, "GET", `/v1/executions/${id}`),
            ),
          (e) => e.status !== "queued",
          15_000,
        ).then((e) => expect(e).toMatchObject({ status: "running" }));
      } finally {
        await c(KEY.single, "DELETE", `/v1/executions/${id}`);
      }
      // The slot comes back when the job ends.
      await until(
        "the slot to come back",
        async () =>
          (await b(KEY.single, "POST", "/v1/exec", { profile: "shell", command: ["true"] })).status,
        (s) => s === 200,
        15_000,
      );
    });

    it("an approval created on one gateway, approved on others at once, runs once", async () => {
      const [a, b, c] = gws() as [Call, Call, Call];
      const res = await a(KEY.gated, "POST", "/v1/workspaces", { profile: "shell" });
      const ws = (await json<{ id: string }>(res)).id;
      const held = await a(KEY.gated, "POST", `/v1/workspaces/${ws}/exec`, {
        command: ["sh", "-c", "echo run >> runs.txt"],
        limits: { timeoutMs: 30_000 },
      });
      expect(held.status).toBe(202);
      const { approvalId } = await json<{ approvalId: string }>(held);
      const decided = await Promise.all(
        [b, c, b].map((g) => g(KEY.admin, "POST", `/v1/approvals/${approvalId}/approve`)),
      );
      expect(decided.map((r) => r.status)).toEqual([200, 200, 200]);
      const done = await until(
        "the approved job to end",
        async () =>
          json<{ status: string }>(await a(KEY.admin, "GET", `/v1/approvals/${approvalId}`)),
        (x) => x.status === "done" || x.status === "failed",
      );
      expect(done.status).toBe("done");
      const read = await c(KEY.gated, "GET", `/v1/workspaces/${ws}/files/content?path=runs.txt`);
      expect((await read.text()).trim().split("\n")).toEqual(["run"]);
      await a(KEY.gated, "DELETE", `/v1/workspaces/${ws}`);
    });

    it("an emergency stop issued on one gateway stops jobs on all", async () => {
      const all = gws();
      const ids: string[] = [];
      for (const g of all) {
        const res = await g(
          KEY.agent,
          "POST",
          "/v1/exec",
          { profile: "shell", command: ["sleep", "40"], limits: { timeoutMs: 60_000 } },
          { prefer: "respond-async" },
        );
        expect(res.status).toBe(202);
        ids.push((await json<{ id: string }>(res)).id);
      }
      const [a, b, c] = all as [Call, Call, Call];
      await until(
        "every job to run",
        async () =>
          Promise.all(
            ids.map(
              async (id) =>
                (await json<{ status: string }>(await c(KEY.agent, "GET", `/v1/executions/${id}`)))
                  .status,
            ),
          ),
        (s) => s.every((x) => x === "running"),
      );
      const jobs = await json<{ jobs: { id: string; gateway?: string }[] }>(
        await b(KEY.admin, "GET", "/v1/admin/jobs"),
      );
      expect(jobs.jobs.length).toBeGreaterThanOrEqual(ids.length);
      expect(jobs.jobs.every((j) => typeof j.gateway === "string")).toBe(true);
      try {
        expect((await a(KEY.admin, "POST", "/v1/admin/stop", { tenant: T.agent })).status).toBe(
          200,
        );
        const ended = await until(
          "every job to be cancelled",
          async () =>
            Promise.all(
              ids.map(
                async (id) =>
                  (
                    await json<{ status: string }>(
                      await b(KEY.agent, "GET", `/v1/executions/${id}`),
                    )
                  ).status,
              ),
            ),
          (s) => s.every((x) => x !== "running" && x !== "queued"),
          15_000,
        );
        expect(ended).toEqual(ids.map(() => "cancelled"));
        await until(
          "the stop to be seen everywhere",
          async () =>
            Promise.all(
              all.map(
                async (g) =>
                  (await g(KEY.agent, "POST", "/v1/exec", { profile: "shell", command: ["true"] }))
                    .status,
              ),
            ),
          (s) => s.every((x) => x === 423),
          5000,
        );
      } finally {
        expect((await c(KEY.admin, "POST", "/v1/admin/resume", { tenant: T.agent })).status).toBe(
          200,
        );
      }
      await until(
        "the resume to be seen everywhere",
        async () =>
          Promise.all(
            all.map(
              async (g) =>
                (await g(KEY.agent, "POST", "/v1/exec", { profile: "shell", command: ["true"] }))
                  .status,
            ),
          ),
        (s) => s.every((x) => x === 200),
        5000,
      );
    });
  });
}

// ------------------------------------------------------------------ one gateway, embedded store

describe("one gateway on the embedded store", () => {
  let gw: MainProcess;
  beforeAll(async () => {
    gw = await spawnMain({ policyFile });
    started.push(gw);
  });
  afterAll(async () => {
    await gw.kill();
  });
  sharedCases("single-gateway cases", () => [caller(gw), caller(gw), caller(gw)]);
});

// ------------------------------------------------------------------ three gateways, two engines

const missing = await postgresMissing();

describe.skipIf(missing !== undefined)("three gateways, two engines, one PostgreSQL", () => {
  const engineB = new PrivateEngine("replb");
  let db: TestDatabase;
  let a1: MainProcess;
  let a2: MainProcess;
  let b: MainProcess;
  const secret = `peer-${randomUUID()}`;

  async function gateway(engine: "A" | "B", socketPath?: string, profilesDir?: string) {
    const port = await freePort();
    const gw = await spawnMain({
      port,
      policyFile,
      ...(socketPath === undefined ? {} : { socketPath }),
      env: {
        AIRLOCK_STATE_URL: db.url,
        AIRLOCK_PEER_SECRET: secret,
        AIRLOCK_ADVERTISE_URL: `http://127.0.0.1:${port}`,
        AIRLOCK_HEARTBEAT_MS: String(HEARTBEAT_MS),
        AIRLOCK_GATEWAY_TIMEOUT_MS: String(TIMEOUT_MS),
        AIRLOCK_ENGINE_ID: `engine-${engine}-${secret.slice(-8)}`,
        ...(profilesDir === undefined ? {} : { AIRLOCK_PROFILES_DIR: profilesDir }),
      },
    });
    started.push(gw);
    return gw;
  }

  beforeAll(async () => {
    db = await testDatabase("airlock_replicas");
    const shell = loadProfiles().get("shell")?.image as string;
    await engineB.start();
    await engineB.copyImages([shell]);
    // Engine B holds the shell image only: every built-in profile is pointed at it (probed at start).
    const profilesDir = join(dir, "profiles-b");
    const builtIn = join(import.meta.dirname, "..", "..", "policies", "profiles");
    mkdirSync(profilesDir, { recursive: true });
    for (const name of readdirSync(builtIn).filter((n) => n.endsWith(".json"))) {
      const profile = JSON.parse(readFileSync(join(builtIn, name), "utf8")) as object;
      writeFileSync(join(profilesDir, name), JSON.stringify({ ...profile, image: shell }));
    }
    [a1, a2, b] = await Promise.all([
      gateway("A"),
      gateway("A"),
      gateway("B", engineB.socket, profilesDir),
    ]);
  }, 300_000);

  afterAll(async () => {
    for (const gw of [a1, a2, b]) await gw?.kill().catch(() => {});
    await engineB.stop();
    await db?.drop();
  }, 120_000);

  sharedCases("the same cases across three gateways", () => [caller(a1), caller(a2), caller(b)]);

  it("a workspace created on engine B is usable through a gateway of engine A", async () => {
    const [viaA, viaB] = [caller(a1), caller(b)];
    const ws = await newWorkspace(viaB);
    const run = await viaA(KEY.agent, "POST", `/v1/workspaces/${ws}/exec`, {
      command: ["sh", "-c", "echo hi > made.txt; cat /etc/hostname >/dev/null"],
    });
    expect(run.status).toBe(200);
    expect(run.headers.get("x-airlock-served-by")).toBe(b.instanceId);
    expect(
      (
        await viaA(
          KEY.agent,
          "PUT",
          `/v1/workspaces/${ws}/files/content?path=put.txt`,
          Buffer.from("put\n"),
        )
      ).status,
    ).toBe(200);
    const listed = await json<{ path: string }[]>(
      await viaA(KEY.agent, "GET", `/v1/workspaces/${ws}/files`),
    );
    expect(listed.map((e) => e.path).sort()).toEqual(["made.txt", "put.txt"]);
    const archive = await viaA(KEY.agent, "GET", `/v1/workspaces/${ws}/archive`);
    expect(archive.status).toBe(200);
    expect((await archive.arrayBuffer()).byteLength).toBeGreaterThan(1024);
    // The volume is on B's engine, not A's.
    expect(
      (await engineB.docker().listVolumes({ filters: { label: ["airlock.workspace"] } })).Volumes
        ?.length,
    ).toBeGreaterThan(0);
    expect((await viaA(KEY.agent, "DELETE", `/v1/workspaces/${ws}`)).status).toBe(204);
  });

  it("a fork of a workspace on engine B, made through either engine's gateway, is usable through A", async () => {
    const [viaA, viaB] = [caller(a1), caller(b)];
    const ws = await newWorkspace(viaB);
    const base = await viaA(KEY.agent, "POST", `/v1/workspaces/${ws}/exec`, {
      command: ["sh", "-c", "echo base > base.txt"],
    });
    expect(base.status).toBe(200);
    const forks: string[] = [];
    for (const via of [viaB, viaA]) {
      const res = await via(KEY.agent, "POST", `/v1/workspaces/${ws}/fork`, {});
      expect(res.status, await res.clone().text()).toBe(201);
      forks.push(
        ...(await json<{ workspaces: { id: string }[] }>(res)).workspaces.map((w) => w.id),
      );
    }
    expect(forks).toHaveLength(2);
    for (const fork of forks) {
      // Recorded on B's engine, where its volume is: A forwards to B.
      const run = await caller(a2)(KEY.agent, "POST", `/v1/workspaces/${fork}/exec`, {
        command: ["sh", "-c", "cat base.txt; echo mine > mine.txt"],
      });
      expect(run.status, await run.clone().text()).toBe(200);
      expect(run.headers.get("x-airlock-served-by")).toBe(b.instanceId);
      expect((await json<{ stdout: string }>(run)).stdout).toBe("base\n");
      expect(await lines(viaA, fork, "mine.txt")).toBe(1);
    }
    expect(await lines(viaA, ws, "mine.txt")).toBe(0);
    for (const id of [...forks, ws]) {
      expect((await viaA(KEY.agent, "DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
    }
  });

  it("an execution is cancelled through any gateway, and every gateway reads every audit record", async () => {
    const res = await caller(b)(
      KEY.agent,
      "POST",
      "/v1/exec",
      { profile: "shell", command: ["sleep", "30"], limits: { timeoutMs: 60_000 } },
      { prefer: "respond-async", "x-request-id": `cancel-${run}` },
    );
    expect(res.status).toBe(202);
    const { id } = await json<{ id: string }>(res);
    const read = async () =>
      json<{ status: string }>(await caller(a2)(KEY.agent, "GET", `/v1/executions/${id}`));
    await until("the job to run", read, (e) => e.status === "running");
    const cancelled = await caller(a1)(KEY.agent, "DELETE", `/v1/executions/${id}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.headers.get("x-airlock-served-by")).toBe(b.instanceId);
    expect((await read()).status).toBe("cancelled");
    // Written by B when its request ended (after the answer), read through A2.
    await until(
      "B's audit record of the cancel, read on A2",
      async () =>
        json<{ records: { op: string }[] }>(
          await caller(a2)(KEY.admin, "GET", `/v1/audit?tenant=${T.agent}&op=executions.cancel`),
        ),
      (audit) => audit.records.length >= 1,
      5000,
    );
  });

  it("a forwarded request with a wrong peer signature is refused", async () => {
    const res = await caller(b)(KEY.agent, "GET", "/v1/workspaces/ws_x/files", undefined, {
      "x-airlock-peer": `${Date.now()}.00`,
    });
    expect(res.status).toBe(401);
  });

  it("kill -9 a gateway mid-job: its execution ends lost, the others keep serving", async () => {
    const res = await caller(a2)(
      KEY.agent,
      "POST",
      "/v1/exec",
      { profile: "shell", command: ["sleep", "30"], limits: { timeoutMs: 60_000 } },
      { prefer: "respond-async" },
    );
    expect(res.status).toBe(202);
    const { id } = await json<{ id: string }>(res);
    const read = async () =>
      json<{ status: string; error?: { message: string } }>(
        await caller(a1)(KEY.agent, "GET", `/v1/executions/${id}`),
      );
    await until("the job to run", read, (e) => e.status === "running");
    a2.child.kill("SIGKILL");
    await a2.exited;
    const lost = await until(
      "the job to end lost",
      read,
      (e) => e.status !== "running",
      TIMEOUT_MS + 10_000,
    );
    expect(lost.status).toBe("lost");
    expect(lost.error?.message).toContain(a2.instanceId);
    for (const g of [a1, b]) {
      const ok = await caller(g)(KEY.agent, "POST", "/v1/exec", {
        profile: "shell",
        command: ["echo", "still"],
      });
      expect(ok.status).toBe(200);
      expect((await json<{ stdout: string }>(ok)).stdout).toBe("still\n");
    }
  });

  it("a workspace whose engine has no live gateway answers 503 naming the reason", async () => {
    const ws = await newWorkspace(caller(b));
    b.child.kill("SIGKILL");
    await b.exited;
    const res = await until(
      "B to be taken for dead",
      () => caller(a1)(KEY.agent, "GET", `/v1/workspaces/${ws}/files`),
      (r) => r.status !== 200 && r.status !== 502,
      TIMEOUT_MS + 10_000,
    );
    expect(res.status).toBe(503);
    const body = await json<{
      error: { code: string; message: string; details: { reason: string } };
    }>(res);
    expect(body.error.details.reason).toMatch(/no_live_gateway|gateways_unreachable/);
    expect(body.error.message).toContain(ws);
    // Its volume is B's to remove: B's engine goes with the teardown.
  });
});
