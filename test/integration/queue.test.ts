// Backpressure against a real engine: past the queue, 429 busy with
// Retry-After; every accepted job still completes.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 1, maxQueue: 1 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

it("answers 429 busy with Retry-After past the queue, and finishes every accepted job", async () => {
  const body = { profile: "shell", command: "sleep 1; echo done" };
  const responses = await Promise.all(
    [0, 1, 2, 3].map(async (i) => {
      // Stagger slightly so that arrival order is deterministic.
      await new Promise((r) => setTimeout(r, i * 50));
      return gw.post("/v1/exec", body);
    }),
  );
  const statuses = responses.map((r) => r.status);
  expect(statuses.filter((s) => s === 200)).toHaveLength(2);
  expect(statuses.filter((s) => s === 429)).toHaveLength(2);
  for (const res of responses) {
    const json = (await res.json()) as {
      status?: string;
      stdout?: string;
      error?: { code: string; message: string };
    };
    if (res.status === 200) {
      expect(json).toMatchObject({ status: "ok", stdout: "done\n" });
    } else {
      expect(json.error?.code).toBe("busy");
      expect(json.error?.message).toContain("queue is full");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
  }
});
