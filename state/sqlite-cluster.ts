// The replicas' shared records (core/state.ts ClusterRecords) in the embedded
// store, for gateways on one host sharing its file: the same contract as the
// PostgreSQL store's (state/pg-cluster.ts). A rate take is one write
// transaction (BEGIN IMMEDIATE), so it is atomic across connections too.
import { randomUUID } from "node:crypto";
import type {
  ClusterRecords,
  ExecutionSummary,
  GatewayRecord,
  GatewayRecords,
  QuotaCounters,
  RateCheck,
  RateCounters,
  StopRecord,
  StopRecords,
  UsageRecord,
  WorkspacePlacements,
} from "../core/state.ts";
import { toSummary } from "./rows.ts";
import { type Db, iso, type Row } from "./sqlite-db.ts";

const SUMMARY_COLUMNS =
  "id, tenant, status, profile, workspace, instance_id, created_at, started_at, ended_at, " +
  "result_dropped_bytes, error, output_bytes, output_dropped_bytes";

function toGateway(row: Row): GatewayRecord {
  return {
    instanceId: row["instance_id"] as string,
    engineId: row["engine_id"] as string,
    url: row["url"] as string,
    startedAt: iso(row["started_at"] as number),
    heartbeatAt: iso(row["heartbeat_at"] as number),
  };
}

class SqliteGateways implements GatewayRecords {
  private readonly db: Db;
  private readonly now: () => number;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async heartbeat(g: { instanceId: string; engineId: string; url: string }): Promise<void> {
    const now = this.now();
    this.db.guard(() =>
      this.db
        .stmt(
          `INSERT INTO gateways (instance_id, engine_id, url, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (instance_id) DO UPDATE SET engine_id = excluded.engine_id, url = excluded.url,
             heartbeat_at = excluded.heartbeat_at`,
        )
        .run(g.instanceId, g.engineId, g.url, now, now),
    );
  }

  async live(maxAgeMs: number): Promise<GatewayRecord[]> {
    const rows = this.db.guard(() =>
      this.db
        .stmt("SELECT * FROM gateways WHERE heartbeat_at > ? ORDER BY started_at, instance_id")
        .all(this.now() - maxAgeMs),
    );
    return rows.map(toGateway);
  }

  async claimDead(maxAgeMs: number): Promise<string[]> {
    const rows = this.db.guard(() =>
      this.db
        .stmt("DELETE FROM gateways WHERE heartbeat_at <= ? RETURNING instance_id")
        .all(this.now() - maxAgeMs),
    );
    return rows.map((r) => r["instance_id"] as string);
  }

  async leave(instanceId: string): Promise<void> {
    this.db.guard(() => this.db.stmt("DELETE FROM gateways WHERE instance_id = ?").run(instanceId));
  }
}

class SqlitePlacements implements WorkspacePlacements {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async place(workspaceId: string, tenant: string, engineId: string): Promise<void> {
    this.db.guard(() =>
      this.db
        .stmt(
          `INSERT INTO workspace_engines (workspace_id, tenant, engine_id) VALUES (?, ?, ?)
           ON CONFLICT (workspace_id) DO UPDATE SET tenant = excluded.tenant, engine_id = excluded.engine_id`,
        )
        .run(workspaceId, tenant, engineId),
    );
  }

  async engineOf(workspaceId: string): Promise<string | undefined> {
    const row = this.db.guard(() =>
      this.db
        .stmt("SELECT engine_id FROM workspace_engines WHERE workspace_id = ?")
        .get(workspaceId),
    );
    return row?.["engine_id"] as string | undefined;
  }

  async remove(workspaceId: string): Promise<void> {
    this.db.guard(() =>
      this.db.stmt("DELETE FROM workspace_engines WHERE workspace_id = ?").run(workspaceId),
    );
  }
}

class SqliteRates implements RateCounters {
  private readonly db: Db;
  private readonly now: () => number;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async take(checks: readonly RateCheck[]) {
    if (checks.length === 0) return undefined;
    const now = this.now();
    return this.db.tx(() => {
      let refusal: { index: number; retryAfterMs: number } | undefined;
      for (const [index, c] of checks.entries()) {
        const row = this.db
          .stmt(
            "SELECT at FROM rate_takes WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
          )
          .get(c.key, now - c.windowMs, c.limit - 1);
        if (row === undefined) continue;
        const retryAfterMs = (row["at"] as number) + c.windowMs - now;
        if (refusal === undefined || retryAfterMs > refusal.retryAfterMs) {
          refusal = { index, retryAfterMs };
        }
      }
      if (refusal !== undefined) return refusal;
      const insert = this.db.stmt("INSERT INTO rate_takes (key, at) VALUES (?, ?)");
      for (const c of checks) insert.run(c.key, now);
      return undefined;
    });
  }

  async purge(olderThanMs: number): Promise<number> {
    return this.db.deleteInChunks(
      "DELETE FROM rate_takes WHERE rowid IN (SELECT rowid FROM rate_takes WHERE at < ? LIMIT ?)",
      [this.now() - olderThanMs],
    );
  }
}

class SqliteQuotas implements QuotaCounters {
  private readonly db: Db;
  private readonly now: () => number;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async acquireSlot(tenant: string, max: number, instanceId: string) {
    return this.db.tx((): { slot: string } | { running: number } => {
      const running = Number(
        this.db.stmt("SELECT count(*) AS n FROM quota_slots WHERE tenant = ?").get(tenant)?.["n"] ??
          0,
      );
      if (running >= max) return { running };
      const slot = randomUUID();
      this.db
        .stmt("INSERT INTO quota_slots (id, tenant, instance_id, at) VALUES (?, ?, ?, ?)")
        .run(slot, tenant, instanceId, this.now());
      return { slot };
    });
  }

  async releaseSlot(slot: string): Promise<void> {
    this.db.guard(() => this.db.stmt("DELETE FROM quota_slots WHERE id = ?").run(slot));
  }

  async releaseInstance(instanceId: string): Promise<number> {
    const r = this.db.guard(() =>
      this.db.stmt("DELETE FROM quota_slots WHERE instance_id = ?").run(instanceId),
    );
    return Number(r.changes);
  }

  async running(tenant: string): Promise<number> {
    const row = this.db.guard(() =>
      this.db.stmt("SELECT count(*) AS n FROM quota_slots WHERE tenant = ?").get(tenant),
    );
    return Number(row?.["n"] ?? 0);
  }

  async recordUsage(tenant: string, u: UsageRecord): Promise<void> {
    this.db.guard(() =>
      this.db
        .stmt("INSERT INTO usage (tenant, at, cpu_ms, container_ms) VALUES (?, ?, ?, ?)")
        .run(tenant, u.at, Math.round(u.cpuMs), Math.round(u.containerMs)),
    );
  }

  async usageSince(tenant: string, sinceMs: number): Promise<UsageRecord[]> {
    const rows = this.db.guard(() =>
      this.db
        .stmt(
          "SELECT at, cpu_ms, container_ms FROM usage WHERE tenant = ? AND at > ? ORDER BY at, rowid",
        )
        .all(tenant, sinceMs),
    );
    return rows.map((r) => ({
      at: r["at"] as number,
      cpuMs: r["cpu_ms"] as number,
      containerMs: r["container_ms"] as number,
    }));
  }

  async purge(olderThanMs: number): Promise<number> {
    return this.db.deleteInChunks(
      "DELETE FROM usage WHERE rowid IN (SELECT rowid FROM usage WHERE at < ? LIMIT ?)",
      [this.now() - olderThanMs],
    );
  }
}

class SqliteStops implements StopRecords {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  async list(): Promise<StopRecord[]> {
    const rows = this.db.guard(() =>
      this.db.stmt("SELECT target, since FROM stops ORDER BY target").all(),
    );
    return rows.map((r) => ({ target: r["target"] as string, since: r["since"] as string }));
  }

  async add(target: string, since: string): Promise<StopRecord> {
    const row = this.db.tx(() => {
      this.db
        .stmt("INSERT INTO stops (target, since) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .run(target, since);
      return this.db.stmt("SELECT target, since FROM stops WHERE target = ?").get(target) as Row;
    });
    return { target: row["target"] as string, since: row["since"] as string };
  }

  async remove(target: string): Promise<void> {
    this.db.guard(() => this.db.stmt("DELETE FROM stops WHERE target = ?").run(target));
  }
}

export class SqliteCluster implements ClusterRecords {
  readonly gateways: GatewayRecords;
  readonly workspaces: WorkspacePlacements;
  readonly rates: SqliteRates;
  readonly quotas: SqliteQuotas;
  readonly stops: StopRecords;
  private readonly db: Db;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.gateways = new SqliteGateways(db, now);
    this.workspaces = new SqlitePlacements(db);
    this.rates = new SqliteRates(db, now);
    this.quotas = new SqliteQuotas(db, now);
    this.stops = new SqliteStops(db);
  }

  async runnerOf(executionId: string): Promise<string | undefined> {
    const row = this.db.guard(() =>
      this.db
        .stmt("SELECT instance_id FROM executions WHERE id = ? AND ended_at IS NULL")
        .get(executionId),
    );
    return row?.["instance_id"] as string | undefined;
  }

  async openExecutions(limit: number): Promise<ExecutionSummary[]> {
    const rows = this.db.guard(() =>
      this.db
        .stmt(
          `SELECT ${SUMMARY_COLUMNS} FROM executions WHERE ended_at IS NULL
           ORDER BY created_at, rowid LIMIT ?`,
        )
        .all(Math.max(0, Math.floor(limit))),
    );
    return rows.map(toSummary);
  }
}
