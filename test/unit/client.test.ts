import { describe, expect, it } from "vitest";
import { AirlockApiError, createClient, type ExecEvent } from "../../client/index.ts";
import { FAKE_KEY, fakeApp } from "../support/fake-app.ts";
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

  it("aborts the request when the consumer stops iterating", async () => {
    const { client, executor } = setup();
    let aborted: Promise<void> | undefined;
    executor.behaviour = (job, options) => {
      aborted = new Promise((resolve) =>
        options.signal?.addEventListener("abort", () => resolve()),
      );
      options.onOutput?.("stdout", Buffer.from("tick\n"));
      return aborted.then(() => okResult(job.id));
    };
    for await (const e of client.execStream({ profile: "shell", command: "x" })) {
      expect(e).toEqual({ type: "stdout", data: "tick\n" });
      break;
    }
    await expect(aborted).resolves.toBeUndefined();
  });
});
