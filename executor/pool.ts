// The warm pool: containers created, started and parked ahead of demand, each
// with its launcher waiting on stdin for a job (launcher.ts), so that the
// request path skips create and start — the slow part of a container's life.
// A parked container has exactly the spec of a cold one for its profile's
// default limits (container-spec.ts); a job with other limits gets them by
// `docker update` before it starts — except under gVisor, whose runsc cannot
// change a started container's limits: there such a job starts cold, with its
// own. (Parking per limit set was weighed: under runsc a cold job takes ~1.3 s
// here against ~0.5 s warm, but the pool sizes itself by the last 10 s of
// demand, so a set gets a parked container only after a miss and keeps it only
// while jobs with it come within seconds of each other; otherwise each such
// job would add a container lifecycle nobody uses, on an engine that churns
// ~5 a second.) Each container serves one job and is then
// removed, never reused. Parked containers carry the instance label and a
// deadline like any other, so a crashed gateway's pool is reaped too.
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { Limits, LoadedProfile } from "../core/profile.ts";
import { containerSpec, limitsUpdatable, sameContainerLimits } from "./container-spec.ts";
import type { ContainerClient } from "./docker.ts";

export interface Parked {
  id: string;
  volume: string;
  /** Attached before start; the job's stdin goes in, its output comes out. */
  stream: Duplex;
  parkedAt: number;
}

export interface PoolOptions {
  client: ContainerClient;
  instanceId: string;
  profiles: ReadonlyMap<string, LoadedProfile>;
  /** Parked containers kept per profile when idle, and at most when busy. */
  min: number;
  max: number;
  /** A parked container older than this is replaced (its deadline label must stay honest). */
  maxParkMs: number;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
}

export interface PoolStats {
  parked: Record<string, number>;
  hits: number;
  misses: number;
}

/** Demand is counted over this window to size each profile's pool. */
const DEMAND_WINDOW_MS = 10_000;

export class WarmPool {
  private readonly o: PoolOptions;
  private readonly parked = new Map<string, Parked[]>();
  private readonly filling = new Map<string, number>();
  private readonly takes = new Map<string, number[]>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private hits = 0;
  private misses = 0;

  constructor(options: PoolOptions) {
    this.o = options;
  }

  /** Starts filling every profile's pool, and keeps it fresh. */
  start(): void {
    for (const name of this.o.profiles.keys()) this.refill(name);
    this.timer = setInterval(() => this.maintain(), Math.min(5000, this.o.maxParkMs / 4));
    this.timer.unref();
  }

  /**
   * A parked container that can serve a job of `loaded` with `limits`, or
   * undefined (the caller starts one cold). Under a runtime that cannot change
   * a started container's limits, a job with other limits than the profile's
   * defaults gets none, and is no demand for containers it could not use.
   */
  take(loaded: LoadedProfile, limits: Limits): Parked | undefined {
    if (this.closed) return undefined;
    if (!limitsUpdatable(loaded.runtime) && !sameContainerLimits(limits, loaded.limits.default)) {
      this.misses++;
      return undefined;
    }
    const profile = loaded.name;
    const now = Date.now();
    const times = (this.takes.get(profile) ?? []).filter((t) => now - t < DEMAND_WINDOW_MS);
    times.push(now);
    this.takes.set(profile, times);
    const list = this.parked.get(profile) ?? [];
    let entry = list.shift();
    while (entry !== undefined && now - entry.parkedAt > this.o.maxParkMs) {
      this.discard(entry);
      entry = list.shift();
    }
    if (entry === undefined) this.misses++;
    else this.hits++;
    this.refill(profile);
    return entry;
  }

  stats(): PoolStats {
    const parked: Record<string, number> = {};
    for (const [name, list] of this.parked) parked[name] = list.length;
    return { parked, hits: this.hits, misses: this.misses };
  }

  /** Stops refilling and removes every parked container; waits for fills under way. */
  async drain(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const all = [...this.parked.values()].flat();
    this.parked.clear();
    await Promise.allSettled(all.map((p) => this.remove(p)));
  }

  private target(profile: string): number {
    const recent = (this.takes.get(profile) ?? []).filter(
      (t) => Date.now() - t < DEMAND_WINDOW_MS,
    ).length;
    return Math.max(this.o.min, Math.min(this.o.max, recent));
  }

  private refill(profile: string): void {
    if (this.closed) return;
    const have = (this.parked.get(profile)?.length ?? 0) + (this.filling.get(profile) ?? 0);
    for (let i = have; i < this.target(profile); i++) {
      this.filling.set(profile, (this.filling.get(profile) ?? 0) + 1);
      const work = this.park(profile)
        .then(async (entry) => {
          if (this.closed) {
            await this.remove(entry);
            return;
          }
          const list = this.parked.get(profile) ?? [];
          list.push(entry);
          this.parked.set(profile, list);
        })
        .catch((err: unknown) => this.o.warn(`parking a ${profile} container`, err))
        .finally(() => {
          this.filling.set(profile, (this.filling.get(profile) ?? 1) - 1);
          this.inFlight.delete(work);
        });
      this.inFlight.add(work);
    }
  }

  private maintain(): void {
    const now = Date.now();
    for (const [name, list] of this.parked) {
      const fresh = list.filter((p) => now - p.parkedAt <= this.o.maxParkMs);
      for (const stale of list.filter((p) => !fresh.includes(p))) this.discard(stale);
      // Shrink towards the current demand, oldest first.
      while (fresh.length > this.target(name)) {
        const extra = fresh.shift();
        if (extra !== undefined) this.discard(extra);
      }
      this.parked.set(name, fresh);
      this.refill(name);
    }
  }

  private async park(name: string): Promise<Parked> {
    const profile = this.o.profiles.get(name);
    if (profile === undefined) throw new Error(`no profile ${name}`);
    const { client } = this.o;
    const parkId = `park-${randomBytes(8).toString("hex")}`;
    const volume = `airlock-${parkId}`;
    const deadline =
      Date.now() + this.o.maxParkMs + profile.limits.max.timeoutMs + this.o.orphanGraceMs;
    const spec = containerSpec(profile, profile.limits.default, {
      instanceId: this.o.instanceId,
      jobId: parkId,
      volume,
      deadline,
    });
    let id: string | undefined;
    try {
      id = await client.create(spec);
      const stream = await client.attach(id);
      await client.start(id);
      return { id, volume, stream, parkedAt: Date.now() };
    } catch (err) {
      if (id !== undefined) await client.remove(id).catch(() => undefined);
      await client.removeVolume(volume).catch(() => undefined);
      throw err;
    }
  }

  private discard(entry: Parked): void {
    const work = this.remove(entry)
      .catch((err: unknown) => this.o.warn(`removing parked container ${entry.id}`, err))
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
  }

  private async remove(entry: Parked): Promise<void> {
    entry.stream.destroy();
    await this.o.client.remove(entry.id);
    await this.o.client.removeVolume(entry.volume);
  }
}
