// Approval checkpoints (fake clock), which rules a job meets, and the emergency
// stop's marker volumes (fake engine).
import { describe, expect, it } from "vitest";
import type { LabelledObject } from "../../executor/docker.ts";
import { ApprovalStore } from "../../policies/access/approvals.ts";
import { Checkpoints } from "../../policies/access/checkpoints.ts";
import { StopSwitch } from "../../policies/access/stop.ts";
import { okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const REQUEST = {
  tenant: "t",
  keyId: "k",
  profile: "shell",
  reasons: ["network"],
  commandDigest: "sha256:x",
  timeoutMs: 1000,
  scopes: ["exec" as const],
};
const JOB = { kind: "exec", request: { command: "true" } };

function clock() {
  let t = 5_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** An approval store on a real state store (a temporary SQLite file), on the clock `c`. */
function approvals(c = clock(), maxPendingPerTenant?: number) {
  const { state, dataDir } = tempState({ now: c.now });
  const store = new ApprovalStore({
    records: state.approvals,
    instanceId: "gw-1",
    now: c.now,
    ...(maxPendingPerTenant === undefined ? {} : { maxPendingPerTenant }),
  });
  return { store, state, dataDir, c };
}

describe("approvals", () => {
  it("hands the held job to exactly one approve, however many approve it", async () => {
    const { store } = approvals();
    const view = await store.create(REQUEST, 60_000, JOB);
    expect(view).toMatchObject({ status: "pending", scopes: ["exec"], reasons: ["network"] });
    const id = view?.id ?? "";
    expect((await store.list()).map((v) => v.id)).toEqual([id]);
    const both = await Promise.all([store.approve(id, "admin"), store.approve(id, "other")]);
    expect(both.map((o) => o?.view.status)).toEqual(["running", "running"]);
    expect(both.filter((o) => o?.job !== undefined).map((o) => o?.job)).toEqual([JOB]);
    const waiting = store.wait(id, 5000);
    await store.finish(id, { result: okResult("exec-1", "ran") });
    const done = await waiting;
    expect(done?.status).toBe("done");
    expect(done?.result?.stdout).toBe("ran");
    expect((await store.approve(id, "admin"))?.job).toBeUndefined();
    expect((await store.deny(id, "admin"))?.status).toBe("done");
    expect(await store.list()).toEqual([]);
  });

  it("never hands out a denied or expired job", async () => {
    const { store, c } = approvals();
    const denied = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    expect((await store.deny(denied, "admin"))?.status).toBe("denied");
    expect(await store.approve(denied, "admin")).toMatchObject({ view: { status: "denied" } });
    expect((await store.approve(denied, "admin"))?.job).toBeUndefined();
    const expiring = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    c.advance(60_000);
    expect((await store.get(expiring))?.status).toBe("expired");
    expect((await store.approve(expiring, "admin"))?.job).toBeUndefined();
  });

  it("a waiter wakes when the approval is decided; a short wait answers pending", async () => {
    const { store } = approvals();
    const id = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    const waiting = store.wait(id, 10_000);
    const t0 = performance.now();
    await store.deny(id, "admin");
    expect((await waiting)?.status).toBe("denied");
    expect(performance.now() - t0).toBeLessThan(500);
    const other = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    expect((await store.wait(other, 10))?.status).toBe("pending");
  });

  it("a failed job keeps its error code", async () => {
    const { store } = approvals();
    const id = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    await store.approve(id, "admin");
    await store.finish(id, { error: { code: "stopped", message: "stopped by operator" } });
    const failed = await store.get(id);
    expect(failed?.status).toBe("failed");
    expect(failed?.error).toEqual({ code: "stopped", message: "stopped by operator" });
  });

  it("cancels a tenant's pending approvals; refuses past the pending limit", async () => {
    const { store } = approvals(clock(), 2);
    const a = (await store.create(REQUEST, 60_000, JOB))?.id ?? "";
    const b = (await store.create({ ...REQUEST, tenant: "u" }, 60_000, JOB))?.id ?? "";
    expect(await store.create(REQUEST, 60_000, JOB)).toBeDefined();
    expect(await store.create(REQUEST, 60_000, JOB)).toBeUndefined();
    expect(await store.cancelPending("t", "admin")).toBe(2);
    expect((await store.get(a))?.status).toBe("cancelled");
    expect((await store.get(b))?.status).toBe("pending");
  });

  it("a pending approval, and its job, are there again after a restart", async () => {
    const c = clock();
    const first = approvals(c);
    const id = (await first.store.create(REQUEST, 60_000, JOB))?.id ?? "";
    await first.state.close();
    const { state } = tempState({ dataDir: first.dataDir, now: c.now });
    const again = new ApprovalStore({ records: state.approvals, instanceId: "gw-1" });
    expect(await again.get(id)).toMatchObject({ id, status: "pending", scopes: ["exec"] });
    expect((await again.approve(id, "admin"))?.job).toEqual(JOB);
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
