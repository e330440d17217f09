// The Idempotency-Key middleware (api/idempotency.ts) through the whole app,
// over the fake executor and a real state store: a retry gets the first
// answer and runs nothing; one while the first runs waits for it; another
// request with the key is 422; what is kept (4xx) and what is not (5xx, 429);
// a streamed first answer replays as its execution's events.
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import type { Job } from "../../core/job.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ExecutorRunOptions } from "../../executor/executor.ts";
import { FAKE_KEY, FAKE_KEY_B, fakeApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

type App = ReturnType<typeof fakeApp>["app"];
const EXEC = { profile: "shell", command: "x" };

function post(
  app: App,
  body: unknown,
  headers: Record<string, string> = {},
  path = "/v1/exec",
  key = FAKE_KEY,
) {
  return Promise.resolve(
    app.request(path, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }),
  );
}

const withKey = (key: string, more: Record<string, string> = {}) => ({
  "idempotency-key": key,
  ...more,
});

describe("Idempotency-Key", () => {
  it("a retry gets the first answer again, marked replayed, and nothing runs twice", async () => {
    const { app, executor } = fakeApp();
    const first = await post(app, EXEC, withKey("k-1"));
    expect(first.status).toBe(200);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const body = await first.text();
    const again = await post(app, EXEC, withKey("k-1"));
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.headers.get("content-type")).toContain("application/json");
    expect(await again.text()).toBe(body);
    expect(executor.jobs).toHaveLength(1);
    // Without a key, or with another, it runs.
    await post(app, EXEC);
    await post(app, EXEC, withKey("k-2"));
    expect(executor.jobs).toHaveLength(3);
  });

  it("a retry while the first still runs waits for it, and gets its answer", async () => {
    const { app, executor } = fakeApp();
    let finish: (() => void) | undefined;
    executor.behaviour = (job: Job, options: ExecutorRunOptions) => {
      options.onStart?.(job);
      return new Promise<ExecResult>((resolve) => {
        finish = () => resolve(okResult(job.id, "once\n"));
      });
    };
    const first = post(app, EXEC, withKey("same"));
    const second = post(app, EXEC, withKey("same"));
    const third = post(app, EXEC, withKey("same"));
    await new Promise((r) => setTimeout(r, 100));
    expect(executor.jobs).toHaveLength(1);
    finish?.();
    const answers = await Promise.all([first, second, third]);
    const bodies = await Promise.all(answers.map((r) => r.json() as Promise<ExecResult>));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers.map((r) => r.headers.get("idempotent-replayed"))).toEqual([
      null,
      "true",
      "true",
    ]);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    expect(executor.jobs).toHaveLength(1);
  });

  it("the same key with another body, path or method is 422 idempotency_key_reused", async () => {
    const { app, executor } = fakeApp();
    await post(app, EXEC, withKey("k"));
    const other = await post(app, { ...EXEC, command: "y" }, withKey("k"));
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({
      error: { code: "idempotency_key_reused", details: { field: "Idempotency-Key" } },
    });
    const elsewhere = await post(app, EXEC, withKey("k"), "/v1/workspaces/ws_x/exec");
    expect(elsewhere.status).toBe(422);
    expect(executor.jobs).toHaveLength(1);
  });

  it("keys belong to the tenant: another tenant's same key is its own", async () => {
    const { app, executor } = fakeApp();
    await post(app, EXEC, withKey("shared"));
    const b = await post(
      app,
      { ...EXEC, command: "other" },
      withKey("shared"),
      "/v1/exec",
      FAKE_KEY_B,
    );
    expect(b.status).toBe(200);
    expect(b.headers.get("idempotent-replayed")).toBeNull();
    expect(executor.jobs).toHaveLength(2);
  });

  it("refuses a key over 255 characters (or empty, or not visible ASCII), naming the header", async () => {
    const { app, executor } = fakeApp();
    for (const key of ["x".repeat(256), "", "has space", "é"]) {
      const res = await post(app, EXEC, { "idempotency-key": key });
      expect(res.status, JSON.stringify(key)).toBe(400);
      expect(await res.json()).toMatchObject({
        error: { code: "invalid_request", details: { field: "Idempotency-Key", maxLength: 255 } },
      });
    }
    expect((await post(app, EXEC, withKey("x".repeat(255)))).status).toBe(200);
    expect(executor.jobs).toHaveLength(1);
  });

  it("keeps a 4xx answer and replays it", async () => {
    const { app } = fakeApp();
    const bad = { ...EXEC, limits: { timeoutMs: 10_000_000 } };
    const first = await post(app, bad, withKey("bad"));
    expect(first.status).toBe(400);
    const again = await post(app, bad, withKey("bad"));
    expect(again.status).toBe(400);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(await first.json());
  });

  it("does not keep a 5xx nor a 429: a retry runs", async () => {
    const { app, executor } = fakeApp();
    const failures = [
      new AirlockError("docker_unavailable", "the engine is away"),
      new AirlockError("busy", "the queue is full", { retryAfterSeconds: 1 }),
    ];
    executor.behaviour = async (job) => {
      const next = failures.shift();
      if (next !== undefined) throw next;
      return okResult(job.id, "third time\n");
    };
    expect((await post(app, EXEC, withKey("retry"))).status).toBe(503);
    expect((await post(app, EXEC, withKey("retry"))).status).toBe(429);
    const ok = await post(app, EXEC, withKey("retry"));
    expect(ok.status).toBe(200);
    expect(ok.headers.get("idempotent-replayed")).toBeNull();
    expect((await post(app, EXEC, withKey("retry"))).headers.get("idempotent-replayed")).toBe(
      "true",
    );
    expect(executor.jobs).toHaveLength(3);
  });

  it("replays an async start's 202 with the same execution", async () => {
    const { app, executor } = fakeApp();
    const headers = withKey("async", { prefer: "respond-async" });
    const first = await post(app, EXEC, headers);
    expect(first.status).toBe(202);
    const again = await post(app, EXEC, headers);
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual(await first.json());
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(executor.jobs).toHaveLength(1);
  });

  it("replays a streamed answer as its execution's events, from the start", async () => {
    const { app, executor } = fakeApp();
    const headers = withKey("stream", { accept: "text/event-stream" });
    const first = await post(app, EXEC, headers);
    const live = await first.text();
    const again = await post(app, EXEC, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("location")).toBe(first.headers.get("location"));
    expect(again.headers.get("content-type")).toContain("text/event-stream");
    expect(await again.text()).toBe(live);
    expect(executor.jobs).toHaveLength(1);
  });

  it("a stream refused before it opened (429) is not kept: a retry runs", async () => {
    const { app, executor } = fakeApp();
    let refuse = true;
    executor.behaviour = async (job) => {
      if (refuse) {
        refuse = false;
        throw new AirlockError("busy", "the queue is full", { retryAfterSeconds: 1 });
      }
      return okResult(job.id, "ran\n");
    };
    const headers = withKey("stream-busy", { accept: "text/event-stream" });
    expect((await post(app, EXEC, headers)).status).toBe(429);
    const again = await post(app, EXEC, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    expect(await again.text()).toContain("event: result");
    expect(executor.jobs).toHaveLength(2);
  });

  it("ignores the header on GET", async () => {
    const { app } = fakeApp();
    const res = await app.request("/v1/profiles", {
      headers: { authorization: `Bearer ${FAKE_KEY}`, "idempotency-key": "x".repeat(300) },
    });
    expect(res.status).toBe(200);
  });
});
