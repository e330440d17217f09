// The kill controller against engines that answer, hang or fail.
import { describe, expect, it } from "vitest";
import type { ContainerClient, Usage } from "../../executor/docker.ts";
import { KillSwitch, USAGE_SAMPLE_MS } from "../../executor/kill-switch.ts";

const CONFIRM_MS = 30;
const SAMPLE_MS = 20;
const never = new Promise<never>(() => {});

/** Only what the kill switch calls: usage and kill, each answering, hanging or failing. */
function engine(behaviour: {
  usage?: "ok" | "fail" | "hang";
  kill?: "ok" | "fail" | "hang";
  /** The usage sample answers this late. */
  usageDelayMs?: number;
}) {
  const calls: string[] = [];
  const answer = async <T>(how: string | undefined, name: string, value: T): Promise<T> => {
    calls.push(name);
    if (how === "hang") return never;
    if (name === "usage" && behaviour.usageDelayMs !== undefined)
      await new Promise((resolve) => setTimeout(resolve, behaviour.usageDelayMs));
    if (how === "fail") throw Object.assign(new Error(`${name} failed`), { statusCode: 500 });
    return value;
  };
  const usage: Usage = { cpuMs: 12, memoryPeakBytes: 3456 };
  const client = {
    usage: () => answer(behaviour.usage, "usage", usage),
    kill: () => answer(behaviour.kill, "kill", undefined),
  } as unknown as ContainerClient;
  return { client, calls };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("KillSwitch", () => {
  it("samples the cgroup, then kills, once, for the first reason given", async () => {
    const { client, calls } = engine({});
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    kill.kill("output_limit");
    kill.kill("timeout");
    await kill.sent();
    expect(calls).toEqual(["usage", "kill"]);
    expect(kill.reason).toBe("output_limit");
    expect(kill.usage).toEqual({ cpuMs: 12, memoryPeakBytes: 3456 });
    kill.dispose();
  });

  it("kills even when the engine has no usage to give", async () => {
    const { client, calls } = engine({ usage: "fail" });
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    kill.kill("cancelled");
    await kill.sent();
    expect(calls).toEqual(["usage", "kill"]);
    expect(kill.usage).toBeUndefined();
    kill.dispose();
  });

  it("kills at the deadline, and not once disarmed", async () => {
    const { client } = engine({});
    const late = new KillSwitch(client, "c1", CONFIRM_MS);
    late.armDeadline(5);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(late.reason).toBe("timeout");
    late.dispose();
    const early = new KillSwitch(client, "c2", CONFIRM_MS);
    early.armDeadline(5);
    early.disarmDeadline();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(early.reason).toBeUndefined();
    early.dispose();
  });

  it("without a kill, waits for the exit however long it takes, and has nothing to send", async () => {
    const { client, calls } = engine({});
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    await kill.sent();
    const exit = Promise.withResolvers<number>();
    const confirmed = kill.confirmExit(exit.promise);
    await new Promise((resolve) => setTimeout(resolve, CONFIRM_MS * 2));
    exit.resolve(0);
    expect(await confirmed).toBe(0);
    expect(calls).toEqual([]);
  });

  it("takes the exit the engine confirms in time after a kill", async () => {
    const { client } = engine({});
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    kill.kill("timeout");
    expect(await kill.confirmExit(Promise.resolve(137))).toBe(137);
    kill.dispose();
  });

  it("gives up on an engine that neither kills nor says the container ended", async () => {
    const { client } = engine({ kill: "hang" });
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    const t0 = performance.now();
    kill.kill("timeout");
    expect(await kill.confirmExit(never)).toBeUndefined();
    await kill.sent();
    expect(performance.now() - t0).toBeLessThan(CONFIRM_MS + 200);
    expect(await Promise.race([kill.gaveUp, tick().then(() => "pending")])).toBe("gave up");
    kill.dispose();
  });

  it("kills promptly when the engine's usage sample hangs, and reports no figure", async () => {
    const { client, calls } = engine({ usage: "hang" });
    const kill = new KillSwitch(client, "c1");
    const t0 = performance.now();
    kill.kill("timeout");
    await kill.sent();
    expect(calls).toEqual(["usage", "kill"]);
    expect(performance.now() - t0).toBeLessThan(USAGE_SAMPLE_MS + 250);
    expect(kill.usage).toBeUndefined();
    kill.dispose();
  });

  it("keeps a figure that comes in time, and drops one that comes after the kill", async () => {
    for (const [delayMs, kept] of [
      [5, true],
      [SAMPLE_MS * 3, false],
    ] as const) {
      const { client, calls } = engine({ usage: "ok", usageDelayMs: delayMs });
      const kill = new KillSwitch(client, "c1", CONFIRM_MS, SAMPLE_MS);
      kill.kill("timeout");
      await kill.sent();
      expect(calls).toEqual(["usage", "kill"]);
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS * 4));
      expect(kill.usage !== undefined).toBe(kept);
      kill.dispose();
    }
  });

  it("reports a failed kill to whoever waits for it, and to nobody else", async () => {
    const { client } = engine({ kill: "fail" });
    const waited = new KillSwitch(client, "c1", CONFIRM_MS);
    waited.kill("timeout");
    await expect(waited.sent()).rejects.toThrow("kill failed");
    waited.dispose();
    // Never waited for: no unhandled rejection (vitest fails the run on one).
    const dropped = new KillSwitch(client, "c2", CONFIRM_MS);
    dropped.kill("cancelled");
    await new Promise((resolve) => setTimeout(resolve, 10));
    dropped.dispose();
  });

  it("stops its timers when disposed: no give-up and no deadline kill afterwards", async () => {
    const { client, calls } = engine({ kill: "hang" });
    const kill = new KillSwitch(client, "c1", CONFIRM_MS);
    kill.armDeadline(5);
    kill.dispose();
    await new Promise((resolve) => setTimeout(resolve, CONFIRM_MS * 2));
    expect(calls).toEqual([]);
    expect(await Promise.race([kill.gaveUp, tick().then(() => "pending")])).toBe("pending");
  });
});
