// Executions through the HTTP layer, over the fake executor and a real state
// store (a temporary SQLite file): every exec answer's Location and id, the
// record from queued to its end, ?wait, the list, respond-async, another
// tenant's 404, cancelling, a client that leaves, the SSE replay (from the
// start, after an event id, live, past the output bound) and a store that
// cannot record (503); a short job ended in one write, a longer one seen running.
import { describe, expect, it } from "vitest";
import { Executions, RUNNING_AFTER_MS } from "../../api/executions/executions.ts";
import type { Job } from "../../core/job.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ExecutorRunOptions } from "../../executor/executor.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import { FAKE_KEY, FAKE_KEY_B, fakeApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

type App = ReturnType<typeof fakeApp>["app"];

function call(
  app: App,
  method: string,
  path: string,
  options: {
    body?: unknown;
    headers?: Record<string, string>;
    key?: string;
    signal?: AbortSignal;
  } = {},
) {
  return app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${options.key ?? FAKE_KEY}`,
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
}

const EXEC = { profile: "shell", command: "x" };

/** A job that starts, writes what it is told, and ends when `finish` is called (or is killed). */
function controllable() {
  let finish: ((stdout: string) => void) | undefined;
  let write: ((stream: "stdout" | "stderr", text: string) => void) | undefined;
  let startedJob: ((job: Job) => void) | undefined;
  const state = { killed: false };
  const started = new Promise<Job>((resolve) => {
    startedJob = resolve;
  });
  const behaviour = (job: Job, options: ExecutorRunOptions) => {
    options.onStart?.(job);
    write = (stream, text) => options.onOutput?.(stream, Buffer.from(text));
    startedJob?.(job);
    return new Promise<ExecResult>((resolve, reject) => {
      finish = (stdout) => resolve(okResult(job.id, stdout));
      options.signal?.addEventListener("abort", () => {
        state.killed = true;
        reject(new JobCancelledError("killed"));
      });
    });
  };
  return {
    behaviour,
    started,
    write: (stream: "stdout" | "stderr", text: string) => write?.(stream, text),
    finish: (stdout = "") => finish?.(stdout),
    get killed() {
      return state.killed;
    },
  };
}

/** The events of an SSE body: name, id and data. */
async function events(res: Response) {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "" && !block.startsWith(":"))
    .map((block) => {
      const fields = Object.fromEntries(
        block
          .split("\n")
          .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
      ) as Record<string, string>;
      return {
        event: fields["event"],
        id: fields["id"],
        data: JSON.parse(fields["data"] ?? "null"),
      };
    });
}

describe("every exec is an execution", () => {
  it("answers with Location, the result's id is the execution's, and the record has the result", async () => {
    const { app } = fakeApp();
    const res = await call(app, "POST", "/v1/exec", { body: EXEC });
    expect(res.status).toBe(200);
    const result = (await res.json()) as ExecResult;
    expect(res.headers.get("location")).toBe(`/v1/executions/${result.id}`);
    const record = await (await call(app, "GET", `/v1/executions/${result.id}`)).json();
    expect(record).toMatchObject({
      id: result.id,
      status: "done",
      profile: "shell",
      result: { id: result.id, stdout: "hi\n" },
      outputBytes: 3,
      outputDroppedBytes: 0,
    });
    expect(record).not.toHaveProperty("tenant");
    expect(record).not.toHaveProperty("instanceId");
  });

  it("with Prefer: respond-async answers 202 {id, status} at once; ?wait holds until it ends", async () => {
    const { app, executor } = fakeApp();
    const job = controllable();
    executor.behaviour = job.behaviour;
    const res = await call(app, "POST", "/v1/exec", {
      body: EXEC,
      headers: { prefer: "respond-async" },
    });
    expect(res.status).toBe(202);
    const { id, status } = (await res.json()) as { id: string; status: string };
    expect(status).toBe("queued");
    expect(res.headers.get("location")).toBe(`/v1/executions/${id}`);
    expect(res.headers.get("preference-applied")).toBe("respond-async");
    await job.started;
    const waiting = call(app, "GET", `/v1/executions/${id}?wait=30`);
    setTimeout(() => job.finish("late\n"), 50);
    const t0 = performance.now();
    const done = await (await waiting).json();
    expect(done).toMatchObject({ id, status: "done", result: { stdout: "late\n" } });
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it("refuses a wait above 60 s, naming it", async () => {
    const { app } = fakeApp();
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC })
    ).json()) as ExecResult;
    const res = await call(app, "GET", `/v1/executions/${id}?wait=61`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { code: "invalid_request", details: { field: "wait" } },
    });
  });

  it("is another tenant's 404 (read, list, events, cancel)", async () => {
    const { app } = fakeApp();
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC })
    ).json()) as ExecResult;
    for (const [method, path] of [
      ["GET", `/v1/executions/${id}`],
      ["GET", `/v1/executions/${id}/events`],
      ["DELETE", `/v1/executions/${id}`],
    ] as const) {
      const res = await call(app, method, path, { key: FAKE_KEY_B });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
    const list = await (await call(app, "GET", "/v1/executions", { key: FAKE_KEY_B })).json();
    expect(list).toEqual({ executions: [] });
    expect((await call(app, "GET", "/v1/executions/nope")).status).toBe(404);
  });

  it("lists newest first, filtered by status, with a limit", async () => {
    const { app, executor } = fakeApp();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(
        ((await (await call(app, "POST", "/v1/exec", { body: EXEC })).json()) as ExecResult).id,
      );
    }
    executor.behaviour = async () => {
      throw new JobCancelledError("gone");
    };
    await call(app, "POST", "/v1/exec", { body: EXEC });
    const all = (await (await call(app, "GET", "/v1/executions")).json()) as {
      executions: { id: string; status: string }[];
    };
    expect(all.executions.map((e) => e.status)).toEqual(["cancelled", "done", "done", "done"]);
    expect(all.executions.slice(1).map((e) => e.id)).toEqual([...ids].reverse());
    const done = (await (await call(app, "GET", "/v1/executions?status=done&limit=2")).json()) as {
      executions: { id: string; result?: unknown }[];
    };
    expect(done.executions.map((e) => e.id)).toEqual([ids[2], ids[1]]);
    expect(done.executions[0]).not.toHaveProperty("result");
    expect((await call(app, "GET", "/v1/executions?status=nope")).status).toBe(400);
  });

  it("records a service fault as failed, with its error", async () => {
    const { app, executor } = fakeApp();
    const { AirlockError } = await import("../../core/errors.ts");
    let id = "";
    executor.behaviour = async (job) => {
      id = job.id;
      throw new AirlockError("busy", "the queue is full", { retryAfterSeconds: 1 });
    };
    const res = await call(app, "POST", "/v1/exec", { body: EXEC });
    expect(res.status).toBe(429);
    expect(res.headers.get("location")).toBe(`/v1/executions/${id}`);
    expect(await (await call(app, "GET", `/v1/executions/${id}`)).json()).toMatchObject({
      status: "failed",
      error: { code: "busy", message: "the queue is full" },
    });
  });
});

describe("cancelling", () => {
  it("DELETE kills a running job; an ended one is 409", async () => {
    const { app, executor } = fakeApp();
    const job = controllable();
    executor.behaviour = job.behaviour;
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC, headers: { prefer: "respond-async" } })
    ).json()) as { id: string };
    await job.started;
    const res = await call(app, "DELETE", `/v1/executions/${id}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id, status: "cancelled" });
    expect(job.killed).toBe(true);
    // Cancelled already: the same answer again.
    expect((await call(app, "DELETE", `/v1/executions/${id}`)).status).toBe(200);
  });

  it("answers 409 conflict for a job that has ended", async () => {
    const { app } = fakeApp();
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC })
    ).json()) as ExecResult;
    const res = await call(app, "DELETE", `/v1/executions/${id}`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      error: { code: "conflict", details: { status: "done" } },
    });
  });

  it("a synchronous JSON client that leaves cancels its job, as it always did", async () => {
    const { app, executor } = fakeApp();
    const job = controllable();
    executor.behaviour = job.behaviour;
    const client = new AbortController();
    const answer = Promise.resolve(
      call(app, "POST", "/v1/exec", { body: EXEC, signal: client.signal }),
    ).catch(() => undefined);
    const started = await job.started;
    client.abort();
    await answer;
    await new Promise((r) => setTimeout(r, 20));
    expect(job.killed).toBe(true);
    expect(
      await (await call(app, "GET", `/v1/executions/${started.id}?wait=5`)).json(),
    ).toMatchObject({
      status: "cancelled",
    });
  });
});

describe("events", () => {
  it("replays the output with the ids the live stream gave, from the start or after an id", async () => {
    const { app, executor } = fakeApp();
    executor.behaviour = async (job, options) => {
      options.onStart?.(job);
      options.onOutput?.("stdout", Buffer.from("one\n"));
      options.onOutput?.("stderr", Buffer.from("two\n"));
      options.onOutput?.("stdout", Buffer.from("thr"));
      options.onOutput?.("stdout", Buffer.from("ee\n"));
      return okResult(job.id, "one\nthree\n");
    };
    const live = await call(app, "POST", "/v1/exec", {
      body: EXEC,
      headers: { accept: "text/event-stream" },
    });
    const id = (live.headers.get("location") ?? "").split("/").pop() as string;
    const liveEvents = await events(live);
    expect(liveEvents.map((e) => [e.event, e.id, e.data])).toEqual([
      ["stdout", "1", "one\n"],
      ["stderr", "2", "two\n"],
      ["stdout", "3", "thr"],
      ["stdout", "4", "ee\n"],
      ["result", undefined, expect.objectContaining({ id, stdout: "one\nthree\n" })],
    ]);
    const replayed = await events(await call(app, "GET", `/v1/executions/${id}/events`));
    expect(replayed).toEqual(liveEvents);
    const after = await events(
      await call(app, "GET", `/v1/executions/${id}/events`, { headers: { "last-event-id": "2" } }),
    );
    expect(after).toEqual(liveEvents.slice(2));
    const bad = await call(app, "GET", `/v1/executions/${id}/events`, {
      headers: { "last-event-id": "x" },
    });
    expect(bad.status).toBe(400);
  });

  it("follows a running job live, then sends how it ended", async () => {
    const { app, executor } = fakeApp();
    const job = controllable();
    executor.behaviour = job.behaviour;
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC, headers: { prefer: "respond-async" } })
    ).json()) as { id: string };
    await job.started;
    job.write("stdout", "before\n");
    const following = call(app, "GET", `/v1/executions/${id}/events`);
    setTimeout(() => job.write("stdout", "during\n"), 30);
    setTimeout(() => job.finish("before\nduring\n"), 60);
    const got = await events(await following);
    expect(got.map((e) => [e.event, e.id])).toEqual([
      ["stdout", "1"],
      ["stdout", "2"],
      ["result", undefined],
    ]);
  });

  it("ends with `end` for a cancelled job, and says what was dropped past the bound", async () => {
    const { state } = tempState({ limits: { maxOutputBytes: 6 } });
    const { app, executor } = fakeApp({ state });
    const job = controllable();
    executor.behaviour = job.behaviour;
    const { id } = (await (
      await call(app, "POST", "/v1/exec", { body: EXEC, headers: { prefer: "respond-async" } })
    ).json()) as { id: string };
    await job.started;
    job.write("stdout", "12345\n");
    job.write("stdout", "dropped\n");
    await call(app, "DELETE", `/v1/executions/${id}`);
    const got = await events(await call(app, "GET", `/v1/executions/${id}/events`));
    expect(got.map((e) => e.event)).toEqual(["stdout", "dropped", "end"]);
    expect(got[1]?.data).toMatchObject({ storedBytes: 6, droppedBytes: 8 });
    expect(got[2]?.data).toEqual({ id, status: "cancelled" });
  });
});

describe("the running write", () => {
  /** Executions on a temporary store whose status writes are listed, in order. */
  function recorded() {
    const { state } = tempState();
    const writes: string[] = [];
    const transition = state.executions.transition.bind(state.executions);
    state.executions.transition = (id, to, options) => {
      writes.push(to);
      return transition(id, to, options);
    };
    const executions = new Executions({ state, instanceId: "g", warn: () => {} });
    return { state, writes, executions };
  }
  const meta = (id: string) => ({ id, tenant: "t", profile: "shell" });

  it("a job that ends before RUNNING_AFTER_MS goes from queued to done in one write, with startedAt", async () => {
    const { writes, executions } = recorded();
    const started = await executions.start(meta("e1"), async (options) => {
      options.onStart?.({} as Job);
      return okResult("e1", "hi\n");
    });
    await started.result;
    expect(writes).toEqual(["done"]);
    const record = await executions.get("t", "e1");
    expect(record).toMatchObject({ status: "done", startedAt: expect.any(String) });
    expect(record?.startedAt).toBe(record?.endedAt);
    // Nothing is written once it has ended.
    await new Promise((r) => setTimeout(r, RUNNING_AFTER_MS + 30));
    expect(writes).toEqual(["done"]);
  });

  it("a longer job is written running after RUNNING_AFTER_MS; a reader here sees it running at once", async () => {
    const { state, writes, executions } = recorded();
    let finish = () => {};
    const run = async (options: ExecutorRunOptions) => {
      options.onStart?.({} as Job);
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return okResult("x");
    };
    const first = await executions.start(meta("e1"), run);
    await new Promise((r) => setTimeout(r, RUNNING_AFTER_MS + 50));
    expect(await state.executions.get("t", "e1")).toMatchObject({ status: "running" });
    finish();
    await first.result;
    expect(writes).toEqual(["running", "done"]);

    const second = await executions.start(meta("e2"), run);
    expect(await executions.get("t", "e2")).toMatchObject({
      status: "running",
      startedAt: expect.any(String),
    });
    expect((await executions.list("t", { limit: 5, status: "running" })).map((e) => e.id)).toEqual([
      "e2",
    ]);
    finish();
    await second.result;
    expect(writes).toEqual(["running", "done", "running", "done"]);
  });

  it("a job that fails after it started has startedAt; one that never started has none", async () => {
    const { executions } = recorded();
    const { AirlockError } = await import("../../core/errors.ts");
    for (const [id, starts] of [
      ["e1", true],
      ["e2", false],
    ] as const) {
      const started = await executions.start(meta(id), async (options) => {
        if (starts) options.onStart?.({} as Job);
        throw new AirlockError("busy", "no");
      });
      await started.result.catch(() => {});
    }
    expect(await executions.get("t", "e1")).toMatchObject({
      status: "failed",
      startedAt: expect.any(String),
    });
    expect((await executions.get("t", "e2"))?.startedAt).toBeUndefined();
  });
});

describe("a store that cannot record", () => {
  it("refuses the job with 503 state_unavailable, and runs nothing", async () => {
    const { state } = tempState({ maxBytes: 256 * 1024 });
    const { app, executor } = fakeApp({ state });
    // Fill the file to its cap, down to the last free bytes of its pages.
    let n = 0;
    for (const size of [20_000, 2000, 200, 1]) {
      for (;;) {
        const full = await state.executions
          .create({ id: `fill-${n++}`, tenant: "x", profile: "p".repeat(size), instanceId: "x" })
          .then(
            () => false,
            () => true,
          );
        if (full) break;
      }
    }
    const res = await call(app, "POST", "/v1/exec", { body: EXEC });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      error: { code: "state_unavailable", message: expect.stringMatching(/cannot grow/) },
    });
    expect(executor.jobs).toHaveLength(0);
  });
});
