// The warm pool against a fake engine that can die: parked containers killed
// while they wait (what a restart of the engine does to them) are dropped at
// once, never handed out nor counted; removals the engine refuses while it is
// down are retried until it is back; and under gVisor a job whose limits differ
// from the profile's defaults is handed no parked container.
import { join } from "node:path";
import { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { Limits, LoadedProfile } from "../../core/profile.ts";
import type { ContainerClient, ContainerSpec } from "../../executor/docker.ts";
import { WarmPool } from "../../executor/pool.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";

const profiles = loadProfiles({ extraDir: join(POLICIES_DIR, "gvisor") });
function profile(name: string): LoadedProfile {
  const p = profiles.get(name);
  if (p === undefined) throw new Error(`no profile ${name}`);
  return p;
}

/** Containers and volumes that exist; calls fail as on a stopped engine while `up` is false. */
class FakeEngine {
  up = true;
  /** Makes the engine go down as this call is made (a restart mid-way through a park). */
  downAt: string | undefined;
  readonly containers = new Map<string, { name: string; stream: Duplex; running: boolean }>();
  readonly volumes = new Set<string>();
  private next = 0;

  private call(name: string): void {
    if (this.downAt === name) {
      this.downAt = undefined;
      this.up = false;
    }
    if (!this.up)
      throw Object.assign(new Error("connect ECONNREFUSED /var/run/docker.sock"), {
        code: "ECONNREFUSED",
      });
  }

  readonly client = {
    create: async (spec: ContainerSpec) => {
      this.call("create");
      const id = `c${this.next++}`;
      const stream = new Duplex({ read() {}, write: (_c, _e, done) => done() });
      this.containers.set(id, { name: spec.name ?? "", stream, running: false });
      this.volumes.add(spec.HostConfig?.Mounts?.[0]?.Source ?? "");
      // A stopping engine can fail a create after it has registered the container.
      this.call("created");
      return id;
    },
    attach: async (id: string) => {
      this.call("attach");
      return this.containers.get(id)?.stream;
    },
    start: async (id: string) => {
      this.call("start");
      const c = this.containers.get(id);
      if (c !== undefined) c.running = true;
    },
    /** By id or by name, as the engine's API takes either; an unknown one is no error (404 is ignored). */
    remove: async (idOrName: string) => {
      this.call("remove");
      for (const [id, c] of this.containers) {
        if (id === idOrName || c.name === idOrName) this.containers.delete(id);
      }
    },
    removeVolume: async (name: string) => {
      this.call("removeVolume");
      this.volumes.delete(name);
    },
  } as unknown as ContainerClient;

  /** What an engine restart does to a container: it dies, and its attach connection goes. */
  kill(id: string, how: "close" | "error" = "close"): void {
    const c = this.containers.get(id);
    if (c === undefined) return;
    c.running = false;
    c.stream.destroy(how === "error" ? Object.assign(new Error("read ECONNRESET")) : undefined);
  }

  running(): string[] {
    return [...this.containers].filter(([, c]) => c.running).map(([id]) => id);
  }
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const pools: WarmPool[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) await pool.drain();
});

function startPool(engine: FakeEngine, names: string[], min = 2) {
  const warnings: string[] = [];
  const pool = new WarmPool({
    client: engine.client,
    instanceId: "unit",
    profiles: new Map(names.map((n) => [n, profile(n)])),
    min,
    max: min,
    // No container goes stale within a test; the pool ticks every 100 ms.
    maxParkMs: 60_000,
    tickMs: 100,
    orphanGraceMs: 0,
    warn: (message) => warnings.push(message),
  });
  pool.start();
  pools.push(pool);
  return { pool, warnings };
}

const shell = profile("shell");

describe("WarmPool when its parked containers die", () => {
  it("drops a dead one at once: never handed out nor counted, removed, then refilled", async () => {
    const engine = new FakeEngine();
    const { pool } = startPool(engine, ["shell"]);
    await until("two parked", () => pool.stats().parked["shell"] === 2);
    const [dead, live] = engine.running();
    engine.kill(dead ?? "", "error");
    // Not counted from the moment it died; removed as soon as its stream says so.
    expect(pool.stats().parked["shell"]).toBe(1);
    await until("the dead one removed", () => !engine.containers.has(dead ?? ""));
    expect(pool.stats()).toMatchObject({ parked: { shell: 1 }, died: 1 });
    expect(pool.take(shell, shell.limits.default)?.id).toBe(live);
    await until("refilled", () => pool.stats().parked["shell"] === 2);
  });

  it("retries the removals the engine refuses while it restarts, and refills once it is back", async () => {
    const engine = new FakeEngine();
    const { pool, warnings } = startPool(engine, ["shell"]);
    await until("two parked", () => pool.stats().parked["shell"] === 2);
    const killed = engine.running();
    engine.up = false;
    for (const id of killed) engine.kill(id);
    await until("both dropped", () => pool.stats().parked["shell"] === 0);
    expect(pool.take(shell, shell.limits.default)).toBeUndefined();
    // Several ticks with the engine down: still refused, said once per container.
    await new Promise((r) => setTimeout(r, 350));
    expect(killed.every((id) => engine.containers.has(id))).toBe(true);
    expect(pool.stats().unremoved).toBeGreaterThanOrEqual(2);
    expect(warnings.filter((w) => w.startsWith("removing container"))).toHaveLength(2);
    engine.up = true;
    await until("the killed ones removed", () => killed.every((id) => !engine.containers.has(id)));
    await until("refilled", () => pool.stats().parked["shell"] === 2);
    expect(engine.running()).toHaveLength(2);
    expect([...engine.containers.keys()].sort()).toEqual(engine.running().sort());
    await until("nothing left to retry", () => pool.stats().unremoved === 0);
    expect(engine.volumes.size).toBe(2);
  });

  it("removes what a park left half-made when the engine went down mid-way, once it is back", async () => {
    const engine = new FakeEngine();
    engine.downAt = "start";
    const { pool } = startPool(engine, ["shell"], 1);
    await until("the park to fail", () => pool.stats().unremoved > 0);
    expect(engine.containers.size).toBe(1);
    engine.up = true;
    await until("parked", () => pool.stats().parked["shell"] === 1);
    await until("the half-made one removed", () => engine.containers.size === 1);
    expect(engine.running()).toHaveLength(1);
    expect(engine.volumes.size).toBe(1);
  });

  it("removes, by its name, a container a stopping engine registered but failed to create", async () => {
    const engine = new FakeEngine();
    engine.downAt = "created";
    const { pool } = startPool(engine, ["shell"], 1);
    await until("the park to fail", () => pool.stats().unremoved > 0);
    const [orphan] = engine.containers.keys();
    engine.up = true;
    await until("parked", () => pool.stats().parked["shell"] === 1);
    await until("the orphan removed", () => !engine.containers.has(orphan ?? ""));
    expect(engine.containers.size).toBe(1);
    expect(engine.volumes.size).toBe(1);
  });

  it("retries the removal of a container it handed out when the engine refuses it", async () => {
    const engine = new FakeEngine();
    const { pool } = startPool(engine, ["shell"], 1);
    await until("parked", () => pool.stats().parked["shell"] === 1);
    const taken = pool.take(shell, shell.limits.default);
    if (taken === undefined) throw new Error("nothing parked");
    engine.up = false;
    await pool.dispose(taken);
    expect(engine.containers.has(taken.id)).toBe(true);
    engine.up = true;
    await until("removed", () => !engine.containers.has(taken.id));
    expect(engine.volumes.has(taken.volume)).toBe(false);
  });
});

describe("WarmPool and a job's limits", () => {
  const other = (p: LoadedProfile): Limits => ({ ...p.limits.default, memoryMb: 128 });

  it("under gVisor, hands a job with other limits no parked container, and counts no demand for one", async () => {
    const gvisor = profile("shell-gvisor");
    const engine = new FakeEngine();
    const { pool } = startPool(engine, ["shell-gvisor"], 1);
    await until("parked", () => pool.stats().parked["shell-gvisor"] === 1);
    for (let i = 0; i < 3; i++) expect(pool.take(gvisor, other(gvisor))).toBeUndefined();
    expect(pool.stats()).toMatchObject({ parked: { "shell-gvisor": 1 }, hits: 0, misses: 3 });
    // No demand was counted: the pool did not grow for jobs it cannot serve.
    await new Promise((r) => setTimeout(r, 250));
    expect(engine.running()).toHaveLength(1);
    expect(pool.take(gvisor, gvisor.limits.default)).toBeDefined();
  });

  it("under runc, hands one over whatever the limits (the sandbox updates them)", async () => {
    const engine = new FakeEngine();
    const { pool } = startPool(engine, ["shell"], 1);
    await until("parked", () => pool.stats().parked["shell"] === 1);
    expect(pool.take(shell, other(shell))).toBeDefined();
  });
});

describe("WarmPool with many profiles", () => {
  function manyPool(
    engine: FakeEngine,
    options: { total?: number; idleMs?: number; warm: string[] },
  ) {
    const pool = new WarmPool({
      client: engine.client,
      instanceId: "unit",
      profiles: new Map(["shell", "python", "c", "java"].map((n) => [n, profile(n)])),
      min: 1,
      max: 3,
      total: options.total,
      idleMs: options.idleMs,
      warm: new Set(options.warm),
      maxParkMs: 60_000,
      tickMs: 50,
      orphanGraceMs: 0,
      warn: () => undefined,
    });
    pool.start();
    pools.push(pool);
    return pool;
  }
  const parkedOf = (pool: WarmPool, name: string) => pool.stats().parked[name] ?? 0;

  it("parks nothing for a profile nobody uses, warms it on demand and lets it go cold when idle", async () => {
    const engine = new FakeEngine();
    const pool = manyPool(engine, { idleMs: 400, warm: ["shell"] });
    await until("the warm profile parked", () => parkedOf(pool, "shell") === 1);
    await new Promise((r) => setTimeout(r, 150));
    expect(parkedOf(pool, "c")).toBe(0);
    expect(parkedOf(pool, "java")).toBe(0);
    // The first job of an idle profile starts cold, and makes it warm.
    expect(pool.take(profile("c"), profile("c").limits.default)).toBeUndefined();
    await until("c parked after its first job", () => parkedOf(pool, "c") === 1);
    // No job for idleMs: c goes cold; the always-warm shell stays.
    await until("c gone cold", () => parkedOf(pool, "c") === 0, 3000);
    expect(parkedOf(pool, "shell")).toBe(1);
    expect(engine.running().length).toBe(1);
  });

  it("keeps all profiles together within the total cap, making room for the busiest", async () => {
    const engine = new FakeEngine();
    const pool = manyPool(engine, { total: 3, warm: ["shell", "python"] });
    await until(
      "warm profiles parked",
      () => parkedOf(pool, "shell") + parkedOf(pool, "python") === 2,
    );
    const c = profile("c");
    for (let i = 0; i < 3; i++) pool.take(c, c.limits.default);
    await until("c holds more as it gets busy", () => parkedOf(pool, "c") >= 2);
    await new Promise((r) => setTimeout(r, 200));
    const all = ["shell", "python", "c", "java"].reduce((n, p) => n + parkedOf(pool, p), 0);
    expect(all).toBeLessThanOrEqual(3);
    expect(engine.running().length).toBeLessThanOrEqual(3);
  });
});
