// Several gateways as one service (DESIGN.md "Replicas"), on a shared state
// store's ClusterRecords: this gateway's heartbeat in the registry; the sweep
// that ends what a silent gateway left (its executions `lost`, its in-flight
// idempotency keys released, its running approvals failed) — each dead
// gateway claimed by one sweeper only; the stops of other gateways picked up
// within a heartbeat; and the workspace routes forwarded to a live gateway of
// the engine that holds the workspace's volume (and a cancel to the gateway
// running the execution), signed with the peers' secret.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler, Next } from "hono";
import { AirlockError } from "../core/errors.ts";
import type { ClusterRecords, GatewayRecord, StateStore, StoredError } from "../core/state.ts";
import { guarded } from "./executions/executions.ts";

export interface ReplicaOptions {
  cluster: ClusterRecords;
  state: StateStore;
  instanceId: string;
  engineId: string;
  /** Where siblings reach this gateway. */
  url: string;
  peerSecret: string;
  heartbeatMs: number;
  gatewayTimeoutMs: number;
  /** Re-reads the stops (the access's StopSwitch.refresh). */
  refreshStops: () => Promise<void>;
  log: (level: "info" | "warn", fields: object, message: string) => void;
}

/** The header a forwarded request carries: `<epoch ms>.<hex HMAC-SHA256 of ms, method, path>`. */
export const PEER_HEADER = "x-airlock-peer";
/** How old a signature may be (clocks of hosts differ a little; a replay later is refused). */
const SIGNATURE_MAX_AGE_MS = 60_000;
/** Hop-by-hop headers, and those fetch sets itself. */
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  PEER_HEADER,
]);
const WORKSPACE_PATH = /^\/v1\/workspaces\/([^/]+)(\/.*)?$/;
/** Cancelling kills the job where it runs: sent to its gateway. */
const CANCEL_PATH = /^\/v1\/executions\/([^/]+)$/;
/** Approving runs the held job where it is approved: a workspace's job on its engine. */
const APPROVE_PATH = /^\/v1\/approvals\/([^/]+)\/approve$/;

export function sign(secret: string, at: number, method: string, path: string): string {
  return createHmac("sha256", secret).update(`${at}\n${method}\n${path}`).digest("hex");
}

/** Whether a request carries a valid signature of a sibling gateway. */
export function signedByPeer(secret: string, req: Request, now = Date.now()): boolean | undefined {
  const header = req.headers.get(PEER_HEADER);
  if (header === null) return undefined;
  const [at, mac] = header.split(".");
  const url = new URL(req.url);
  const when = Number(at);
  if (!Number.isSafeInteger(when) || Math.abs(now - when) > SIGNATURE_MAX_AGE_MS) return false;
  const expected = Buffer.from(sign(secret, when, req.method, url.pathname + url.search), "hex");
  const given = Buffer.from(mac ?? "", "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export class Replicas {
  private readonly o: ReplicaOptions;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(options: ReplicaOptions) {
    this.o = options;
  }

  /** Registers this gateway, then keeps its heartbeat, sweeps the dead and refreshes the stops. */
  async start(): Promise<void> {
    // Job slots this instance held when it last stopped are not held now.
    await this.o.cluster.quotas.releaseInstance(this.o.instanceId);
    await this.beat();
    const { instanceId, engineId, url } = this.o;
    this.o.log("info", { instanceId, engineId, url }, "joined the gateways' registry");
    this.timer = setInterval(() => {
      this.tick().catch((err: unknown) =>
        this.o.log("warn", { err }, "the replicas' heartbeat or sweep failed"),
      );
    }, this.o.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const { instanceId, engineId, url } = this.o;
    await this.o.cluster.gateways.heartbeat({ instanceId, engineId, url });
  }

  private async tick(): Promise<void> {
    await this.beat();
    await this.o.refreshStops();
    await this.sweep();
  }

  /** Ends what gateways silent past the timeout left; returns their ids. */
  async sweep(): Promise<string[]> {
    const dead = await this.o.cluster.gateways.claimDead(this.o.gatewayTimeoutMs);
    for (const id of dead) {
      const error: StoredError = {
        code: "internal",
        message: `the gateway running it (instance ${id}) stopped answering for ${this.o.gatewayTimeoutMs} ms; its outcome is unknown`,
      };
      const ended = {
        lost: await this.o.state.executions.markLost(id, error),
        slots: await this.o.cluster.quotas.releaseInstance(id),
        keys: await this.o.state.idempotency.releaseInstance(id),
        approvals: await this.o.state.approvals.failRunning(id, error),
      };
      this.o.log("warn", { instanceId: id, ...ended }, "a gateway went silent: its jobs end lost");
    }
    return dead;
  }

  /** Leaves the registry (a clean stop): siblings stop forwarding here at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.o.cluster.gateways.leave(this.o.instanceId);
    await this.o.cluster.quotas.releaseInstance(this.o.instanceId);
  }

  /**
   * Before authentication and everything else under /v1/workspaces/:id: a
   * workspace on another engine is served by a live gateway of that engine;
   * this one only passes the request and its answer through.
   */
  forward(): MiddlewareHandler {
    return async (c, next) => {
      const signed = signedByPeer(this.o.peerSecret, c.req.raw);
      if (signed === false) {
        throw new AirlockError(
          "unauthorized",
          "a forwarded request's peer signature is not valid: AIRLOCK_PEER_SECRET differs between gateways, or their clocks are more than a minute apart",
        );
      }
      if (signed === true) return next();
      const cancel = c.req.method === "DELETE" ? CANCEL_PATH.exec(c.req.path) : null;
      if (cancel !== null)
        return this.cancelWhereItRuns(c, next, decodeURIComponent(cancel[1] as string));
      const workspace = await this.workspaceOf(c.req.method, c.req.path);
      if (workspace === undefined) return next();
      const engine = await guarded(() => this.o.cluster.workspaces.engineOf(workspace));
      if (engine === undefined || engine === this.o.engineId) return next();
      const live = await this.live((g) => g.engineId === engine);
      if (live.length === 0) {
        throw new AirlockError(
          "docker_unavailable",
          `workspace ${workspace} lives on engine ${engine}, and no live gateway drives that engine now`,
          { details: { workspace, engine, reason: "no_live_gateway" }, retryAfterSeconds: 5 },
        );
      }
      return this.relay(c, live, `workspace ${workspace} lives on engine ${engine}`);
    };
  }

  /** Another live gateway's open execution: the cancel goes there; anything else is answered here. */
  private async cancelWhereItRuns(c: Context, next: Next, id: string) {
    const runner = await guarded(() => this.o.cluster.runnerOf(id));
    if (runner === undefined || runner === this.o.instanceId) return next();
    const live = await this.live((g) => g.instanceId === runner);
    if (live.length === 0) return next();
    return this.relay(c, live, `execution ${id} runs on gateway ${runner}`);
  }

  private async live(pick: (g: GatewayRecord) => boolean): Promise<GatewayRecord[]> {
    const all = await guarded(() => this.o.cluster.gateways.live(this.o.gatewayTimeoutMs));
    return all.filter((g) => pick(g) && g.instanceId !== this.o.instanceId);
  }

  /** The workspace a request works on: its path's, or a workspace job's being approved. */
  private async workspaceOf(method: string, path: string): Promise<string | undefined> {
    const ws = WORKSPACE_PATH.exec(path);
    if (ws !== null) return decodeURIComponent(ws[1] as string);
    const approve = method === "POST" ? APPROVE_PATH.exec(path) : null;
    if (approve === null) return undefined;
    const id = decodeURIComponent(approve[1] as string);
    return (await guarded(() => this.o.state.approvals.get(id)))?.workspace;
  }

  /** Sends the request to the first of `live` that answers (round-robin), and its answer back. */
  private async relay(c: Context, live: GatewayRecord[], why: string): Promise<Response> {
    const req = c.req.raw;
    const url = new URL(req.url);
    const path = url.pathname + url.search;
    const headers = new Headers();
    for (const [name, value] of req.headers) if (!NOT_FORWARDED.has(name)) headers.set(name, value);
    const at = Date.now();
    headers.set(PEER_HEADER, `${at}.${sign(this.o.peerSecret, at, req.method, path)}`);
    // A body is read once: buffered, so a gateway that cannot be reached can be passed over for the next.
    const body =
      req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    const start = this.next++ % live.length;
    let lastError: unknown;
    for (let i = 0; i < live.length; i++) {
      const target = live[(start + i) % live.length];
      if (target === undefined) continue;
      try {
        const res = await fetch(`${target.url}${path}`, {
          method: req.method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal: req.signal,
          redirect: "manual",
        });
        const out = new Headers(res.headers);
        out.delete("content-encoding");
        out.delete("content-length");
        out.delete("transfer-encoding");
        out.set("x-airlock-served-by", target.instanceId);
        return new Response(res.body, { status: res.status, headers: out });
      } catch (err) {
        if (req.signal.aborted) throw err;
        lastError = err;
      }
    }
    throw new AirlockError(
      "docker_unavailable",
      `${why}, and none of its gateways answered (${(lastError as Error)?.message})`,
      {
        details: { reason: "gateways_unreachable", gateways: live.map((g) => g.instanceId) },
        retryAfterSeconds: 5,
        cause: lastError,
      },
    );
  }

  /**
   * After the workspace routes: a workspace created (or forked) here is
   * recorded on this engine, one deleted is forgotten.
   */
  place(): MiddlewareHandler {
    return async (c, next) => {
      await next();
      const path = c.req.path;
      const tenant = (c.get("caller") as { tenant?: string } | undefined)?.tenant;
      if (c.req.method === "DELETE" && c.res.status === 204) {
        const id = WORKSPACE_PATH.exec(path);
        if (id !== null && id[2] === undefined) {
          await guarded(() =>
            this.o.cluster.workspaces.remove(decodeURIComponent(id[1] as string)),
          );
        }
        return;
      }
      if (c.req.method !== "POST" || c.res.status !== 201 || tenant === undefined) return;
      if (!(path === "/v1/workspaces" || path.endsWith("/fork"))) return;
      const body = (await c.res.clone().json()) as { id?: string; workspaces?: { id: string }[] };
      const ids = [
        ...(body.id === undefined ? [] : [body.id]),
        ...(body.workspaces ?? []).map((w) => w.id),
      ];
      for (const id of ids) {
        await guarded(() => this.o.cluster.workspaces.place(id, tenant, this.o.engineId));
      }
    };
  }
}
