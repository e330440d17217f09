// Phase timings (core/timing.ts): marks land on the clock of the request they
// belong to, even when requests interleave or a job waits in the queue behind
// another request's; and with AIRLOCK_SERVER_TIMING an exec's answer says
// where its time went.
import { describe, expect, it } from "vitest";
import { PhaseClock, parseServerTiming, phase, timed } from "../../core/timing.ts";
import { JobQueue } from "../../executor/queue.ts";
import { FAKE_KEY, fakeApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("phase timings", () => {
  it("a mark goes to the clock of its own request; outside one it is a no-op", async () => {
    phase("nobody's");
    const a = new PhaseClock();
    const b = new PhaseClock();
    await Promise.all([
      timed(a, async () => {
        await tick();
        phase("one");
        await tick();
        phase("two");
      }),
      timed(b, async () => {
        phase("only");
      }),
    ]);
    expect(a.phases.map(([name]) => name)).toEqual(["one", "two"]);
    expect(b.phases.map(([name]) => name)).toEqual(["only"]);
    const parsed = parseServerTiming(a.header());
    expect([...parsed.keys()]).toEqual(["one", "two", "total"]);
    expect(parsed.get("total")).toBeGreaterThanOrEqual((parsed.get("one") ?? 0) + 0);
  });

  it("a queued job marks its own request's clock, not the one whose end let it start", async () => {
    const queue = new JobQueue({ concurrency: 1, maxQueue: 10 });
    const first = new PhaseClock();
    const second = new PhaseClock();
    let release: (() => void) | undefined;
    const running = timed(first, () =>
      queue.run(async () => {
        phase("first job");
        await new Promise<void>((r) => {
          release = r;
        });
      }),
    );
    const queued = timed(second, () => queue.run(async () => phase("second job")));
    await tick();
    release?.();
    await Promise.all([running, queued]);
    expect(first.phases.map(([name]) => name)).toEqual(["first job"]);
    expect(second.phases.map(([name]) => name)).toEqual(["second job"]);
  });

  it("with serverTiming, an exec's answer carries its phases; without, none", async () => {
    for (const serverTiming of [true, false]) {
      const { app, executor } = fakeApp({ serverTiming });
      executor.behaviour = async (job, options) => {
        options.onStart?.(job);
        return okResult(job.id, "hi\n");
      };
      const res = await app.request("/v1/exec", {
        method: "POST",
        headers: { authorization: `Bearer ${FAKE_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ profile: "shell", command: ["echo", "hi"] }),
      });
      expect(res.status).toBe(200);
      const header = res.headers.get("server-timing");
      if (!serverTiming) {
        expect(header).toBeNull();
        continue;
      }
      expect([...parseServerTiming(header).keys()]).toEqual([
        "auth",
        "validate",
        "admission",
        "store",
        "answer",
        "total",
      ]);
    }
  });
});
