// Approval checkpoints (fake clock), which rules a job meets, and the emergency
// stop's marker volumes (fake engine).
import { describe, expect, it } from "vitest";
import type { LabelledObject } from "../../executor/docker.ts";
import { ApprovalStore } from "../../policies/access/approvals.ts";
import { Checkpoints } from "../../policies/access/checkpoints.ts";
import { StopSwitch } from "../../policies/access/stop.ts";
import { okResult } from "../support/fake-executor.ts";

const REQUEST = {
  tenant: "t",
  keyId: "k",
  profile: "shell",
  reasons: ["network"],
  commandDigest: "sha256:x",
  timeoutMs: 1000,
  scopes: ["exec" as const],
};

function clock() {
  let t = 5_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("approvals", () => {
  it("runs an approved job exactly once, however many approve it", async () => {
    const c = clock();
    const store = new ApprovalStore({ now: c.now });
    let runs = 0;
    const view = store.create(REQUEST, 60_000, async (id) => {
      runs++;
      return okResult(id, "ran");
    });
    expect(view.status).toBe("pending");
    expect(store.list().map((v) => v.id)).toEqual([view.id]);
    expect(store.approve(view.id, "admin")?.status).toBe("running");
    expect(store.approve(view.id, "admin")?.status).toBe("running");
    const done = await store.wait(view.id, 5000);
    expect(done?.status).toBe("done");
    expect(done?.result?.stdout).toBe("ran");
    expect(store.approve(view.id, "admin")?.status).toBe("done");
    expect(store.deny(view.id, "admin")?.status).toBe("done");
    expect(runs).toBe(1);
    expect(store.list()).toEqual([]);
  });

  it("never runs a denied or expired job", async () => {
    const c = clock();
    const store = new ApprovalStore({ now: c.now });
    let runs = 0;
    const run = async (id: string) => {
      runs++;
      return okResult(id);
    };
    const denied = store.create(REQUEST, 60_000, run);
    expect(store.deny(denied.id, "admin")?.status).toBe("denied");
    expect(store.approve(denied.id, "admin")?.status).toBe("denied");
    const expiring = store.create(REQUEST, 60_000, run);
    c.advance(60_000);
    expect(store.get(expiring.id)?.status).toBe("expired");
    expect(store.approve(expiring.id, "admin")?.status).toBe("expired");
    expect(runs).toBe(0);
  });

  it("a waiter wakes when the approval is decided", async () => {
    const store = new ApprovalStore();
    const view = store.create(REQUEST, 60_000, async (id) => okResult(id));
    const waiting = store.wait(view.id, 10_000);
    store.deny(view.id, "admin");
    expect((await waiting)?.status).toBe("denied");
    // A short wait on a pending approval answers "pending" when it runs out.
    const other = store.create(REQUEST, 60_000, async (id) => okResult(id));
    expect((await store.wait(other.id, 10))?.status).toBe("pending");
  });

  it("a failed job reports its error code; finished approvals are forgotten after retainMs", async () => {
    const c = clock();
    const store = new ApprovalStore({ now: c.now, retainMs: 1000 });
    const view = store.create(REQUEST, 60_000, async () => {
      throw Object.assign(new Error("stopped by operator"), { code: "stopped" });
    });
    store.approve(view.id, "admin");
    const failed = await store.wait(view.id, 5000);
    expect(failed?.status).toBe("failed");
    expect(failed?.error).toEqual({ code: "stopped", message: "stopped by operator" });
    c.advance(1000);
    expect(store.get(view.id)).toBeUndefined();
  });

  it("cancels a tenant's pending approvals", () => {
    const store = new ApprovalStore();
    const a = store.create(REQUEST, 60_000, async (id) => okResult(id));
    const b = store.create({ ...REQUEST, tenant: "u" }, 60_000, async (id) => okResult(id));
    expect(store.cancelPending("t", "admin")).toBe(1);
    expect(store.get(a.id)?.status).toBe("cancelled");
    expect(store.get(b.id)?.status).toBe("pending");
    expect(store.pendingCount("u")).toBe(1);
  });
});

describe("checkpoints", () => {
  const shell = { name: "shell", network: "none" };
  const web = { name: "web", network: "bridge" };
  const none = { network: false, firstUseOfProfile: false };

  it("names each rule a job meets; none for a job under them", () => {
    const cp = new Checkpoints();
    const rules = { ...none, network: true, jobsOverSeconds: 10 };
    expect(cp.reasons("k", rules, web, 20_000)).toEqual(["network", "jobsOverSeconds"]);
    expect(cp.reasons("k", rules, shell, 10_000)).toEqual([]);
    expect(cp.reasons("k", none, web, 999_000)).toEqual([]);
  });

  it("asks on a key's first use of a profile until a job of it there is approved", () => {
    const cp = new Checkpoints();
    const rules = { ...none, firstUseOfProfile: true };
    expect(cp.reasons("k", rules, shell, 1000)).toEqual(["firstUseOfProfile"]);
    expect(cp.reasons("k", rules, shell, 1000)).toEqual(["firstUseOfProfile"]);
    cp.approved("k", "shell");
    expect(cp.reasons("k", rules, shell, 1000)).toEqual([]);
    expect(cp.reasons("other", rules, shell, 1000)).toEqual(["firstUseOfProfile"]);
  });

  it("asks for every Nth job of each key", () => {
    const cp = new Checkpoints();
    const rules = { ...none, everyNOperations: 3 };
    const asked = (key: string) => cp.reasons(key, rules, shell, 1000).length > 0;
    expect([asked("a"), asked("a"), asked("b"), asked("a"), asked("a")]).toEqual([
      false,
      false,
      false,
      true,
      false,
    ]);
  });
});

/** Volumes in a map: enough of the engine for the stop switch. */
function fakeEngine() {
  const volumes = new Map<string, Record<string, string>>();
  return {
    volumes,
    async createVolume(name: string, labels: Record<string, string>) {
      if (volumes.has(name)) throw Object.assign(new Error("exists"), { statusCode: 409 });
      volumes.set(name, labels);
    },
    async removeVolume(name: string) {
      volumes.delete(name);
    },
    async listVolumes(label: string): Promise<LabelledObject[]> {
      return [...volumes]
        .filter(([, labels]) => labels[label] !== undefined)
        .map(([id, labels]) => ({ id, labels }));
    },
  };
}

describe("emergency stop", () => {
  it("aborts the tenant's signal, and a new gateway on the same engine sees the stop", async () => {
    const engine = fakeEngine();
    const sw = new StopSwitch(engine);
    const signal = sw.signal("alpha");
    const other = sw.signal("beta");
    await sw.stop("alpha");
    expect(signal.aborted).toBe(true);
    expect(other.aborted).toBe(false);
    expect(sw.stoppedFor("alpha")?.target).toBe("tenant");
    expect(sw.stoppedFor("beta")).toBeUndefined();

    const restarted = new StopSwitch(engine);
    expect(restarted.stoppedFor("alpha")).toBeUndefined();
    await restarted.refresh();
    expect(restarted.stoppedFor("alpha")?.target).toBe("tenant");
    await restarted.resume("alpha");
    expect(engine.volumes.size).toBe(0);
    expect(restarted.stoppedFor("alpha")).toBeUndefined();
    expect(restarted.signal("alpha").aborted).toBe(false);
  });

  it("a stop of everything aborts every tenant; resume without a tenant lifts every stop", async () => {
    const engine = fakeEngine();
    const sw = new StopSwitch(engine);
    const a = sw.signal("a");
    const b = sw.signal("b");
    await sw.stop("b");
    await sw.stop();
    expect(a.aborted && b.aborted).toBe(true);
    expect(sw.stoppedFor("zzz")?.target).toBe("all");
    expect(sw.state().all).not.toBeNull();
    expect(sw.state().tenants.map((t) => t.tenant)).toEqual(["b"]);
    await sw.resume();
    expect(sw.state()).toEqual({ all: null, tenants: [] });
    expect(engine.volumes.size).toBe(0);
    expect(sw.signal("a").aborted).toBe(false);
  });
});
