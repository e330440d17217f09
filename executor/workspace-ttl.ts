// When each workspace was last used, and the sweep that removes those idle for
// longer than their TTL. A use is recorded as a label on a tiny marker volume
// (volume labels cannot be changed), at most once per interval, so any gateway
// on the engine, a restarted one included, sees the same last use. A marker
// never outlives its workspace, even when another gateway deletes it meanwhile.
//
// The sweep makes as many calls to the engine with 1,000 workspaces on it as
// with 10: it keeps when each one it knows of falls due, and asks the engine
// only about those that have (their volume and markers, read afresh, decide). Listing
// every workspace on the engine, to learn of those other gateways made, and
// of markers left behind, is done on the first sweep and then every
// RESYNC_MS, as an informer's resync: a workspace whose own gateway died is
// removed at most that much after its TTL.
import type { ContainerClient } from "./docker.ts";
import {
  LABEL_CREATED,
  LABEL_TOUCH,
  LABEL_TOUCHED,
  LABEL_WORKSPACE,
  ttlOf,
  volumeOf,
} from "./workspace-labels.ts";

/** How often a sweep lists every workspace on the engine rather than those it knows are due. */
export const RESYNC_MS = 10 * 60_000;

interface Marker {
  /** The marker volume's name. */
  name: string;
  /** The workspace it marks. */
  id: string;
  at: number;
}

/** A workspace the sweep knows of: its last use as last read, and its TTL. */
interface Due {
  last: number;
  ttl: number;
  /** When `last` was read from the engine, or written to it by this gateway. */
  readAt: number;
}

/**
 * How often a workspace's use is marked: a twentieth of its TTL, within 1 s
 * to 1 min. A last use read no longer ago than this is as fresh as the
 * markers themselves can be, so it is not read again.
 */
function markInterval(ttlMs: number): number {
  return Math.min(60_000, Math.max(1000, ttlMs / 20));
}

/** The latest use a workspace's markers record; 0 when they record none. */
function lastMark(marks: readonly Marker[]): number {
  return Math.max(0, ...marks.map((m) => m.at).filter(Number.isFinite));
}

export interface Sweep {
  /** TTL of a workspace whose labels carry none. */
  defaultTtlMs: number;
  /** An operation is running or waiting on the workspace: it is in use, whatever its markers say. */
  busy: (id: string) => boolean;
  /** Removes the workspace (under its lock), markers included. */
  remove: (id: string) => Promise<void>;
}

export class WorkspaceUse {
  private readonly client: ContainerClient;
  private readonly now: () => number;
  /** Last use seen by this process, to save a marker write on every call. */
  private readonly lastMarked = new Map<string, number>();
  /** Every workspace the sweep knows of; one that is gone is dropped when it falls due. */
  private readonly known = new Map<string, Due>();
  /** When a sweep last listed every workspace on the engine. */
  private syncedAt = Number.NEGATIVE_INFINITY;

  constructor(client: ContainerClient, now: () => number) {
    this.client = client;
    this.now = now;
  }

  /** A new workspace counts as used when it is made. */
  created(id: string, at: number, ttl: number): void {
    this.lastMarked.set(id, at);
    this.known.set(id, { last: at, ttl, readAt: at });
  }

  /**
   * The last use of a workspace by any gateway. Its markers are listed (a
   * label filter, which the engine answers by going through every volume)
   * only when what this gateway knows is older than the marking interval.
   */
  async lastUsed(id: string, createdAt: number, ttlMs: number): Promise<number> {
    const now = this.now();
    const mine = this.lastMarked.get(id) ?? 0;
    const due = this.known.get(id);
    if (due !== undefined && now - due.readAt < markInterval(due.ttl)) {
      return Math.max(createdAt, mine, due.last);
    }
    const marks = await this.markers(id);
    const last = Math.max(createdAt, mine, lastMark(marks));
    this.known.set(id, { last, ttl: ttlMs, readAt: now });
    return last;
  }

  /** Records a use, at most once per interval, then drops older markers. */
  async touch(id: string, ttlMs: number): Promise<void> {
    const now = this.now();
    if (now - (this.lastMarked.get(id) ?? 0) < markInterval(ttlMs)) return;
    this.lastMarked.set(id, now);
    this.known.set(id, { last: now, ttl: ttlMs, readAt: now });
    await this.client.createVolume(`airlock-wst-${id}-${now}`, {
      [LABEL_TOUCH]: id,
      [LABEL_TOUCHED]: String(now),
    });
    for (const m of await this.markers(id)) {
      if (m.at < now) await this.client.removeVolume(m.name);
    }
    // Another gateway on this engine may have deleted the workspace meanwhile:
    // it removes the volume, then the markers, so a marker made after its
    // sweep of them is seen here, with the volume gone, and goes too.
    if (!(await this.exists(id))) await this.forget(id);
  }

  /** Its volume, by name: one lookup, where a label filter has the engine go through every volume. */
  private async exists(id: string): Promise<boolean> {
    return (await this.client.volumeLabels(volumeOf(id)))?.[LABEL_WORKSPACE] === id;
  }

  /** The workspace is gone: so are its markers. */
  async forget(id: string): Promise<void> {
    for (const m of await this.markers(id)) await this.client.removeVolume(m.name);
    this.lastMarked.delete(id);
    this.known.delete(id);
  }

  /**
   * Removes every workspace idle for longer than its TTL; returns how many.
   * `all` lists every workspace on the engine, as the first sweep and one
   * every RESYNC_MS do.
   */
  async sweep(sweep: Sweep, all = false): Promise<number> {
    const now = this.now();
    if (all || now - this.syncedAt >= RESYNC_MS) return this.sweepAll(sweep, now);
    let removed = 0;
    for (const [id, due] of [...this.known]) {
      if (now - due.last <= due.ttl || sweep.busy(id)) continue;
      if (await this.sweepOne(id, sweep, now)) removed++;
    }
    return removed;
  }

  /** A workspace the sweep holds due, read afresh: another gateway may have used or deleted it. */
  private async sweepOne(id: string, sweep: Sweep, now: number): Promise<boolean> {
    // As exists() reads it, with the labels kept for the TTL and creation time.
    const labels = await this.client.volumeLabels(volumeOf(id));
    if (labels?.[LABEL_WORKSPACE] !== id) {
      await this.forget(id);
      return false;
    }
    const marks = await this.markers(id);
    const due = {
      last: this.lastOf(id, labels, lastMark(marks)),
      ttl: ttlOf(labels, sweep.defaultTtlMs),
      readAt: now,
    };
    this.known.set(id, due);
    if (now - due.last <= due.ttl) return false;
    await sweep.remove(id);
    return true;
  }

  /** Every workspace on the engine, and stray markers; it learns of them all again. */
  private async sweepAll(sweep: Sweep, now: number): Promise<number> {
    const volumes = (await this.client.listVolumes(LABEL_WORKSPACE)).filter(
      (v) => v.labels[LABEL_WORKSPACE] !== undefined,
    );
    const marks = await this.markers();
    const latest = new Map<string, number>();
    for (const m of marks) latest.set(m.id, Math.max(latest.get(m.id) ?? 0, m.at));
    this.syncedAt = now;
    let removed = 0;
    for (const v of volumes) {
      const id = v.labels[LABEL_WORKSPACE] ?? "";
      const due = {
        last: this.lastOf(id, v.labels, latest.get(id) ?? 0),
        ttl: ttlOf(v.labels, sweep.defaultTtlMs),
        readAt: now,
      };
      this.known.set(id, due);
      if (now - due.last <= due.ttl || sweep.busy(id)) continue;
      await sweep.remove(id);
      removed++;
    }
    // Markers whose workspace is gone (deleted by a gateway that died half-way).
    const live = new Set(volumes.map((v) => v.labels[LABEL_WORKSPACE]));
    for (const m of marks) if (!live.has(m.id)) await this.client.removeVolume(m.name);
    return removed;
  }

  /** The last use of a workspace: made, marked by any gateway, or seen here. */
  private lastOf(id: string, labels: Record<string, string>, marked: number): number {
    return Math.max(Number(labels[LABEL_CREATED]) || 0, marked, this.lastMarked.get(id) ?? 0);
  }

  private async markers(id?: string): Promise<Marker[]> {
    const all = await this.client.listVolumes(
      id === undefined ? LABEL_TOUCH : `${LABEL_TOUCH}=${id}`,
    );
    return all.map((v) => ({
      name: v.id,
      id: v.labels[LABEL_TOUCH] ?? "",
      at: Number(v.labels[LABEL_TOUCHED]),
    }));
  }
}
