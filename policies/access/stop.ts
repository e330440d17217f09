// The emergency stop. A stop is a labelled marker volume on the engine (state
// lives in Docker, like workspaces), so it survives a gateway restart and every
// gateway on the engine sees it after its next refresh; with replicas on
// several engines it is a record in the shared state store instead
// (core/state.ts StopRecords), which every gateway of the service refreshes. Each tenant has an
// AbortController; jobs run with its signal, so a stop kills running
// containers and drops queued jobs through the executor's cancellation path.
import { createHash } from "node:crypto";
import { AirlockError } from "../../core/errors.ts";
import type { StopRecord, StopRecords } from "../../core/state.ts";

export const LABEL_STOP = "airlock.stop";
export const LABEL_STOPPED_AT = "airlock.stop.at";
/** The label value of a stop of everything. */
const ALL = "*";

export interface StopState {
  all: { since: string } | null;
  tenants: { tenant: string; since: string }[];
}

function markerName(target: string): string {
  return target === ALL
    ? "airlock-stop-all"
    : `airlock-stop-${createHash("sha256").update(target).digest("hex").slice(0, 24)}`;
}

/**
 * What a stop needs of the engine: labelled marker volumes. The engine's
 * ContainerClient (executor/docker.ts) is one; policies never import the engine.
 */
export interface MarkerVolumes {
  createVolume(name: string, labels: Record<string, string>): Promise<void>;
  removeVolume(name: string): Promise<void>;
  listVolumes(label: string): Promise<{ id: string; labels: Record<string, string> }[]>;
}

/** Stops kept as marker volumes on the engine. */
export function volumeStops(client: MarkerVolumes): StopRecords {
  const list = async (): Promise<StopRecord[]> => {
    const out: StopRecord[] = [];
    for (const m of await client.listVolumes(LABEL_STOP)) {
      const target = m.labels[LABEL_STOP];
      if (target !== undefined && m.id === markerName(target)) {
        out.push({ target, since: m.labels[LABEL_STOPPED_AT] ?? new Date(0).toISOString() });
      }
    }
    return out;
  };
  return {
    list,
    async add(target, since) {
      try {
        await client.createVolume(markerName(target), {
          [LABEL_STOP]: target,
          [LABEL_STOPPED_AT]: since,
        });
      } catch (err) {
        // 409: the marker exists already (stopped before, or by another gateway).
        if ((err as { statusCode?: unknown }).statusCode !== 409) {
          throw new AirlockError(
            "docker_unavailable",
            `the stop holds in this gateway, but its marker volume could not be written, so it would not survive a restart; retry: ${(err as Error).message}`,
            { cause: err, retryAfterSeconds: 5 },
          );
        }
      }
      return { target, since };
    },
    async remove(target) {
      await client.removeVolume(markerName(target));
    },
  };
}

export class StopSwitch {
  private readonly markers: StopRecords;
  private readonly now: () => number;
  /** target ("*" or a tenant) → since (ISO). */
  private stops = new Map<string, string>();
  private readonly controllers = new Map<string, AbortController>();
  private all = new AbortController();

  /** `shared`: the state store's stops (replicas); without it, marker volumes on `client`'s engine. */
  constructor(client: MarkerVolumes, now: () => number = Date.now, shared?: StopRecords) {
    this.markers = shared ?? volumeStops(client);
    this.now = now;
  }

  /** Reads the markers; stops another gateway made take effect here too. */
  async refresh(): Promise<void> {
    const next = new Map<string, string>();
    for (const m of await this.markers.list()) next.set(m.target, m.since);
    this.stops = next;
    this.fire();
  }

  /** Why `tenant` may not run anything now, or undefined. */
  stoppedFor(tenant: string): { target: "all" | "tenant"; since: string } | undefined {
    const all = this.stops.get(ALL);
    if (all !== undefined) return { target: "all", since: all };
    const own = this.stops.get(tenant);
    return own === undefined ? undefined : { target: "tenant", since: own };
  }

  /** Aborts when `tenant` (or everything) is stopped. */
  signal(tenant: string): AbortSignal {
    let c = this.controllers.get(tenant);
    if (c === undefined || c.signal.aborted) {
      c = new AbortController();
      this.controllers.set(tenant, c);
    }
    if (this.all.signal.aborted) this.all = new AbortController();
    return AbortSignal.any([c.signal, this.all.signal]);
  }

  /**
   * Stops at once in this gateway (running jobs are killed before the engine
   * has even recorded the marker), then records the marker; if recording
   * fails the stop still holds here, and the error says it would not survive a restart.
   */
  async stop(tenant?: string): Promise<StopState> {
    const target = tenant ?? ALL;
    const since = this.stops.get(target) ?? new Date(this.now()).toISOString();
    this.stops.set(target, since);
    this.fire();
    // A stop already recorded (by another gateway) keeps its time.
    const kept = await this.markers.add(target, since);
    this.stops.set(target, kept.since);
    return this.state();
  }

  /** Lifts a tenant's stop; without a tenant, lifts every stop. */
  async resume(tenant?: string): Promise<StopState> {
    const targets = tenant === undefined ? [...this.stops.keys()] : [tenant];
    // Also markers this gateway has not seen yet.
    if (tenant === undefined) {
      for (const m of await this.markers.list()) {
        if (!targets.includes(m.target)) targets.push(m.target);
      }
    }
    for (const target of targets) {
      await this.markers.remove(target);
      this.stops.delete(target);
    }
    return this.state();
  }

  state(): StopState {
    const all = this.stops.get(ALL);
    return {
      all: all === undefined ? null : { since: all },
      tenants: [...this.stops]
        .filter(([t]) => t !== ALL)
        .map(([tenant, since]) => ({ tenant, since })),
    };
  }

  /** Aborts the signals of whatever is stopped now. */
  private fire(): void {
    // An AbortError, as a client's hang-up gives: the executor reads it as a cancellation.
    if (this.stops.has(ALL)) {
      this.all.abort(new DOMException("emergency stop of everything", "AbortError"));
    }
    for (const [tenant, c] of this.controllers) {
      if (this.stops.has(tenant)) {
        c.abort(new DOMException(`emergency stop of tenant ${tenant}`, "AbortError"));
        this.controllers.delete(tenant);
      }
    }
  }
}
