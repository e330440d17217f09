// The pieces replicas are made of, without Docker: the peers' request
// signature (api/replicas.ts), a rate limit counted in a shared store
// (SharedRateLimiter) and a stop kept in one (StopSwitch with StopRecords),
// each seen by two "gateways" on one embedded store; and an async job's
// 202, which promises it runs: its job slot is taken before the answer.
import { describe, expect, it } from "vitest";
import { PEER_HEADER, sign, signedByPeer } from "../../api/replicas.ts";
import type { Job } from "../../core/job.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ClusterRecords } from "../../core/state.ts";
import { SharedQuotaLedger } from "../../policies/access/quota.ts";
import { SharedRateLimiter } from "../../policies/access/rate-limit.ts";
import { StopSwitch } from "../../policies/access/stop.ts";
import { GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const SECRET = "0123456789abcdef-peer";

/** An engine's marker volumes, in memory: a stop kept in the store must leave none. */
function markerVolumes() {
  const volumes = new Map<string, Record<string, string>>();
  return {
    async createVolume(name: string, labels: Record<string, string>) {
      volumes.set(name, labels);
    },
    async removeVolume(name: string) {
      volumes.delete(name);
    },
    async listVolumes(label: string) {
      return [...volumes]
        .filter(([, labels]) => labels[label] !== undefined)
        .map(([id, labels]) => ({ id, labels }));
    },
  };
}

function signed(path: string, at: number, secret = SECRET, method = "GET"): Request {
  return new Request(`http://gw${path}`, {
    method,
    headers: { [PEER_HEADER]: `${at}.${sign(secret, at, method, path)}` },
  });
}

describe("the peers' signature", () => {
  it("holds for the same secret, method and path within a minute", () => {
    const now = Date.now();
    expect(signedByPeer(SECRET, signed("/v1/workspaces/ws_1/files?path=a", now), now)).toBe(true);
    expect(signedByPeer(SECRET, new Request("http://gw/v1/x"), now)).toBeUndefined();
  });

  it("fails for another secret, another path, or an old signature", () => {
    const now = Date.now();
    expect(signedByPeer(SECRET, signed("/v1/a", now, "another-secret-0000"), now)).toBe(false);
    const moved = new Request("http://gw/v1/b", { headers: signed("/v1/a", now).headers });
    expect(signedByPeer(SECRET, moved, now)).toBe(false);
    expect(signedByPeer(SECRET, signed("/v1/a", now - 120_000), now)).toBe(false);
    const garbage = new Request("http://gw/v1/a", { headers: { [PEER_HEADER]: "x.y" } });
    expect(signedByPeer(SECRET, garbage, now)).toBe(false);
  });
});

describe("shared through the store", () => {
  it("a rate limit counts every gateway's requests", async () => {
    const { state } = tempState();
    const cluster = state.cluster as ClusterRecords;
    const [one, two] = [new SharedRateLimiter(cluster.rates), new SharedRateLimiter(cluster.rates)];
    const limits = { exec: { perMinute: 2 } };
    expect(await one.take("k:1", ["exec"], limits)).toBeUndefined();
    expect(await two.take("k:1", ["exec"], limits)).toBeUndefined();
    expect(await one.take("k:1", ["exec"], limits)).toMatchObject({
      scope: "exec",
      window: "perMinute",
      limit: 2,
    });
    // Another key, or a scope without a rule, is not counted against it.
    expect(await two.take("k:2", ["exec"], limits)).toBeUndefined();
    expect(await two.take("k:1", ["files.read"], limits)).toBeUndefined();
  });

  it("quotas: one tenant's job slots and hourly budget hold across gateways", async () => {
    const { state } = tempState();
    const counters = (state.cluster as ClusterRecords).quotas;
    const [one, two] = [
      new SharedQuotaLedger(counters, "g1"),
      new SharedQuotaLedger(counters, "g2"),
    ];
    const quotas = { concurrentJobs: 1, cpuSecondsPerHour: 1 };
    const slot = await one.acquire("t", quotas);
    expect("release" in slot).toBe(true);
    expect(await two.acquire("t", quotas)).toMatchObject({ limit: "concurrentJobs", used: 1 });
    expect(await two.used("t")).toMatchObject({ running: 1 });
    if ("release" in slot) await slot.release();
    await two.record("t", 1500, 1600);
    expect(await one.check("t", quotas)).toMatchObject({ limit: "cpuSecondsPerHour", used: 1.5 });
    expect(await one.used("t")).toEqual({ cpuSeconds: 1.5, containerSeconds: 1.6, running: 0 });
    // A job's usage is written once its answer is on its way, not beside it.
    let answer = () => {};
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    two.record("t", 500, 500, answered);
    await new Promise((r) => setTimeout(r, 10));
    expect(await one.used("t")).toMatchObject({ cpuSeconds: 1.5 });
    answer();
    await until(async () => (await one.used("t")).cpuSeconds === 2);
  });

  it("a tenant without concurrentJobs: a job is counted as running only once it has run a while", async () => {
    const { state } = tempState();
    const store = (state.cluster as ClusterRecords).quotas;
    let writes = 0;
    const counters = Object.create(store) as ClusterRecords["quotas"];
    counters.acquireSlot = (...args) => {
      writes++;
      return store.acquireSlot(...args);
    };
    const ledger = new SharedQuotaLedger(counters, "g1", Date.now, 50);
    const quick = await ledger.acquire("t", {});
    if ("release" in quick) await quick.release();
    const long = await ledger.acquire("t", {});
    await until(async () => (await ledger.used("t")).running === 1);
    if ("release" in long) await long.release();
    await until(async () => (await ledger.used("t")).running === 0);
    await new Promise((r) => setTimeout(r, 100));
    // The quick job never reached the store.
    expect(writes).toBe(1);
  });

  it("a stop made on one gateway aborts the other's jobs at its next refresh, and survives", async () => {
    const { state } = tempState();
    const stops = (state.cluster as ClusterRecords).stops;
    const engine = markerVolumes();
    const [here, there] = [
      new StopSwitch(engine, Date.now, stops),
      new StopSwitch(engine, Date.now, stops),
    ];
    const signal = there.signal("t1");
    await here.stop("t1");
    expect(signal.aborted).toBe(false);
    await there.refresh();
    expect(signal.aborted).toBe(true);
    expect(there.stoppedFor("t1")?.target).toBe("tenant");
    // No marker volume: the store holds it.
    expect(await engine.listVolumes("airlock.stop")).toEqual([]);
    const restarted = new StopSwitch(engine, Date.now, stops);
    await restarted.refresh();
    expect(restarted.state().tenants.map((t) => t.tenant)).toEqual(["t1"]);
    await restarted.resume();
    await here.refresh();
    expect(here.stoppedFor("t1")).toBeUndefined();
  });
});

async function until(ok: () => Promise<boolean>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The store's counters, with 50 ms more to take a job slot. */
function slowSlots(cluster: ClusterRecords): ClusterRecords {
  const quotas = Object.create(cluster.quotas) as ClusterRecords["quotas"];
  quotas.acquireSlot = async (...args) => {
    await new Promise((r) => setTimeout(r, 50));
    return cluster.quotas.acquireSlot(...args);
  };
  return Object.assign(Object.create(cluster) as ClusterRecords, { quotas });
}

describe("an async job's 202 means admitted", () => {
  /** Two gateways on one store, tenant a limited to one job at a time; gateway one's jobs wait for `finish`. */
  function twoGateways(shared: boolean) {
    const { state } = tempState();
    const cluster = shared ? (state.cluster as ClusterRecords) : undefined;
    const options = { state, requireApproval: {}, quotas: { concurrentJobs: 1 } };
    // Gateway one's store is far away (as PostgreSQL is): its slot takes a while.
    const one = gatedApp({ ...options, cluster: cluster && slowSlots(cluster), instanceId: "g1" });
    const two = shared ? gatedApp({ ...options, cluster, instanceId: "g2" }) : one;
    let finish: (() => void) | undefined;
    const ran: string[] = [];
    one.executor.behaviour = (job: Job, options) => {
      ran.push(job.id);
      options.onStart?.(job);
      return new Promise<ExecResult>((resolve) => {
        finish = () => resolve(okResult(job.id, "late\n"));
      });
    };
    const exec = (app: typeof one.app, headers: Record<string, string> = {}) =>
      app.request("/v1/exec", {
        method: "POST",
        headers: {
          authorization: `Bearer ${GATED_KEYS.runner}`,
          "content-type": "application/json",
          ...headers,
        },
        body: JSON.stringify({ profile: "shell", command: "x" }),
      });
    return { one, two, exec, ran, finish: () => finish?.() };
  }

  for (const shared of [false, true]) {
    it(`holds the slot before answering, so a rival is the 429 (${shared ? "shared store" : "one gateway"})`, async () => {
      const { one, two, exec, ran, finish } = twoGateways(shared);
      const accepted = await exec(one.app, { prefer: "respond-async" });
      expect(accepted.status).toBe(202);
      const { id } = (await accepted.json()) as { id: string };
      // At once, before the first job has even started: the slot is already its.
      const rival = await exec(two.app);
      expect(rival.status).toBe(429);
      expect(await rival.json()).toMatchObject({
        error: { code: "quota_exceeded", details: { limit: "concurrentJobs" } },
      });
      const read = async () =>
        (await (
          await one.app.request(`/v1/executions/${id}?wait=5`, {
            headers: { authorization: `Bearer ${GATED_KEYS.runner}` },
          })
        ).json()) as { status: string; error?: unknown };
      for (let i = 0; i < 100 && ran.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      finish();
      expect(await read()).toMatchObject({ status: "done" });
      expect(ran).toEqual([id]);
      // The slot came back with its end.
      one.executor.behaviour = async (job: Job) => okResult(job.id, "ok\n");
      const after = await exec(two.app);
      expect(after.status).toBe(200);
    });
  }

  it("gives the slot back when the job is refused after admission took it", async () => {
    const { one, exec } = twoGateways(true);
    const refused = await one.app.request("/v1/exec", {
      method: "POST",
      headers: {
        authorization: `Bearer ${GATED_KEYS.runner}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ profile: "shell", command: "x", networks: ["nowhere"] }),
    });
    expect(refused.status).toBe(403);
    one.executor.behaviour = async (job: Job) => okResult(job.id, "ok\n");
    expect((await exec(one.app)).status).toBe(200);
    expect((await exec(one.app)).status).toBe(200);
  });
});
