// Every route's real responses, from a real gateway on the real engine, checked
// against the gateway's own /openapi.json; and every documented operation is hit.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ExecEvent } from "../../client/index.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";
import { openApiChecker } from "../support/openapi-check.ts";
import { makeTar } from "../support/tar.ts";

// A policy, so that the admin and approval routes answer too: jobs asking for
// more than 20 s wait for an approval. Tenant names are random: a stop here
// touches no other test file's gateway.
const suffix = randomUUID().slice(0, 8);
const AGENT_KEY = `agent-key-${randomUUID()}`;
const ADMIN_KEY = `admin-key-${randomUUID()}`;
const IDLE_TENANT = `idle-${suffix}`;
const POLICY = {
  tenants: {
    [`agent-${suffix}`]: {
      requireApproval: { jobsOverSeconds: 20 },
      keys: [
        {
          id: "agent",
          hash: keyHash(AGENT_KEY),
          scopes: ["exec", "workspaces", "files.read", "files.write"],
        },
      ],
    },
    [`ops-${suffix}`]: { keys: [{ id: "ops", hash: keyHash(ADMIN_KEY), scopes: ["admin"] }] },
    [IDLE_TENANT]: {
      keys: [{ id: "idle", hash: keyHash(`idle-key-${randomUUID()}`), scopes: ["exec"] }],
    },
  },
};

let gw: TestGateway;
let doc: Parameters<typeof openApiChecker>[0];
let checker: ReturnType<typeof openApiChecker>;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2, key: AGENT_KEY, policy: POLICY, metrics: true });
  doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as typeof doc;
  checker = openApiChecker(doc);
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

describe("real responses validate against /openapi.json", () => {
  it("covers every route", async () => {
    const client = createClient({ baseUrl: gw.url, apiKey: gw.key, fetch: checker.fetch });
    const raw = async (method: string, path: string, init: RequestInit = {}) => {
      const req = new Request(`${gw.url}${path}`, { method, ...init });
      return checker.fetch(req);
    };

    await client.health();
    await client.readiness();
    await raw("GET", "/openapi.json");
    await raw("GET", "/docs");
    await raw("GET", "/docs/scalar.js");
    await client.profiles();
    const ran = await client.exec({ profile: "shell", command: "echo hi > out.txt; echo done" });
    // Executions: read, listed, replayed; an async one started and cancelled; an ended one is 409.
    await client.getExecution(ran.id);
    await raw("GET", `/v1/executions/${ran.id}?wait=1`, {
      headers: { authorization: `Bearer ${gw.key}` },
    });
    await client.listExecutions({ status: "done", limit: 5 });
    for await (const _ of client.executionEvents(ran.id)) {
      // drained: the checker saw the stream
    }
    const slow = await client.execAsync({ profile: "shell", command: "sleep 30" });
    await client.cancelExecution(slow.id);
    await client.cancelExecution(ran.id).catch(() => {});
    await client.getExecution("nope").catch(() => {});
    const events: ExecEvent[] = [];
    for await (const e of client.execStream({ profile: "python", code: "print(1)" }))
      events.push(e);
    expect(events.at(-1)?.type).toBe("result");
    await client.exec({ profile: "nope", command: "true" }).catch(() => {});
    await client
      .exec({ profile: "shell", command: "true", limits: { timeoutMs: 1e9 } })
      .catch(() => {});
    await raw("GET", "/v1/profiles");

    const ws = await client.workspaces.create({
      profile: "shell",
      files: [{ path: "a.txt", content: "a\n" }],
    });
    await client.workspaces.get(ws.id);
    await client.workspaces.get("ws_00000000000000000000").catch(() => {});
    await client.workspaces.exec(ws.id, {
      command: "echo b >> a.txt; mkdir -p d; echo c > d/c.txt",
    });
    for await (const _ of client.workspaces.execStream(ws.id, { command: "cat a.txt" })) {
      // drained: the checker saw the response
    }
    await client.workspaces.writeFile(ws.id, "w.txt", "written\n");
    expect(await client.workspaces.readText(ws.id, "w.txt")).toBe("written\n");
    await client.workspaces.listFiles(ws.id);
    await client.workspaces.listFiles(ws.id, "d");
    await client.workspaces.deleteFile(ws.id, "w.txt");
    await client.workspaces.readFile(ws.id, "w.txt").catch(() => {});
    await client.workspaces.exportArchive(ws.id);
    await client.workspaces.importArchive(ws.id, await makeTar([{ name: "t.txt", body: "t\n" }]));
    // Checkpoints: taken, listed, diffed, restored, forked from and deleted.
    const cp = await client.workspaces.checkpoint(ws.id, { label: "before" });
    await client.workspaces.checkpoints(ws.id);
    await client.workspaces.diff(ws.id, cp.id);
    await client.workspaces.restore(ws.id, cp.id);
    const forked = await client.workspaces.fork(ws.id, { checkpoint: cp.id, count: 1 });
    for (const f of forked.workspaces) await client.workspaces.delete(f.id);
    await client.workspaces.deleteCheckpoint(ws.id, cp.id);
    await client.workspaces.restore(ws.id, "cp_nope").catch(() => {});
    await client.workspaces.delete(ws.id);

    const mcpHeaders = {
      authorization: `Bearer ${gw.key}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    await raw("POST", "/mcp", {
      headers: mcpHeaders,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "t", version: "1" },
        },
      }),
    });
    await raw("POST", "/mcp", {
      headers: { ...mcpHeaders, authorization: "Bearer wrong-key-0123456789" },
      body: "{}",
    });
    await raw("POST", "/mcp", {
      headers: { ...mcpHeaders, accept: "text/html" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
    });
    await raw("GET", "/mcp", { headers: mcpHeaders });
    await raw("DELETE", "/mcp", { headers: mcpHeaders });

    const pistonAuth = { authorization: `Bearer ${gw.key}` };
    await raw("GET", "/api/v2/runtimes", { headers: pistonAuth });
    await raw("POST", "/api/v2/execute", {
      headers: pistonAuth,
      body: JSON.stringify({
        language: "bash",
        version: "*",
        files: [{ content: "echo $1" }],
        args: ["x"],
      }),
    });
    await raw("POST", "/api/v2/execute", {
      headers: pistonAuth,
      body: JSON.stringify({ language: "cobol", version: "*", files: [{ content: "" }] }),
    });
    await raw("GET", "/api/v2/runtimes");

    // The policy's routes: an approval checkpoint approved, one denied, and the admin's views.
    const as = (key: string, json?: unknown): RequestInit => ({
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    const gated = { profile: "shell", command: "echo gated", limits: { timeoutMs: 30_000 } };
    const pending = (await (await raw("POST", "/v1/exec", as(AGENT_KEY, gated))).json()) as {
      approvalId: string;
    };
    expect(pending.approvalId).toBeTruthy();
    const admin = createClient({ baseUrl: gw.url, apiKey: ADMIN_KEY, fetch: checker.fetch });
    await admin.approvals.list();
    await raw("GET", `/v1/approvals/${pending.approvalId}`, as(AGENT_KEY));
    await raw("POST", `/v1/approvals/${pending.approvalId}/approve`, as(ADMIN_KEY));
    const done = (await (
      await raw("GET", `/v1/approvals/${pending.approvalId}?wait=30`, as(AGENT_KEY))
    ).json()) as { status: string; result?: { stdout: string } };
    expect(done).toMatchObject({ status: "done", result: { stdout: "gated\n" } });
    const denied = (await (
      await raw("POST", `/v1/workspaces/${ws.id}/exec`, as(AGENT_KEY, gated))
    ).json()) as { approvalId?: string; error?: unknown };
    // The workspace is gone by now: a 404 is as good a response to check as a 202.
    if (denied.approvalId !== undefined) {
      await raw("POST", `/v1/approvals/${denied.approvalId}/deny`, as(ADMIN_KEY));
    }
    const other = (await (await raw("POST", "/v1/exec", as(AGENT_KEY, gated))).json()) as {
      approvalId: string;
    };
    await raw("POST", `/v1/approvals/${other.approvalId}/deny`, as(ADMIN_KEY));
    // Piston's answer to a held job: its error shape with the approval.
    const pistonHeld = await raw("POST", "/api/v2/execute", {
      headers: pistonAuth,
      body: JSON.stringify({
        language: "bash",
        version: "*",
        files: [{ content: "true" }],
        run_timeout: 30_000,
      }),
    });
    expect(pistonHeld.status).toBe(403);
    const { approvalId: pistonId } = (await pistonHeld.json()) as { approvalId: string };
    await raw("POST", `/v1/approvals/${pistonId}/deny`, as(ADMIN_KEY));
    await raw("POST", "/v1/approvals/nope/approve", as(ADMIN_KEY));
    await admin.admin.stops();
    await raw("POST", "/v1/admin/stop", as(ADMIN_KEY, { tenant: IDLE_TENANT }));
    await raw("POST", "/v1/admin/resume", as(ADMIN_KEY, { tenant: IDLE_TENANT }));
    await raw("POST", "/v1/admin/stop", as(AGENT_KEY, {}));
    await raw("POST", "/v1/admin/policy/reload", as(ADMIN_KEY));
    await admin.admin.usage();
    // No network is defined here: the decision on a name the policy lacks (no packet is sent).
    await raw(
      "POST",
      "/v1/admin/egress/check",
      as(ADMIN_KEY, { network: "pypi", host: "pypi.org", port: 443 }),
    );
    // The jobs view with a job in it, so a running job's shape is checked too.
    const sleeping = client.exec({
      profile: "shell",
      command: "sleep 2",
      limits: { timeoutMs: 10_000 },
    });
    let view: { jobs: { state: string }[] } = { jobs: [] };
    for (let i = 0; i < 100 && !view.jobs.some((j) => j.state === "running"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      view = (await (await raw("GET", "/v1/admin/jobs", as(ADMIN_KEY))).json()) as typeof view;
    }
    expect(view.jobs.some((j) => j.state === "running")).toBe(true);
    await sleeping;
    await raw("GET", "/v1/admin/jobs", as(AGENT_KEY));
    await raw("GET", "/dashboard");
    await raw("GET", "/v1/audit?limit=5", as(ADMIN_KEY));
    await raw("GET", "/v1/audit?limit=0", as(ADMIN_KEY));
    await client.metrics();
    await raw("GET", "/metrics");

    expect(checker.failures).toEqual([]);
    const hit = new Set(checker.checked.map((c) => c.operation));
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.filter((op) => !hit.has(op))).toEqual([]);
    // Errors were checked too, not only successes.
    expect(checker.checked.some((c) => c.status === 404)).toBe(true);
    expect(checker.checked.some((c) => c.status === 400)).toBe(true);
    expect(checker.checked.some((c) => c.status === 401)).toBe(true);
    expect(checker.checked.some((c) => c.status === 202)).toBe(true);
    expect(checker.checked.some((c) => c.status === 403)).toBe(true);
  });
});
