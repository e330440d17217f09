// Executions on a real engine (DESIGN.md "Executions"): a streamed client that
// goes away mid-run leaves its job running and reads the result later; a
// client reattaches to the output from the last event id it saw; an async
// job runs with no client and DELETE kills it; a gateway killed with -9 finds
// its running jobs `lost` when it starts again on the same store; an approval
// pending when the gateway restarts is back and runs once when approved;
// Idempotency-Key runs a request once.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AirlockClient,
  ApprovalPendingError,
  createClient,
  type ExecResult,
} from "../../client/index.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";
import { type MainProcess, spawnMain, tempDataDir } from "../support/main-process.ts";

let gw: TestGateway;
let client: AirlockClient;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
  client = createClient({ baseUrl: gw.url, apiKey: gw.key });
});
afterAll(async () => {
  await gw?.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

/** One line a third of a second, so each is its own chunk of output (its own event). */
const LINES = "for i in 1 2 3 4 5; do echo $i; sleep 0.3; done";

interface RawEvent {
  event: string;
  id: string | undefined;
  data: string;
}

/** Reads SSE events from a response until `stop` says so; then drops the connection. */
async function readUntil(
  res: Response,
  controller: AbortController,
  stop: (e: RawEvent) => boolean,
): Promise<RawEvent[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: RawEvent[] = [];
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return seen;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const field = (name: string) =>
        block
          .split("\n")
          .find((l) => l.startsWith(`${name}: `))
          ?.slice(name.length + 2);
      const e = { event: field("event") ?? "", id: field("id"), data: field("data") ?? "" };
      seen.push(e);
      if (stop(e)) {
        controller.abort();
        return seen;
      }
    }
  }
}

function streamExec(body: unknown, controller: AbortController): Promise<Response> {
  return fetch(`${gw.url}/v1/exec`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${gw.key}`,
      "content-type": "application/json",
      accept: "text/event-stream",
    },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
}

describe("a client that goes away", () => {
  it("mid-stream: the job runs on, and its result is read afterwards", async () => {
    const controller = new AbortController();
    const res = await streamExec({ profile: "shell", command: LINES }, controller);
    expect(res.status).toBe(200);
    const location = res.headers.get("location") ?? "";
    expect(location).toMatch(/^\/v1\/executions\/[0-9a-f-]{36}$/);
    const id = location.split("/").pop() as string;
    const seen = await readUntil(res, controller, (e) => e.event === "stdout");
    expect(seen).toEqual([{ event: "stdout", id: "1", data: '"1\\n"' }]);

    const ended = await client.waitExecution(id, { timeoutSeconds: 30 });
    expect(ended).toMatchObject({ id, status: "done", profile: "shell" });
    const result = ended.result as ExecResult;
    expect(result).toMatchObject({ id, status: "ok", exitCode: 0, stdout: "1\n2\n3\n4\n5\n" });
    expect(Date.parse(ended.endedAt ?? "")).toBeGreaterThanOrEqual(
      Date.parse(ended.startedAt ?? ""),
    );
  });

  it("reattaches from the last event id it saw and gets exactly the rest, live, then the result", async () => {
    const controller = new AbortController();
    const res = await streamExec({ profile: "shell", command: LINES }, controller);
    const id = (res.headers.get("location") ?? "").split("/").pop() as string;
    const seen = await readUntil(res, controller, (e) => e.id === "2");
    expect(seen.map((e) => e.data)).toEqual(['"1\\n"', '"2\\n"']);

    const rest: string[] = [];
    let result: ExecResult | undefined;
    for await (const e of client.executionEvents(id, { lastEventId: 2 })) {
      if (e.type === "stdout") rest.push(`${e.id}:${e.data}`);
      if (e.type === "result") result = e.result;
    }
    expect(rest).toEqual(["3:3\n", "4:4\n", "5:5\n"]);
    expect(result).toMatchObject({ id, status: "ok", stdout: "1\n2\n3\n4\n5\n" });

    // From the start, once it is over: the same events, then the result.
    const all: number[] = [];
    for await (const e of client.executionEvents(id)) if (e.type === "stdout") all.push(e.id);
    expect(all).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("async executions", () => {
  it("Prefer: respond-async answers 202 at once; the job runs with no client; DELETE kills it", async () => {
    const accepted = await client.execAsync({
      profile: "shell",
      command: "echo up; sleep 60",
      limits: { timeoutMs: 120_000 },
    });
    expect(accepted).toMatchObject({ status: "queued" });
    const id = (accepted as { id: string }).id;
    // Running: its first line is there to read while it sleeps.
    for await (const e of client.executionEvents(id)) {
      expect(e).toEqual({ type: "stdout", data: "up\n", id: 1 });
      break;
    }
    expect(await client.getExecution(id)).toMatchObject({ id, status: "running" });
    expect(await client.listExecutions({ status: "running" })).toMatchObject({
      executions: [{ id, status: "running" }],
    });

    const started = performance.now();
    expect(await client.cancelExecution(id)).toMatchObject({ id, status: "cancelled" });
    expect(performance.now() - started).toBeLessThan(15_000);
    for (;;) {
      if ((await gw.leftovers()).containers === 0) break;
      expect(performance.now() - started).toBeLessThan(30_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    const ended: string[] = [];
    for await (const e of client.executionEvents(id)) ended.push(e.type);
    expect(ended).toEqual(["stdout", "end"]);
    await expect(client.cancelExecution(id)).resolves.toMatchObject({ status: "cancelled" });
  });

  it("a workspace exec is an execution of its workspace", async () => {
    const ws = await client.workspaces.create({ profile: "shell" });
    try {
      const res = await fetch(`${gw.url}/v1/workspaces/${ws.id}/exec`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${gw.key}`,
          "content-type": "application/json",
          prefer: "respond-async",
        },
        body: JSON.stringify({ command: "echo hi > f; cat f" }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      expect(res.headers.get("location")).toBe(`/v1/executions/${id}`);
      const ended = await client.waitExecution(id, { timeoutSeconds: 30 });
      expect(ended).toMatchObject({ status: "done", workspace: ws.id, result: { stdout: "hi\n" } });
      const listed = await client.listExecutions({ workspace: ws.id });
      expect(listed.executions.map((e) => e.id)).toEqual([id]);
    } finally {
      await client.workspaces.delete(ws.id);
    }
  });
});

describe("Idempotency-Key", () => {
  /** A workspace exec that counts its own runs in a file: the proof of how often it ran. */
  const COUNT_RUNS = { command: "echo run >> runs; wc -l < runs" };
  const run = (ws: string, key: string, body: unknown = COUNT_RUNS) =>
    fetch(`${gw.url}/v1/workspaces/${ws}/exec`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gw.key}`,
        "content-type": "application/json",
        "idempotency-key": key,
      },
      body: JSON.stringify(body),
    });

  it("two identical POSTs with one key, one after the other or at once, run once", async () => {
    const ws = await client.workspaces.create({ profile: "shell" });
    try {
      const first = await run(ws.id, "seq-1");
      const again = await run(ws.id, "seq-1");
      expect([first.status, again.status]).toEqual([200, 200]);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      const a = (await first.json()) as ExecResult;
      expect(await again.json()).toEqual(a);
      expect(a.stdout).toBe("1\n");

      // At once: one runs, the other waits for it and gets its answer.
      const both = await Promise.all([run(ws.id, "conc-1"), run(ws.id, "conc-1")]);
      const results = (await Promise.all(both.map((r) => r.json()))) as ExecResult[];
      expect(results[0]).toEqual(results[1]);
      expect(results[0]?.stdout).toBe("2\n");
      expect(both.map((r) => r.headers.get("idempotent-replayed")).sort()).toEqual(
        ["true", null].sort(),
      );
      expect(await client.workspaces.readText(ws.id, "runs")).toBe("run\nrun\n");
      const { executions } = await client.listExecutions({ workspace: ws.id });
      expect(executions).toHaveLength(2);

      // The same key with another body is refused, and runs nothing.
      const other = await run(ws.id, "seq-1", { command: "echo other >> runs" });
      expect(other.status).toBe(422);
      expect(await other.json()).toMatchObject({ error: { code: "idempotency_key_reused" } });
      expect(await client.workspaces.readText(ws.id, "runs")).toBe("run\nrun\n");
    } finally {
      await client.workspaces.delete(ws.id);
    }
  });

  it("through the typed client: exec with idempotencyKey returns the same result", async () => {
    const body = { profile: "shell", command: "cat /proc/sys/kernel/random/uuid" };
    const a = await client.exec(body, { idempotencyKey: "client-1" });
    const b = await client.exec(body, { idempotencyKey: "client-1" });
    expect(b).toEqual(a);
    expect((await client.getExecution(a.id)).status).toBe("done");
  });
});

describe("an approval across a restart", () => {
  const agentKey = `held-agent-${Math.random().toString(36).slice(2)}-key`;
  const adminKey = `held-admin-${Math.random().toString(36).slice(2)}-key`;
  const policy = {
    tenants: {
      held: {
        requireApproval: { jobsOverSeconds: 5 },
        keys: [{ id: "agent", hash: keyHash(agentKey), scopes: ["exec"] }],
      },
      ops: { keys: [{ id: "root", hash: keyHash(adminKey), scopes: ["admin"] }] },
    },
  };
  const dataDir = tempDataDir();
  const instanceId = `held-${Math.random().toString(36).slice(2, 10)}`;
  let second: TestGateway | undefined;
  afterAll(async () => {
    await second?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a pending approval is back after the gateway restarts, and runs once when approved", async () => {
    const first = await startGateway({ policy, dataDir, instanceId });
    const as = (gw: TestGateway, key: string) => createClient({ baseUrl: gw.url, apiKey: key });
    const held = await as(first, agentKey)
      .exec({ profile: "shell", command: "echo approved", limits: { timeoutMs: 10_000 } })
      .then(
        () => expect.unreachable("the job ran without approval"),
        (err: unknown) => err as ApprovalPendingError,
      );
    expect(held).toBeInstanceOf(ApprovalPendingError);
    await first.close();

    second = await startGateway({ policy, dataDir, instanceId });
    const admin = as(second, adminKey);
    expect((await admin.approvals.list()).approvals.map((a) => a.id)).toEqual([held.approvalId]);
    // Two admins approve at once: one run.
    const decided = await Promise.all([
      admin.approvals.approve(held.approvalId),
      admin.approvals.approve(held.approvalId),
    ]);
    expect(decided.map((a) => a.status)).toEqual(["running", "running"]);
    const done = await as(second, agentKey).approvals.get(held.approvalId, 30);
    expect(done).toMatchObject({ status: "done", result: { status: "ok", stdout: "approved\n" } });
    const id = done.result?.id ?? "";
    const agent = as(second, agentKey);
    expect(await agent.getExecution(id)).toMatchObject({ id, status: "done" });
    expect((await agent.listExecutions()).executions.map((e) => e.id)).toEqual([id]);
    expect((await admin.approvals.approve(held.approvalId)).status).toBe("done");
  });
});

describe("a gateway killed with -9", () => {
  const children: MainProcess[] = [];
  const dataDir = tempDataDir();
  afterAll(async () => {
    for (const c of children) await c.kill();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("finds the jobs it was running `lost` when it starts again on the same store", async () => {
    const first = await spawnMain({ dataDir, env: { AIRLOCK_LOG_LEVEL: "warn" } });
    children.push(first);
    const same = { dataDir, key: first.key, instanceId: first.instanceId };
    const on = (p: MainProcess) =>
      createClient({ baseUrl: `http://127.0.0.1:${p.port}`, apiKey: p.key });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const accepted = await on(first).execAsync({
        profile: "shell",
        command: "sleep 600",
        limits: { timeoutMs: 300_000 },
      });
      ids.push((accepted as { id: string }).id);
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      const running = await on(first).listExecutions({ status: "running" });
      if (running.executions.length === 2) break;
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }

    first.child.kill("SIGKILL");
    await first.exited;
    const second = await spawnMain({ ...same, env: { AIRLOCK_LOG_LEVEL: "warn" } });
    children.push(second);
    for (const id of ids) {
      const e = await on(second).getExecution(id);
      expect(e).toMatchObject({ id, status: "lost", error: { code: "internal" } });
      expect(e.error?.message).toContain(first.instanceId);
      expect(e.endedAt).toBeDefined();
    }
  });
});
