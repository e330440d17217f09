// When each workspace was last used, and the sweep that removes those idle for
// longer than their TTL. A use is recorded as a label on a tiny marker volume
// (volume labels cannot be changed), at most once per interval, so any gateway
// on the engine, a restarted one included, sees the same last use. A marker
// never outlives its workspace, even when another gateway deletes it meanwhile.
import type { ContainerClient } from "./docker.ts";
import {
  LABEL_CREATED,
  LABEL_TOUCH,
  LABEL_TOUCHED,
  LABEL_WORKSPACE,
  ttlOf,
} from "./workspace-labels.ts";

interface Marker {
  /** The marker volume's name. */
  name: string;
  /** The workspace it marks. */
  id: string;
  at: number;
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

  constructor(client: ContainerClient, now: () => number) {
    this.client = client;
    this.now = now;
  }

  /** A new workspace counts as used when it is made. */
  created(id: string, at: number): void {
    this.lastMarked.set(id, at);
  }

  async lastUsed(id: string, createdAt: number): Promise<number> {
    const marks = await this.markers(id);
    return Math.max(
      createdAt,
      this.lastMarked.get(id) ?? 0,
      ...marks.map((m) => m.at).filter(Number.isFinite),
    );
  }

  /** Records a use, at most once per interval (a twentieth of the TTL), then drops older markers. */
  async touch(id: string, ttlMs: number): Promise<void> {
    const now = this.now();
    const interval = Math.min(60_000, Math.max(1000, ttlMs / 20));
    if (now - (this.lastMarked.get(id) ?? 0) < interval) return;
    this.lastMarked.set(id, now);
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

  private async exists(id: string): Promise<boolean> {
    const found = await this.client.listVolumes(`${LABEL_WORKSPACE}=${id}`);
    return found.some((v) => v.labels[LABEL_WORKSPACE] === id);
  }

  /** The workspace is gone: so are its markers. */
  async forget(id: string): Promise<void> {
    for (const m of await this.markers(id)) await this.client.removeVolume(m.name);
    this.lastMarked.delete(id);
  }

  /** Removes every workspace idle for longer than its TTL (and stray markers); returns how many. */
  async sweep(sweep: Sweep): Promise<number> {
    const now = this.now();
    const volumes = (await this.client.listVolumes(LABEL_WORKSPACE)).filter(
      (v) => v.labels[LABEL_WORKSPACE] !== undefined,
    );
    const marks = await this.markers();
    const latest = new Map<string, number>();
    for (const m of marks) latest.set(m.id, Math.max(latest.get(m.id) ?? 0, m.at));
    let removed = 0;
    for (const v of volumes) {
      const id = v.labels[LABEL_WORKSPACE] ?? "";
      const last = Math.max(
        Number(v.labels[LABEL_CREATED]) || 0,
        latest.get(id) ?? 0,
        this.lastMarked.get(id) ?? 0,
      );
      if (now - last <= ttlOf(v.labels, sweep.defaultTtlMs) || sweep.busy(id)) continue;
      await sweep.remove(id);
      removed++;
    }
    // Markers whose workspace is gone (deleted by a gateway that died half-way).
    const live = new Set(volumes.map((v) => v.labels[LABEL_WORKSPACE]));
    for (const m of marks) if (!live.has(m.id)) await this.client.removeVolume(m.name);
    return removed;
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
