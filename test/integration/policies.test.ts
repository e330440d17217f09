// The operator's policy against the real engine: scopes, rate limits, the
// CPU budget, approval checkpoints, the emergency stop and the audit trail.
// Tenant names are random, so a stop here never touches another test file's gateway.
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApprovalEndedError,
  ApprovalPendingError,
  createClient,
  type ExecEvent,
} from "../../client/index.ts";
import type { ExecResult } from "../../core/schemas.ts";
import { LABEL_STOP } from "../../policies/access/stop.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";

const dir = mkdtempSync(join(tmpdir(), "airlock-policies-"));
const suffix = randomUUID().slice(0, 8);
const T = {
  agent: `agent-${suffix}`,
  gated: `gated-${suffix}`,
  few: `few-${suffix}`,
  spin: `spin-${suffix}`,
  ops: `ops-${suffix}`,
};
const KEY = {
  agent: `agent-key-${randomUUID()}`,
  netless: `netless-key-${randomUUID()}`,
  gated: `gated-key-${randomUUID()}`,
  gatedReader: `gated-reader-key-${randomUUID()}`,
  gatedRunner: `gated-runner-key-${randomUUID()}`,
  spin: `spin-key-${randomUUID()}`,
  few: `few-key-${randomUUID()}`,
  admin: `admin-key-${randomUUID()}`,
};
const SECRET = `s3cret-${randomUUID()}`;

const POLICY = {
  approvalTtlSeconds: 3,
  tenants: {
    [T.agent]: {
      keys: [
        {
          id: "agent",
          hash: keyHash(KEY.agent),
          scopes: ["exec", "workspaces", "files.read", "files.write"],
          rateLimits: { exec: { perMinute: 5 } },
        },
        // Every scope but network, and every profile: still no networked profile.
        {
          id: "netless",
          hash: keyHash(KEY.netless),
          scopes: ["exec", "workspaces", "files.read", "files.write"],
        },
      ],
    },
    [T.gated]: {
      requireApproval: { jobsOverSeconds: 20 },
      keys: [
        { id: "gated", hash: keyHash(KEY.gated), scopes: ["exec", "workspaces", "files.read"] },
        // Same tenant, fewer scopes: what may they read of the gated key's approvals?
        { id: "gated-reader", hash: keyHash(KEY.gatedReader), scopes: ["files.read"] },
        {
          id: "gated-runner",
          hash: keyHash(KEY.gatedRunner),
          scopes: ["exec"],
          rateLimits: { exec: { perMinute: 2 } },
        },
      ],
    },
    [T.few]: {
      quotas: { maxWorkspaces: 2 },
      keys: [{ id: "few", hash: keyHash(KEY.few), scopes: ["workspaces"] }],
    },
    [T.spin]: {
      quotas: { cpuSecondsPerHour: 1 },
      keys: [{ id: "spin", hash: keyHash(KEY.spin), scopes: ["exec"] }],
    },
    [T.ops]: { keys: [{ id: "ops", hash: keyHash(KEY.admin), scopes: ["admin"] }] },
  },
};

// A profile with a network, only ever refused here: nothing is sent from it.
const profilesDir = join(dir, "profiles");
const auditFile = join(dir, "audit.jsonl");

let gw: TestGateway;
beforeAll(async () => {
  const { mkdirSync } = await import("node:fs");
  mkdirSync(profilesDir);
  writeFileSync(
    join(profilesDir, "netshell.json"),
    JSON.stringify({
      name: "netshell",
      image: "airlock/shell:1",
      languages: { bash: { file: "main.sh", command: ["bash", "main.sh"] } },
      network: "bridge",
    }),
  );
  gw = await startGateway({ policy: POLICY, profilesDir, auditFile, concurrency: 2 });
});
afterAll(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  const markers = await new Dockerode().listVolumes({ filters: { label: [LABEL_STOP] } });
  expect(
    (markers.Volumes ?? []).filter((v) => Object.values(T).includes(v.Labels?.[LABEL_STOP] ?? "")),
  ).toEqual([]);
});

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

describe("scopes", () => {
  it("a key without network cannot use a networked profile, and does not see it", async () => {
    const res = await gw.call(KEY.netless, "POST", "/v1/exec", {
      profile: "netshell",
      command: ["true"],
    });
    expect(res.status).toBe(403);
    expect(await json(res)).toMatchObject({
      error: { code: "forbidden", details: { missingScopes: ["network"] } },
    });
    const listed = await json<{ profiles: { name: string }[] }>(
      await gw.call(KEY.netless, "GET", "/v1/profiles"),
    );
    expect(listed.profiles.map((p) => p.name)).not.toContain("netshell");
    expect(listed.profiles.map((p) => p.name)).toContain("shell");
    // Nor may it make a workspace on it.
    const ws = await gw.call(KEY.netless, "POST", "/v1/workspaces", { profile: "netshell" });
    expect(ws.status).toBe(403);
  });

  it("a key without admin gets 403 on the admin routes", async () => {
    const res = await gw.call(KEY.agent, "POST", "/v1/admin/stop", { tenant: T.agent });
    expect(res.status).toBe(403);
    expect(await json(res)).toMatchObject({ error: { message: "this key lacks scope admin" } });
  });
});

describe("rate limits and quotas", () => {
  it("a rate limit of 5/min gives exactly 5 successes, then 429", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await gw.call(KEY.agent, "POST", "/v1/exec", {
        profile: "shell",
        command: ["true"],
      });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        expect(await json(res)).toMatchObject({
          error: {
            code: "rate_limited",
            details: { scope: "exec", window: "perMinute", limit: 5 },
          },
        });
      } else {
        expect((await json<ExecResult>(res)).status).toBe("ok");
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    // Another key of the same tenant has its own count.
    const other = await gw.call(KEY.netless, "POST", "/v1/exec", {
      profile: "shell",
      command: ["true"],
    });
    expect(other.status).toBe(200);
  });

  it("a CPU-seconds quota stops a tenant that spins", async () => {
    // On a busy machine a spinning job may get less than a full CPU: spin until
    // the budget (1 s) is used, and expect the very next job to be refused.
    let usedMs = 0;
    let spins = 0;
    while (usedMs < 1000) {
      expect(spins++).toBeLessThan(6);
      const spin = await gw.call(KEY.spin, "POST", "/v1/exec", {
        profile: "shell",
        command: ["bash", "-c", "while :; do :; done"],
        limits: { timeoutMs: 1500 },
      });
      expect(spin.status).toBe(200);
      const result = await json<ExecResult>(spin);
      expect(result.status).toBe("timeout");
      usedMs += result.usage.cpuMs ?? result.durationMs;
    }
    const next = await gw.call(KEY.spin, "POST", "/v1/exec", {
      profile: "shell",
      command: ["true"],
    });
    expect(next.status).toBe(429);
    expect(Number(next.headers.get("retry-after"))).toBeGreaterThan(3000);
    expect(await json(next)).toMatchObject({
      error: { code: "quota_exceeded", details: { limit: "cpuSecondsPerHour", max: 1 } },
    });
  });
});

describe("the workspace-count quota under concurrency", () => {
  it("ten concurrent creates against maxWorkspaces 2 make exactly 2, and 8 answers name the quota", async () => {
    const made: string[] = [];
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await gw.call(KEY.few, "POST", "/v1/workspaces", { profile: "shell" });
          const body = await json<{ id?: string; error?: { message: string } }>(res);
          if (body.id !== undefined) made.push(body.id);
          return { status: res.status, body };
        }),
      );
      const refused = answers.filter((a) => a.status === 429);
      expect(made).toHaveLength(2);
      expect(refused).toHaveLength(8);
      for (const { body } of refused) {
        expect(body).toMatchObject({
          error: { code: "quota_exceeded", details: { limit: "maxWorkspaces", max: 2 } },
        });
        expect(body.error?.message).toContain("quota maxWorkspaces reached");
      }
    } finally {
      for (const id of made) {
        expect((await gw.call(KEY.few, "DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
      }
    }
  });
});

describe("approvals", () => {
  let ws: string;
  beforeAll(async () => {
    const res = await gw.call(KEY.gated, "POST", "/v1/workspaces", {});
    expect(res.status).toBe(201);
    ws = (await json<{ id: string }>(res)).id;
  });
  afterAll(async () => {
    await gw.call(KEY.gated, "DELETE", `/v1/workspaces/${ws}`);
  });
  const gatedJob = () =>
    gw.call(KEY.gated, "POST", `/v1/workspaces/${ws}/exec`, {
      command: ["bash", "-c", "echo run >> runs.txt; wc -l < runs.txt"],
      limits: { timeoutMs: 30_000 },
    });
  const runs = async () => {
    const res = await gw.call(KEY.gated, "GET", `/v1/workspaces/${ws}/files/content?path=runs.txt`);
    return res.status === 404 ? 0 : (await res.text()).split("\n").filter(Boolean).length;
  };

  it("an approval-gated job waits, then runs exactly once after approval", async () => {
    const res = await gatedJob();
    expect(res.status).toBe(202);
    const { approvalId, status } = await json<{ approvalId: string; status: string }>(res);
    expect(status).toBe("pending");
    const waiting = gw.call(KEY.gated, "GET", `/v1/approvals/${approvalId}?wait=30`);
    const pending = await json<{ approvals: { id: string }[] }>(
      await gw.call(KEY.admin, "GET", "/v1/approvals"),
    );
    expect(pending.approvals.map((a) => a.id)).toContain(approvalId);
    expect(await runs()).toBe(0);
    // Two admins approve at once: one run.
    const approvals = await Promise.all([
      gw.call(KEY.admin, "POST", `/v1/approvals/${approvalId}/approve`),
      gw.call(KEY.admin, "POST", `/v1/approvals/${approvalId}/approve`),
    ]);
    expect(approvals.map((r) => r.status)).toEqual([200, 200]);
    const done = await json<{ status: string; result: ExecResult }>(await waiting);
    expect(done.status).toBe("done");
    expect(done.result).toMatchObject({ status: "ok", stdout: "1\n" });
    const again = await json<{ status: string }>(
      await gw.call(KEY.admin, "POST", `/v1/approvals/${approvalId}/approve`),
    );
    expect(again.status).toBe("done");
    expect(await runs()).toBe(1);
  });

  it("never runs after denial or expiry", async () => {
    const before = await runs();
    const denied = await json<{ approvalId: string }>(await gatedJob());
    const waiting = gw.call(KEY.gated, "GET", `/v1/approvals/${denied.approvalId}?wait=30`);
    await gw.call(KEY.admin, "POST", `/v1/approvals/${denied.approvalId}/deny`);
    expect(await json(await waiting)).toMatchObject({ status: "denied" });
    const approved = await json<{ status: string }>(
      await gw.call(KEY.admin, "POST", `/v1/approvals/${denied.approvalId}/approve`),
    );
    expect(approved.status).toBe("denied");

    const expiring = await json<{ approvalId: string }>(await gatedJob());
    // The wait ends at expiry (3 s), well before its 30 s.
    const expired = await json<{ status: string }>(
      await gw.call(KEY.gated, "GET", `/v1/approvals/${expiring.approvalId}?wait=30`),
    );
    expect(expired.status).toBe("expired");
    const late = await json<{ status: string }>(
      await gw.call(KEY.admin, "POST", `/v1/approvals/${expiring.approvalId}/approve`),
    );
    expect(late.status).toBe("expired");
    await new Promise((r) => setTimeout(r, 500));
    expect(await runs()).toBe(before);
  });
});

describe("reading an approval", () => {
  const held = async (path: string, body: unknown) => {
    const res = await gw.call(KEY.gated, "POST", path, body);
    expect(res.status).toBe(202);
    return (await json<{ approvalId: string }>(res)).approvalId;
  };
  const slow = { command: ["true"], limits: { timeoutMs: 30_000 } };

  it("needs the held job's scopes: a key of the same tenant without them gets 403 naming them", async () => {
    const ws = await json<{ id: string }>(await gw.call(KEY.gated, "POST", "/v1/workspaces", {}));
    try {
      const id = await held(`/v1/workspaces/${ws.id}/exec`, slow);
      const reader = await gw.call(KEY.gatedReader, "GET", `/v1/approvals/${id}`);
      expect(reader.status).toBe(403);
      expect(await json(reader)).toMatchObject({
        error: { code: "forbidden", details: { missingScopes: ["exec", "workspaces"] } },
      });
      const runner = await gw.call(KEY.gatedRunner, "GET", `/v1/approvals/${id}`);
      expect(runner.status).toBe(403);
      expect(await json(runner)).toMatchObject({
        error: { message: "this key lacks scope workspaces" },
      });
      expect((await gw.call(KEY.gated, "GET", `/v1/approvals/${id}`)).status).toBe(200);
      expect((await gw.call(KEY.admin, "GET", `/v1/approvals/${id}`)).status).toBe(200);
      await gw.call(KEY.admin, "POST", `/v1/approvals/${id}/deny`);
    } finally {
      await gw.call(KEY.gated, "DELETE", `/v1/workspaces/${ws.id}`);
    }
  });

  it("counts against the reading key's rate limit", async () => {
    const id = await held("/v1/exec", { profile: "shell", ...slow });
    const read = () => gw.call(KEY.gatedRunner, "GET", `/v1/approvals/${id}`);
    expect((await read()).status).toBe(200);
    expect((await read()).status).toBe(200);
    const limited = await read();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await json(limited)).toMatchObject({
      error: { code: "rate_limited", details: { scope: "exec", window: "perMinute", limit: 2 } },
    });
    // The audit trail names the scope a read counted against.
    const audit = await json<{ records: { op: string; scope: string; keyId: string }[] }>(
      await gw.call(KEY.admin, "GET", `/v1/audit?tenant=${T.gated}&op=approvals.get&limit=3`),
    );
    expect(audit.records[0]).toMatchObject({ keyId: "gated-runner", scope: "exec" });
    await gw.call(KEY.admin, "POST", `/v1/approvals/${id}/deny`);
  });
});

describe("the typed client and held jobs", () => {
  const gated = () => createClient({ baseUrl: gw.url, apiKey: KEY.gated });
  const admin = () => createClient({ baseUrl: gw.url, apiKey: KEY.admin });
  const slow = { limits: { timeoutMs: 30_000 } };

  it("exec throws ApprovalPendingError; approvals.wait returns the result once approved", async () => {
    const err = await gated()
      .exec({ profile: "python", code: "print(6*7)", ...slow })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApprovalPendingError);
    const { approvalId } = err as ApprovalPendingError;
    const waiting = gated().approvals.wait(approvalId, { timeoutS: 30 });
    await admin().approvals.approve(approvalId);
    expect(await waiting).toMatchObject({ status: "ok", stdout: "42\n" });
  });

  it("a workspace's execStream yields the approval; denied, approvals.wait throws ApprovalEndedError", async () => {
    const client = gated();
    const ws = await client.workspaces.create();
    try {
      const events: ExecEvent[] = [];
      for await (const e of client.workspaces.execStream(ws.id, { command: "touch ran", ...slow }))
        events.push(e);
      expect(events).toHaveLength(1);
      const event = events[0] as Extract<ExecEvent, { type: "approval" }>;
      expect(event).toMatchObject({ type: "approval", approval: { status: "pending" } });
      const waiting = client.approvals.wait(event.approval.approvalId).catch((e: unknown) => e);
      await admin().approvals.deny(event.approval.approvalId);
      const ended = await waiting;
      expect(ended).toBeInstanceOf(ApprovalEndedError);
      expect(ended).toMatchObject({ code: "approval_denied", status: 403 });
      expect(await client.workspaces.listFiles(ws.id)).toEqual([]);
    } finally {
      await client.workspaces.delete(ws.id);
    }
  });
});

describe("emergency stop", () => {
  it("kills a running sleep 600 within 2 s, cancels the queued job, and blocks new jobs until resumed", async () => {
    const sleeper = { profile: "shell", command: ["sleep", "600"], limits: { timeoutMs: 300_000 } };
    try {
      await stopKillsAndBlocks(sleeper);
    } finally {
      // Whatever failed above, never leave a stop behind on the shared engine.
      await gw.access.deps.stop.resume(T.agent);
    }
  });
});

async function stopKillsAndBlocks(sleeper: Record<string, unknown>): Promise<void> {
  // Concurrency 2: two run, the third waits in the queue.
  const jobs = [0, 1, 2].map(() => gw.call(KEY.netless, "POST", "/v1/exec", sleeper));
  await waitFor(async () => gw.executor.running === 2 && gw.executor.waiting === 1);
  const started = Date.now();
  const stop = await gw.call(KEY.admin, "POST", "/v1/admin/stop", { tenant: T.agent });
  expect(stop.status).toBe(200);
  const answers = await Promise.all(jobs);
  expect(Date.now() - started).toBeLessThan(2000);
  for (const res of answers) {
    expect(res.status).toBe(423);
    expect(await json(res)).toMatchObject({ error: { code: "stopped" } });
  }
  await waitFor(async () => gw.executor.running === 0);
  const blocked = await gw.call(KEY.agent, "POST", "/v1/exec", {
    profile: "shell",
    command: ["true"],
  });
  expect(blocked.status).toBe(423);
  // Other tenants go on.
  const gated = await gw.call(KEY.gated, "POST", "/v1/exec", {
    profile: "shell",
    command: ["true"],
  });
  expect(gated.status).toBe(200);
  expect(await json(await gw.call(KEY.admin, "GET", "/v1/admin/stop"))).toMatchObject({
    all: null,
    tenants: [{ tenant: T.agent }],
  });

  // The stop survives a gateway restart (a marker volume on the engine).
  const restarted = await startGateway({ policy: POLICY, profilesDir });
  try {
    const still = await restarted.call(KEY.netless, "POST", "/v1/exec", {
      profile: "shell",
      command: ["true"],
    });
    expect(still.status).toBe(423);
    expect(
      (await restarted.call(KEY.admin, "POST", "/v1/admin/resume", { tenant: T.agent })).status,
    ).toBe(200);
    const ok = await restarted.call(KEY.netless, "POST", "/v1/exec", {
      profile: "shell",
      command: ["true"],
    });
    expect(ok.status).toBe(200);
  } finally {
    await restarted.close();
  }
  // This gateway learns of the resume on its next refresh (housekeeping does it in main.ts).
  await gw.access.deps.stop.refresh();
  const after = await gw.call(KEY.netless, "POST", "/v1/exec", {
    profile: "shell",
    command: ["true"],
  });
  expect(after.status).toBe(200);
}

describe("audit log", () => {
  it("has one line per operation, in-process calls included, and no secret values", async () => {
    const before = readFileSync(auditFile, "utf8").split("\n").filter(Boolean).length;
    const requests = [
      () =>
        gw.call(KEY.netless, "POST", "/v1/exec", {
          profile: "shell",
          command: ["bash", "-c", 'echo "$TOKEN"'],
          env: { TOKEN: SECRET },
        }),
      // As the MCP server calls it: in-process, with the caller's own Authorization.
      () =>
        gw.app.request("/v1/exec", {
          method: "POST",
          headers: { authorization: `Bearer ${KEY.netless}`, "content-type": "application/json" },
          body: JSON.stringify({ profile: "shell", command: ["true"], env: { TOKEN: SECRET } }),
        }),
      () => gw.call(KEY.netless, "GET", "/v1/profiles"),
      () => gw.call(`not-a-key-${SECRET}`, "GET", "/v1/profiles"),
    ];
    const answers: Response[] = [];
    for (const r of requests) answers.push(await r());
    const first = await json<ExecResult>(answers[0] as Response);
    expect(first.stdout).toBe(`${SECRET}\n`);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 401]);
    const text = readFileSync(auditFile, "utf8");
    const lines = text.split("\n").filter(Boolean);
    expect(lines.length - before).toBe(requests.length);
    expect(text).not.toContain(SECRET);
    for (const key of Object.values(KEY)) expect(text).not.toContain(key);
    const mine = lines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(mine[0]).toMatchObject({
      op: "exec",
      tenant: T.agent,
      keyId: "netless",
      scope: "exec",
      profile: "shell",
      status: "ok",
      exitCode: 0,
      bytesOut: SECRET.length + 1,
      commandDigest: expect.stringMatching(/^sha256:/),
    });
    expect(mine[1]).toMatchObject({ op: "exec", tenant: T.agent, status: "ok" });
    expect(mine[3]).toMatchObject({ tenant: null, status: "unauthorized", httpStatus: 401 });
    // The approval runs above are in the trail too, with their approval id.
    expect(lines.some((l) => JSON.parse(l).op === "approval.run")).toBe(true);
    const q = await json<{ records: { status: string }[] }>(
      await gw.call(KEY.admin, "GET", `/v1/audit?tenant=${T.spin}&status=quota_exceeded`),
    );
    expect(q.records).toHaveLength(1);
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}
