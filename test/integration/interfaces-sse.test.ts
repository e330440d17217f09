// Server-Sent Events through the typed client on a real engine: output arrives
// as the process writes it; a client that goes away leaves its job running (an
// execution), which DELETE kills.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AirlockClient, createClient, type ExecEvent } from "../../client/index.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
let client: AirlockClient;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
  client = createClient({ baseUrl: gw.url, apiKey: gw.key });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

const COUNT = "for i in 1 2 3; do echo $i; sleep 1; done";

/** Each event with the ms since the request started. */
async function timed(events: AsyncIterable<ExecEvent>) {
  const start = performance.now();
  const out: { at: number; event: ExecEvent }[] = [];
  for await (const event of events) out.push({ at: performance.now() - start, event });
  return out;
}

function expectLive(events: { at: number; event: ExecEvent }[]) {
  const stdout = events.filter((e) => e.event.type === "stdout");
  const result = events.at(-1);
  expect(stdout.map((e) => (e.event as { data: string }).data).join("")).toBe("1\n2\n3\n");
  expect(result?.event.type).toBe("result");
  // The process sleeps 2 s after its first line: a buffered stream would deliver
  // the first event together with the result.
  expect((result?.at ?? 0) - (stdout[0]?.at ?? 0)).toBeGreaterThan(1500);
  expect(events.filter((e) => e.event.type === "result")).toHaveLength(1);
}

describe("SSE", () => {
  it("/v1/exec streams the first line well before the process ends", async () => {
    expectLive(await timed(client.execStream({ profile: "shell", command: COUNT })));
  });

  it("workspace exec streams too", async () => {
    const ws = await client.workspaces.create({ profile: "shell" });
    try {
      expectLive(await timed(client.workspaces.execStream(ws.id, { command: COUNT })));
    } finally {
      await client.workspaces.delete(ws.id);
    }
  });

  it("a client that disconnects leaves its job running, until it is cancelled", async () => {
    for await (const event of client.execStream({
      profile: "shell",
      command: "echo started; sleep 60; echo never",
      limits: { timeoutMs: 120_000 },
    })) {
      expect(event).toEqual({ type: "stdout", data: "started\n" });
      break; // closes the connection
    }
    await new Promise((r) => setTimeout(r, 1000));
    const { executions } = await client.listExecutions({ status: "running" });
    expect(executions).toHaveLength(1);
    expect((await gw.leftovers()).containers).toBeGreaterThan(0);
    const started = performance.now();
    await client.cancelExecution(executions[0]?.id ?? "");
    // The container goes long before the 60 s sleep would have ended.
    for (;;) {
      const left = await gw.leftovers();
      if (left.containers === 0) break;
      expect(performance.now() - started).toBeLessThan(30_000);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});
