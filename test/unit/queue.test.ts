// The job queue's admission: slots first, then a bounded backlog, then busy.
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import { JobQueue } from "../../executor/queue.ts";

/** A task that runs until released. */
function held() {
  let release = () => {};
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { task: () => done, release: () => release() };
}

async function busyError(p: Promise<unknown>): Promise<AirlockError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AirlockError);
  return err as AirlockError;
}

describe("JobQueue", () => {
  it("with maxQueue 0 runs jobs while slots are free and refuses only when all are taken", async () => {
    const queue = new JobQueue({ concurrency: 2, maxQueue: 0 });
    const a = held();
    const b = held();
    const ra = queue.run(a.task);
    const rb = queue.run(b.task);
    expect(queue.running).toBe(2);
    const refused = await busyError(queue.run(async () => {}));
    expect(refused.code).toBe("busy");
    expect(refused.message).toContain("limit 0");
    expect(refused.message).toContain("the job queue is full");
    // Another queue (archive imports) names itself.
    const imports = new JobQueue({ concurrency: 1, maxQueue: 0, name: "archive import" });
    const c = held();
    const rc = imports.run(c.task);
    expect((await busyError(imports.run(async () => {}))).message).toContain(
      "the archive import queue is full",
    );
    c.release();
    await rc;
    a.release();
    await ra;
    await expect(queue.run(async () => "ran")).resolves.toBe("ran");
    b.release();
    await rb;
  });

  it("keeps maxQueue jobs waiting behind full slots, then answers busy with Retry-After", async () => {
    const queue = new JobQueue({ concurrency: 1, maxQueue: 2 });
    const first = held();
    const running = queue.run(first.task);
    const waiting = [queue.run(async () => 1), queue.run(async () => 2)];
    expect(queue.waiting).toBe(2);
    const refused = await busyError(queue.run(async () => 3));
    expect(refused.code).toBe("busy");
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    first.release();
    await running;
    await expect(Promise.all(waiting)).resolves.toEqual([1, 2]);
  });
});
