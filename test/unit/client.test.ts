import { describe, expect, it } from "vitest";
import {
  AirlockApiError,
  ApprovalEndedError,
  ApprovalPendingError,
  createClient,
  type ExecEvent,
} from "../../client/index.ts";
import { AirlockError } from "../../core/errors.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import { FAKE_KEY, FAKE_WORKSPACE, fakeApp, GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

function setup(key = FAKE_KEY) {
  const { app, executor } = fakeApp();
  const client = createClient({
    baseUrl: "http://airlock.test",
    apiKey: key,
    fetch: (req) => app.fetch(req),
  });
  return { client, executor };
}

describe("typed client", () => {
  it("runs exec and returns the typed result", async () => {
    const { client, executor } = setup();
    const r = await client.exec({ profile: "python", code: "print(1)" });
    expect(r).toMatchObject({ status: "ok", stdout: "hi\n" });
    expect(executor.jobs[0]?.tenant).toBe("a");
  });

  it("throws AirlockApiError with the gateway's code, status and details", async () => {
    const { client } = setup();
    const err = await client
      .exec({ profile: "python", code: "x", limits: { timeoutMs: 10_000_000 } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockApiError);
    expect(err).toMatchObject({ status: 400, code: "invalid_request" });
    expect((err as Error).message).toContain("timeoutMs");

    const unknown = await client
      .exec({ profile: "nope", command: "true" })
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({ status: 404, code: "not_found" });
  });

  it("sends the key: a wrong one is a 401", async () => {
    const { client } = setup("wrong-key-0123456789");
    await expect(client.profiles()).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("streams output events in order, then the result", async () => {
    const { client, executor } = setup();
    executor.behaviour = async (job, options) => {
      options.onOutput?.("stdout", Buffer.from("one\n"));
      options.onOutput?.("stderr", Buffer.from("two\n"));
      options.onOutput?.("stdout", Buffer.from("thr\u00e9e\n"));
      return okResult(job.id, "one\nthrée\n");
    };
    const events: ExecEvent[] = [];
    for await (const e of client.execStream({ profile: "shell", command: "x" })) events.push(e);
    expect(events.slice(0, 3)).toEqual([
      { type: "stdout", data: "one\n" },
      { type: "stderr", data: "two\n" },
      { type: "stdout", data: "thr\u00e9e\n" },
    ]);
    expect(events[3]).toMatchObject({ type: "result", result: { status: "ok" } });
    expect(events).toHaveLength(4);
  });

  it("raises a stream's error event as AirlockApiError", async () => {
    const { client, executor } = setup();
    executor.behaviour = async (_job, options) => {
      options.onOutput?.("stdout", Buffer.from("partial\n"));
      await new Promise((r) => setTimeout(r, 5));
      throw new Error("boom");
    };
    const seen: ExecEvent[] = [];
    const err = await (async () => {
      for await (const e of client.execStream({ profile: "shell", command: "x" })) seen.push(e);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([{ type: "stdout", data: "partial\n" }]);
    expect(err).toMatchObject({ status: 500, code: "internal" });
  });

  it("closes the stream when the consumer stops iterating; the job runs on until cancelled", async () => {
    const { client, executor } = setup();
    let aborted = false;
    let id = "";
    executor.behaviour = (job, options) => {
      id = job.id;
      options.onStart?.(job);
      options.onOutput?.("stdout", Buffer.from("tick\n"));
      // As the sandbox does: killed, it throws.
      return new Promise((_resolve, reject) =>
        options.signal?.addEventListener("abort", () => {
          aborted = true;
          reject(new JobCancelledError("killed"));
        }),
      );
    };
    for await (const e of client.execStream({ profile: "shell", command: "x" })) {
      expect(e).toEqual({ type: "stdout", data: "tick\n" });
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(aborted).toBe(false);
    expect(await client.getExecution(id)).toMatchObject({ id, status: "running" });
    // Its output is there to replay, with the same event id the stream gave it.
    const replayed = client.executionEvents(id);
    expect((await replayed.next()).value).toEqual({ type: "stdout", data: "tick\n", id: 1 });
    await replayed.return();
    expect(await client.cancelExecution(id)).toMatchObject({ id, status: "cancelled" });
    expect(aborted).toBe(true);
  });
});

describe("typed client: jobs held for approval", () => {
  // Held: above the policy's jobsOverSeconds (5); FAST is not.
  const SLOW = { profile: "shell", command: "x", limits: { timeoutMs: 9000 } };
  const FAST = { profile: "shell", command: "x", limits: { timeoutMs: 2000 } };
  function gated(extra: Parameters<typeof gatedApp>[0] = {}) {
    const { app, executor } = gatedApp(extra);
    const as = (apiKey: string) =>
      createClient({ baseUrl: "http://airlock.test", apiKey, fetch: (req) => app.fetch(req) });
    return { client: as(GATED_KEYS.agent), admin: as(GATED_KEYS.admin), executor };
  }
  const held = (run: Promise<unknown>) =>
    run.then(
      () => expect.unreachable("the job ran"),
      (e: unknown) => e as ApprovalPendingError,
    );

  it("exec and workspaces.exec throw ApprovalPendingError with the id; nothing runs", async () => {
    const { client, executor } = gated();
    const err = await held(client.exec(SLOW));
    expect(err).toBeInstanceOf(ApprovalPendingError);
    expect(err).toBeInstanceOf(AirlockApiError);
    expect(err).toMatchObject({
      status: 202,
      code: "approval_pending",
      approvalStatus: "pending",
      reasons: ["jobsOverSeconds"],
      approvalId: expect.stringMatching(/^apr_/),
    });
    expect(err.message).toContain(err.approvalId);
    const ws = await held(
      client.workspaces.exec(FAKE_WORKSPACE, { command: "x", limits: { timeoutMs: 9000 } }),
    );
    expect(ws.approvalId).toMatch(/^apr_/);
    expect(ws.approvalId).not.toBe(err.approvalId);
    expect(executor.jobs).toHaveLength(0);
    // Under the threshold nothing is held.
    expect(await client.exec(FAST)).toMatchObject({ status: "ok" });
  });

  it("execStream yields one approval event with the id instead of throwing", async () => {
    const { client } = gated();
    const events: ExecEvent[] = [];
    for await (const e of client.execStream(SLOW)) events.push(e);
    expect(events).toEqual([
      {
        type: "approval",
        approval: {
          approvalId: expect.stringMatching(/^apr_/),
          status: "pending",
          expiresAt: expect.any(String),
          reasons: ["jobsOverSeconds"],
        },
      },
    ]);
    const ws: ExecEvent[] = [];
    const wsHeld: ExecEvent[] = [];
    const { profile: _, ...fast } = FAST;
    const { profile: __, ...slow } = SLOW;
    for await (const e of client.workspaces.execStream(FAKE_WORKSPACE, slow)) wsHeld.push(e);
    expect(wsHeld).toMatchObject([{ type: "approval", approval: { status: "pending" } }]);
    for await (const e of client.workspaces.execStream(FAKE_WORKSPACE, fast)) ws.push(e);
    expect(ws.map((e) => e.type)).toEqual(["stdout", "result"]);
  });

  it("approvals.wait returns the job's result once approved", async () => {
    const { client, admin, executor } = gated();
    const { approvalId } = await held(client.exec(SLOW));
    const waiting = client.approvals.wait(approvalId, { timeoutS: 10 });
    await new Promise((r) => setTimeout(r, 50));
    await admin.approvals.approve(approvalId);
    expect(await waiting).toMatchObject({ status: "ok", stdout: "hi\n" });
    expect(executor.jobs).toHaveLength(1);
    // Once done, the result stays there to read.
    expect(await client.approvals.wait(approvalId, { timeoutS: 0 })).toMatchObject({
      stdout: "hi\n",
    });
  });

  it("approvals.wait throws ApprovalEndedError on deny, the job's error on failure, pending on timeout", async () => {
    const { client, admin, executor } = gated();
    const denied = await held(client.exec(SLOW));
    const waiting = client.approvals.wait(denied.approvalId).catch((e: unknown) => e);
    await admin.approvals.deny(denied.approvalId);
    const ended = await waiting;
    expect(ended).toBeInstanceOf(ApprovalEndedError);
    expect(ended).toMatchObject({
      status: 403,
      code: "approval_denied",
      approvalId: denied.approvalId,
      message: `approval ${denied.approvalId} was denied by root: the job did not run`,
    });

    const slow = await held(client.exec(SLOW));
    const started = Date.now();
    const timedOut = await client.approvals
      .wait(slow.approvalId, { timeoutS: 0.3 })
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(timedOut).toBeInstanceOf(ApprovalPendingError);
    expect(timedOut).toMatchObject({ approvalId: slow.approvalId, approvalStatus: "pending" });

    executor.behaviour = async () => {
      throw new AirlockError("busy", "the queue is full");
    };
    await admin.approvals.approve(slow.approvalId);
    const failed = await client.approvals.wait(slow.approvalId).catch((e: unknown) => e);
    expect(failed).toMatchObject({
      status: 429,
      code: "busy",
      details: { approvalId: slow.approvalId },
    });
    expect(executor.jobs).toHaveLength(1);
  });

  it("approvals.wait waits out a rate limit while time is left, and stops when aborted", async () => {
    // Every read of the approval counts against the key's exec limit, as the exec did.
    const { client, admin } = gated({ rateLimits: { exec: { perMinute: 2 } } });
    const { approvalId } = await held(client.exec(SLOW));
    expect((await client.approvals.get(approvalId)).status).toBe("pending");
    const limited = await client.approvals.get(approvalId).catch((e: unknown) => e);
    expect(limited).toMatchObject({ status: 429, code: "rate_limited" });
    // Retry-After (about a minute) is beyond the 2 s left: the 429 is the answer.
    const short = await client.approvals.wait(approvalId, { timeoutS: 2 }).catch((e: unknown) => e);
    expect(short).toMatchObject({ status: 429, code: "rate_limited" });
    // Without a timeout it would wait the minute out: an abort ends that wait.
    const controller = new AbortController();
    const waiting = client.approvals
      .wait(approvalId, { signal: controller.signal })
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error("enough"));
    expect(await waiting).toMatchObject({ message: "enough" });
    // The admin's reads count against admin, not the tenant's exec limit.
    expect((await admin.approvals.get(approvalId)).status).toBe("pending");
  });
});
