// The warm pool against a real engine: parked containers serve one job each,
// have exactly a cold container's hardening, take a job's own limits (under
// gVisor, which cannot change a started container's limits, by a container of
// their own), and are all gone after shutdown.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { containerSpec, limitSettings } from "../../executor/container-spec.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ poolMin: 2, poolMax: 4 });
  await parkedFor(gw, "shell", 2);
});
afterAll(async () => {
  await gw.close();
  // Shutdown drains the pool: no parked container or volume is left.
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function parkedFor(g: TestGateway, profile: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((g.pool?.stats().parked[profile] ?? 0) < count) {
    if (Date.now() > deadline)
      throw new Error(`the pool did not park ${count} ${profile} containers`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function exec(body: Record<string, unknown>, g: TestGateway = gw): Promise<ExecResult> {
  const res = await g.post("/v1/exec", body);
  expect(res.status).toBe(200);
  return (await res.json()) as ExecResult;
}

/** The container's id, from its cgroup path (cgroup v1: …/docker/<id>). */
const WHO = "grep -o -E '[0-9a-f]{64}' /proc/self/cgroup | head -1";

it("never hands one container to two calls", async () => {
  const hits = gw.pool?.stats().hits ?? 0;
  const first = await exec({ profile: "shell", command: `${WHO}; echo secret > /tmp/left-behind` });
  await parkedFor(gw, "shell", 1);
  const second = await exec({
    profile: "shell",
    command: `${WHO}; ls /tmp/left-behind 2>&1 || true`,
  });
  expect(gw.pool?.stats().hits).toBe(hits + 2);
  const [id1] = first.stdout.trim().split("\n");
  const [id2, ls] = second.stdout.trim().split("\n");
  expect(id1).toMatch(/^[0-9a-f]{64}$/);
  expect(id2).toMatch(/^[0-9a-f]{64}$/);
  expect(id2).not.toBe(id1);
  expect(ls).toContain("No such file");
});

it("parks containers with exactly the hardening of a cold one", async () => {
  await parkedFor(gw, "shell", 1);
  const parked = await gw.docker.listContainers({
    filters: { label: [`airlock=${gw.instanceId}`], status: ["running"] },
  });
  const parkedId = parked.find((c) => c.Labels["airlock.job"]?.startsWith("park-"))?.Id;
  expect(parkedId).toBeDefined();
  const profile = loadProfiles().get("shell");
  if (profile === undefined) throw new Error("no shell profile");
  const cold = await gw.docker.createContainer(
    containerSpec(profile, profile.limits.default, {
      instanceId: `${gw.instanceId}-cold`,
      jobId: "cold-compare",
      volume: "airlock-cold-compare",
      deadline: Date.now() + 60_000,
    }),
  );
  try {
    const a = await gw.docker.getContainer(parkedId ?? "").inspect();
    const b = await cold.inspect();
    const hardening = (i: typeof a) => {
      const h = i.HostConfig as unknown as Record<string, unknown>;
      const keys = [
        "NetworkMode",
        "ReadonlyRootfs",
        "Tmpfs",
        "ShmSize",
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "PidsLimit",
        "Ulimits",
        "CapDrop",
        "CapAdd",
        "SecurityOpt",
        "Init",
        "Runtime",
        "IpcMode",
        "Privileged",
        "LogConfig",
        "OomKillDisable",
      ];
      return {
        host: Object.fromEntries(keys.map((k) => [k, h[k]])),
        user: i.Config.User,
        env: i.Config.Env,
        cmd: i.Config.Cmd,
        workdir: i.Config.WorkingDir,
        image: i.Config.Image,
        mountTarget: i.Mounts.map((m) => m.Destination),
      };
    };
    expect(hardening(a)).toEqual(hardening(b));
  } finally {
    await cold.remove({ force: true, v: true });
    await gw.docker
      .getVolume("airlock-cold-compare")
      .remove()
      .catch(() => undefined);
  }
});

it("gives a pooled container exactly the limits the request asks for", async () => {
  await parkedFor(gw, "shell", 1);
  const hits = gw.pool?.stats().hits ?? 0;
  const r = await exec({
    profile: "shell",
    command:
      "g=/sys/fs/cgroup; cat $g/memory/memory.limit_in_bytes $g/memory/memory.memsw.limit_in_bytes $g/cpu/cpu.cfs_quota_us $g/cpu/cpu.cfs_period_us $g/pids/pids.max",
    limits: { memoryMb: 128, cpus: 0.5, pids: 32 },
  });
  expect(gw.pool?.stats().hits).toBe(hits + 1);
  const [mem, memsw, quota, period, pids] = r.stdout.trim().split("\n").map(Number);
  expect(mem).toBe(128 * 1024 * 1024);
  expect(memsw).toBe(128 * 1024 * 1024);
  expect((quota ?? 0) / (period ?? 1)).toBe(0.5);
  expect(pids).toBe(32);
});

it("bills a job for its own CPU time, not for its container's start-up or time parked", async () => {
  await parkedFor(gw, "shell", 1);
  const hits = gw.pool?.stats().hits ?? 0;
  // The cgroup's counter, as the job reads it, already holds the container's start-up.
  const r = await exec({
    profile: "shell",
    command: ["cat", "/sys/fs/cgroup/cpuacct/cpuacct.usage"],
  });
  expect(gw.pool?.stats().hits).toBe(hits + 1);
  const sinceStartMs = Number(r.stdout) / 1e6;
  expect(sinceStartMs).toBeGreaterThan(0);
  expect(r.usage.cpuMs).not.toBeNull();
  expect(r.usage.cpuMs).toBeLessThan(sinceStartMs);
});

it("runs jobs cold when the pool is empty, and with the same result", async () => {
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => exec({ profile: "python", code: `print(${i} * 2)` })),
  );
  results.forEach((r, i) => {
    expect(r).toMatchObject({ status: "ok", stdout: `${i * 2}\n` });
  });
  expect(gw.pool?.stats().misses).toBeGreaterThan(0);
});

/** Waits until `check` holds, polling; throws naming `what` past `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The parked containers of `g` on the engine (its instance id, a park- job label), whatever their state. */
async function parkedOn(g: TestGateway) {
  const all = await g.docker.listContainers({
    all: true,
    filters: { label: [`airlock=${g.instanceId}`] },
  });
  return all.filter((c) => c.Labels["airlock.job"]?.startsWith("park-"));
}

describe("when the engine kills the parked containers, as its restart does", () => {
  it("removes them at once, hands none out, refills, and leaves a sibling gateway's alone", async () => {
    const sibling = await startGateway({ poolMin: 1, poolMax: 1 });
    try {
      await parkedFor(sibling, "shell", 1);
      await parkedFor(gw, "shell", 2);
      const theirs = (await parkedOn(sibling)).filter((c) => c.State === "running");
      const killed = (await parkedOn(gw)).filter((c) => c.State === "running").map((c) => c.Id);
      const diedBefore = gw.pool?.stats().died ?? 0;
      // What a restart of the engine does to them (the shared engine itself is not restarted).
      await Promise.all(killed.map((id) => gw.docker.getContainer(id).kill()));
      await eventually("the pool to see them die", async () => {
        return (gw.pool?.stats().died ?? 0) >= diedBefore + killed.length;
      });
      // Not counted, not handed out: the next job gets a live container.
      expect(gw.pool?.stats().parked["shell"] ?? 0).toBeLessThan(2);
      const r = await exec({ profile: "shell", command: ["echo", "after"] });
      expect(r).toMatchObject({ status: "ok", stdout: "after\n" });
      // Gone from the engine within seconds, not at their deadline (~10 minutes).
      await eventually("the killed containers to be removed", async () => {
        const ids = new Set((await parkedOn(gw)).map((c) => c.Id));
        return killed.every((id) => !ids.has(id));
      });
      await parkedFor(gw, "shell", 2);
      // Nothing dead is left (a container being parked right now is "created").
      const states = (await parkedOn(gw)).map((c) => c.State);
      expect(states.filter((state) => state !== "running" && state !== "created")).toEqual([]);
      // A sibling's parked containers: untouched by this gateway's pool, and by its reaper.
      await gw.executor.reap(false);
      const after = new Map((await parkedOn(sibling)).map((c) => [c.Id, c.State]));
      expect(theirs.length).toBeGreaterThan(0);
      expect(theirs.map((c) => after.get(c.Id))).toEqual(theirs.map(() => "running"));
    } finally {
      await sibling.close();
    }
  });
});

describe("under gVisor (runsc), which cannot change a started container's limits", () => {
  let g: TestGateway;
  const PROFILE = "python-gvisor";
  beforeAll(async () => {
    g = await startGateway({ poolMin: 1, poolMax: 2, profilesDir: join(POLICIES_DIR, "gvisor") });
    await parkedFor(g, PROFILE, 1);
  });
  afterAll(async () => {
    await g.close();
    expect(await g.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });

  /** The HostConfig limits of the one job container (not a parked one) that runs while `job` does. */
  async function limitsWhileRunning(job: Promise<ExecResult>) {
    let done = false;
    job.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    while (!done) {
      const running = await g.docker.listContainers({
        filters: { label: [`airlock=${g.instanceId}`], status: ["running"] },
      });
      const mine = running.find((c) => !c.Labels["airlock.job"]?.startsWith("park-"));
      if (mine !== undefined) {
        const h = (await g.docker.getContainer(mine.Id).inspect()).HostConfig;
        return {
          Memory: h.Memory,
          MemorySwap: h.MemorySwap,
          NanoCpus: h.NanoCpus,
          PidsLimit: h.PidsLimit,
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }

  it.each([{ memoryMb: 128 }, { cpus: 0.5 }, { pids: 768 }])(
    "a job with limits %o gets a container created with them, and its normal result",
    async (limits) => {
      const profile = loadProfiles({ extraDir: join(POLICIES_DIR, "gvisor") }).get(PROFILE);
      if (profile === undefined) throw new Error(`no ${PROFILE} profile`);
      const want = { ...profile.limits.default, ...limits };
      await parkedFor(g, PROFILE, 1);
      const before = g.pool?.stats() ?? { hits: 0, misses: 0 };
      // gVisor's kernel sizes its memory by the container's limit.
      const job = exec(
        {
          profile: PROFILE,
          code: "import time\nprint(open('/proc/meminfo').readline().split()[1])\ntime.sleep(1.5)",
          limits,
        },
        g,
      );
      const seen = await limitsWhileRunning(job);
      const r = await job;
      expect(r).toMatchObject({ status: "ok", stdout: `${want.memoryMb * 1024}\n` });
      expect(seen).toEqual(limitSettings(want));
      // Not a parked container (its limits cannot change), and the parked one is left for the next job.
      expect(g.pool?.stats()).toMatchObject({ hits: before.hits, misses: before.misses + 1 });
      expect(g.pool?.stats().parked[PROFILE]).toBeGreaterThanOrEqual(1);
      const next = await exec({ profile: PROFILE, code: "print('warm')" }, g);
      expect(next).toMatchObject({ status: "ok", stdout: "warm\n" });
      expect(g.pool?.stats().hits).toBe(before.hits + 1);
    },
  );
});
