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
// A parked container can die while it waits: a restart of the engine kills
// them all. Its attach stream then ends (the engine's own notice, and the same
// socket the job would have used), so the pool drops it at once — never handed
// out nor counted — and removes it. A removal the engine refuses (it is still
// down) is retried at each maintenance tick, so what the restart killed is gone
// within a tick of the engine's return, not at its deadline (~10 min); so is a
// container the pool handed out whose job could not remove it. Only this
// pool's own containers, by id: a sibling gateway's are never touched.
//
// Many profiles (a dozen languages) must not each hold containers nobody uses.
// A profile parks by its recent demand: `min` while it is warm, up to `max`
// as jobs come within the demand window, and none once it has had no job for
// `idleMs` (then its first job starts cold and warms it again). The profiles
// in `warm` (by default all: operators' settings say which) count as warm
// always. All parked containers together stay within `total`; when a busier
// profile needs one and the cap is reached, a less busy profile's oldest is
// removed to make room.
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
  /** The profile it was parked for. */
  profile: string;
}

/** A container and its volume to remove; the stream, if any, is closed first. */
interface Leftover {
  /** Its id, or its name until the engine gave one. */
  id: string | undefined;
  volume: string;
  stream?: Duplex | undefined;
}

export interface PoolOptions {
  client: ContainerClient;
  instanceId: string;
  profiles: ReadonlyMap<string, LoadedProfile>;
  /** Parked containers kept per profile while it is warm, and at most when busy. */
  min: number;
  max: number;
  /** Parked containers of all profiles together at most (default: no cap but min/max). */
  total?: number | undefined;
  /** A profile (not in `warm`) with no job for this long parks none (default 10 min). */
  idleMs?: number | undefined;
  /** Profiles that keep `min` parked even when idle (default: every profile). */
  warm?: ReadonlySet<string> | undefined;
  /** A parked container older than this is replaced (its deadline label must stay honest). */
  maxParkMs: number;
  /** How often the pool is kept (stale and dead ones replaced, refused removals retried); by default min(5 s, maxParkMs / 4). */
  tickMs?: number | undefined;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
}

export interface PoolStats {
  /** Live parked containers per profile. */
  parked: Record<string, number>;
  hits: number;
  misses: number;
  /** Parked containers found dead (their container ended while parked). */
  died: number;
  /** Removals the engine refused, waiting for the next tick. */
  unremoved: number;
  /** Containers being parked now (created, not yet started). */
  filling: number;
}

/** Demand is counted over this window to size each profile's pool. */
const DEMAND_WINDOW_MS = 10_000;
const DEFAULT_IDLE_MS = 600_000;

/**
 * A take's refill waits for the job's container to be given back, or this
 * long: a new container's create and start (the engine's busiest work) then
 * do not compete for the CPU with the very job that was just handed one.
 */
const REFILL_DELAY_MS = 100;

/** A parked container whose attach stream has ended or failed: its container is gone or unusable. */
function isDead(entry: Parked): boolean {
  return entry.stream.destroyed || entry.stream.readableEnded;
}

export class WarmPool {
  private readonly o: PoolOptions;
  private readonly parked = new Map<string, Parked[]>();
  private readonly filling = new Map<string, number>();
  private readonly takes = new Map<string, number[]>();
  /** When each profile last had a job (or asked for one). */
  private readonly lastTake = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Removals the engine refused (it was down, say): retried at every tick. */
  private readonly leftovers = new Set<Leftover>();
  /** Refills put off after a take, by profile (refillSoon). */
  private readonly deferred = new Map<string, NodeJS.Timeout>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private hits = 0;
  private misses = 0;
  private died = 0;

  constructor(options: PoolOptions) {
    this.o = options;
  }

  /** Starts filling every profile's pool, and keeps it fresh. */
  start(): void {
    for (const name of this.o.profiles.keys()) this.refill(name);
    const tick = this.o.tickMs ?? Math.min(5000, this.o.maxParkMs / 4);
    this.timer = setInterval(() => this.maintain(), tick);
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
    this.lastTake.set(profile, now);
    const list = this.parked.get(profile) ?? [];
    let entry = list.shift();
    while (entry !== undefined && (now - entry.parkedAt > this.o.maxParkMs || isDead(entry))) {
      if (isDead(entry)) this.died++;
      this.discard(entry);
      entry = list.shift();
    }
    if (entry === undefined) this.misses++;
    else this.hits++;
    this.refillSoon(profile);
    return entry;
  }

  /**
   * Removes a container the pool handed out, once its job is over. A removal
   * the engine refuses is retried with the pool's own, so that it is not left
   * until its parked container's long deadline.
   */
  dispose(entry: Parked): Promise<void> {
    const removal = this.removeOrRetry({ id: entry.id, volume: entry.volume });
    clearTimeout(this.deferred.get(entry.profile));
    this.deferred.delete(entry.profile);
    // After the answer, which goes out in the microtasks that follow this call.
    setImmediate(() => this.refill(entry.profile));
    return removal;
  }

  stats(): PoolStats {
    const parked: Record<string, number> = {};
    for (const [name, list] of this.parked) parked[name] = list.filter((p) => !isDead(p)).length;
    const { hits, misses, died } = this;
    let filling = 0;
    for (const n of this.filling.values()) filling += n;
    return { parked, hits, misses, died, unremoved: this.leftovers.size, filling };
  }

  /** Stops refilling and removes every parked container; waits for fills under way. */
  async drain(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const all: Leftover[] = [...this.parked.values()].flat();
    all.push(...this.leftovers);
    this.parked.clear();
    this.leftovers.clear();
    // What the engine still refuses now is the reaper's (the executor reaps its own at shutdown).
    await Promise.allSettled(all.map((p) => this.remove(p)));
  }

  /** Jobs of `profile` within the demand window. */
  private demand(profile: string): number {
    const now = Date.now();
    return (this.takes.get(profile) ?? []).filter((t) => now - t < DEMAND_WINDOW_MS).length;
  }

  /** Warm: in the always-warm set, or a job within idleMs. */
  private isWarm(profile: string): boolean {
    if (this.o.warm === undefined || this.o.warm.has(profile)) return true;
    const last = this.lastTake.get(profile);
    return last !== undefined && Date.now() - last < (this.o.idleMs ?? DEFAULT_IDLE_MS);
  }

  private target(profile: string): number {
    if (!this.isWarm(profile)) return 0;
    return Math.max(this.o.min, Math.min(this.o.max, this.demand(profile)));
  }

  private held(profile: string): number {
    return (this.parked.get(profile)?.length ?? 0) + (this.filling.get(profile) ?? 0);
  }

  /** Parked and parking containers of every profile. */
  private heldTotal(): number {
    let n = 0;
    for (const name of this.o.profiles.keys()) n += this.held(name);
    return n;
  }

  /**
   * Under the total cap: frees one place for `profile` by removing the oldest
   * parked container of the least busy profile that is less busy than it.
   */
  private makeRoom(profile: string): boolean {
    const want = this.demand(profile);
    let victim: string | undefined;
    for (const name of this.o.profiles.keys()) {
      if (name === profile || (this.parked.get(name)?.length ?? 0) === 0) continue;
      const d = this.demand(name);
      if (d < want && (victim === undefined || d < this.demand(victim))) victim = name;
    }
    const oldest = victim === undefined ? undefined : this.parked.get(victim)?.shift();
    if (oldest === undefined) return false;
    this.discard(oldest);
    return true;
  }

  private refillSoon(profile: string): void {
    if (this.closed || this.deferred.has(profile)) return;
    const timer = setTimeout(() => {
      this.deferred.delete(profile);
      this.refill(profile);
    }, REFILL_DELAY_MS);
    timer.unref();
    this.deferred.set(profile, timer);
  }

  private refill(profile: string): void {
    if (this.closed) return;
    const have = this.held(profile);
    for (let i = have; i < this.target(profile); i++) {
      const total = this.o.total;
      if (total !== undefined && this.heldTotal() >= total && !this.makeRoom(profile)) return;
      this.filling.set(profile, (this.filling.get(profile) ?? 0) + 1);
      const work = this.park(profile)
        .then(async (entry) => {
          if (this.closed || isDead(entry)) {
            if (!this.closed) this.died++;
            await this.removeOrRetry(entry);
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

  /**
   * Every tick: retries refused removals, drops parked containers that are
   * stale or dead, shrinks towards demand and refills. A dead container is
   * dropped as soon as its stream ends (watch); this is the backstop.
   */
  private maintain(): void {
    for (const leftover of this.leftovers) {
      this.leftovers.delete(leftover);
      this.track(this.removeOrRetry(leftover, true));
    }
    const now = Date.now();
    // Every profile, not only those with a list: a pool whose first parks failed (the engine was down) fills too.
    for (const name of this.o.profiles.keys()) {
      const list = this.parked.get(name) ?? [];
      const fresh = list.filter((p) => now - p.parkedAt <= this.o.maxParkMs && !isDead(p));
      for (const gone of list.filter((p) => !fresh.includes(p))) {
        if (isDead(gone)) this.died++;
        this.discard(gone);
      }
      // Shrink towards the current demand, oldest first.
      while (fresh.length > this.target(name)) {
        const extra = fresh.shift();
        if (extra !== undefined) this.discard(extra);
      }
      this.parked.set(name, fresh);
      this.refill(name);
    }
  }

  /** Drops `entry` the moment its stream ends or fails, if it is still parked (not taken, not dropped). */
  private watch(profile: string, entry: Parked): void {
    const ended = () => {
      const list = this.parked.get(profile);
      const at = list?.indexOf(entry) ?? -1;
      if (list === undefined || at < 0) return;
      list.splice(at, 1);
      this.died++;
      this.discard(entry);
    };
    entry.stream.once("end", ended);
    entry.stream.once("close", ended);
    // Also keeps a failed socket (the engine went away) from being an uncaught error.
    entry.stream.on("error", ended);
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
    // Named until the engine gives an id: a create that a stopping engine failed
    // half-way (or answered on a socket that then broke) can leave a container by that name.
    const made: Leftover = { id: spec.name, volume };
    try {
      made.id = await client.create(spec);
      const stream = await client.attach(made.id);
      made.stream = stream;
      const entry = { id: made.id, volume, stream, parkedAt: 0, profile: name };
      this.watch(name, entry);
      await client.start(made.id);
      entry.parkedAt = Date.now();
      return entry;
    } catch (err) {
      // The engine may have gone mid-way: what it made is removed once it is back.
      await this.removeOrRetry(made, true);
      throw err;
    }
  }

  private discard(entry: Parked): void {
    this.track(this.removeOrRetry(entry));
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** Removes `leftover`; if the engine refuses, keeps it for the next tick (and says so, unless `quiet`). */
  private async removeOrRetry(leftover: Leftover, quiet = false): Promise<void> {
    try {
      await this.remove(leftover);
    } catch (err) {
      if (this.closed) return;
      this.leftovers.add(leftover);
      if (!quiet)
        this.o.warn(`removing container ${leftover.id ?? leftover.volume} (retried)`, err);
    }
  }

  private async remove(leftover: Leftover): Promise<void> {
    leftover.stream?.destroy();
    if (leftover.id !== undefined) await this.o.client.remove(leftover.id);
    await this.o.client.removeVolume(leftover.volume);
  }
}
