// What gateways on one PostgreSQL share beyond executions (core/state.ts
// ClusterRecords): the registry of live gateways, on the database's clock so
// hosts with drifting clocks agree who is alive; which engine holds each
// workspace; rate-limit takes and job slots, counted under advisory locks so
// a limit holds across gateways (each in one round trip: a function of
// pg-schema.ts); and the emergency stops.
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
import { DB_NOW_MS, type PgDb, prepared, type Row } from "./pg-db.ts";
import { SUMMARY_COLUMNS } from "./pg-executions.ts";
import { toSummary } from "./rows.ts";
import { iso } from "./sqlite-db.ts";

function toGateway(row: Row): GatewayRecord {
  return {
    instanceId: row["instance_id"] as string,
    engineId: row["engine_id"] as string,
    url: row["url"] as string,
    startedAt: iso(row["started_at"] as number),
    heartbeatAt: iso(row["heartbeat_at"] as number),
  };
}

class PgGateways implements GatewayRecords {
  private readonly db: PgDb;

  constructor(db: PgDb) {
    this.db = db;
  }

  async heartbeat(g: { instanceId: string; engineId: string; url: string }): Promise<void> {
    await this.db.query(
      `INSERT INTO gateways (instance_id, engine_id, url, started_at, heartbeat_at)
       VALUES ($1, $2, $3, ${DB_NOW_MS}, ${DB_NOW_MS})
       ON CONFLICT (instance_id) DO UPDATE SET engine_id = excluded.engine_id, url = excluded.url,
         heartbeat_at = excluded.heartbeat_at`,
      [g.instanceId, g.engineId, g.url],
    );
  }

  async live(maxAgeMs: number): Promise<GatewayRecord[]> {
    const rows = await this.db.query(
      `SELECT * FROM gateways WHERE heartbeat_at > ${DB_NOW_MS} - $1 ORDER BY started_at, instance_id`,
      [maxAgeMs],
    );
    return rows.map(toGateway);
  }

  async claimDead(maxAgeMs: number): Promise<string[]> {
    const rows = await this.db.query(
      `DELETE FROM gateways WHERE heartbeat_at <= ${DB_NOW_MS} - $1 RETURNING instance_id`,
      [maxAgeMs],
    );
    return rows.map((r) => r["instance_id"] as string);
  }

  async leave(instanceId: string): Promise<void> {
    await this.db.query("DELETE FROM gateways WHERE instance_id = $1", [instanceId]);
  }
}

class PgPlacements implements WorkspacePlacements {
  private readonly db: PgDb;

  constructor(db: PgDb) {
    this.db = db;
  }

  async place(workspaceId: string, tenant: string, engineId: string): Promise<void> {
    await this.db.query(
      `INSERT INTO workspace_engines (workspace_id, tenant, engine_id) VALUES ($1, $2, $3)
       ON CONFLICT (workspace_id) DO UPDATE SET tenant = excluded.tenant, engine_id = excluded.engine_id`,
      [workspaceId, tenant, engineId],
    );
  }

  async engineOf(workspaceId: string): Promise<string | undefined> {
    const rows = await this.db.query(
      "SELECT engine_id FROM workspace_engines WHERE workspace_id = $1",
      [workspaceId],
    );
    return rows[0]?.["engine_id"] as string | undefined;
  }

  async remove(workspaceId: string): Promise<void> {
    await this.db.query("DELETE FROM workspace_engines WHERE workspace_id = $1", [workspaceId]);
  }
}

// A job's statements (its admission, its slot, its usage after the answer): prepared (pg-db.ts).
const TAKE_RATES = prepared("SELECT airlock_take_rates($1, $2, $3, $4) AS refused");
const INSERT_SLOT = prepared(
  "INSERT INTO quota_slots (id, tenant, instance_id, at) VALUES ($1, $2, $3, $4)",
);
const TAKE_SLOT = prepared("SELECT airlock_take_slot($1, $2, $3, $4, $5) AS n");
const RELEASE_SLOT = prepared("DELETE FROM quota_slots WHERE id = $1");
const RECORD_USAGE = prepared(
  "INSERT INTO usage (tenant, at, cpu_ms, container_ms) VALUES ($1, $2, $3, $4)",
);

class PgRates implements RateCounters {
  private readonly db: PgDb;
  private readonly now: () => number;

  constructor(db: PgDb, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async take(checks: readonly RateCheck[]) {
    if (checks.length === 0) return undefined;
    // Locked, checked and counted in one round trip (airlock_take_rates, pg-schema.ts).
    const rows = await this.db.query(TAKE_RATES, [
      checks.map((c) => c.key),
      checks.map((c) => c.windowMs),
      checks.map((c) => c.limit),
      this.now(),
    ]);
    const refused = rows[0]?.["refused"] as (number | string)[] | null | undefined;
    if (refused === null || refused === undefined) return undefined;
    return { index: Number(refused[0]), retryAfterMs: Number(refused[1]) };
  }

  async purge(olderThanMs: number): Promise<number> {
    const rows = await this.db.query("DELETE FROM rate_takes WHERE at < $1 RETURNING key", [
      this.now() - olderThanMs,
    ]);
    return rows.length;
  }
}

function toUsage(row: Row): UsageRecord {
  return {
    at: row["at"] as number,
    cpuMs: row["cpu_ms"] as number,
    containerMs: row["container_ms"] as number,
  };
}

class PgQuotas implements QuotaCounters {
  private readonly db: PgDb;
  private readonly now: () => number;

  constructor(db: PgDb, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async acquireSlot(tenant: string, max: number, instanceId: string) {
    if (max >= Number.MAX_SAFE_INTEGER) {
      // No limit to hold: one insert, no lock.
      const slot = randomUUID();
      await this.db.query(INSERT_SLOT, [slot, tenant, instanceId, this.now()]);
      return { slot };
    }
    // Under the tenant's advisory lock, counted and taken in one round trip (pg-schema.ts).
    const slot = randomUUID();
    const rows = await this.db.query(TAKE_SLOT, [tenant, max, slot, instanceId, this.now()]);
    const running = Number(rows[0]?.["n"] ?? 0);
    return running < 0 ? { slot } : { running };
  }

  async releaseSlot(slot: string): Promise<void> {
    await this.db.query(RELEASE_SLOT, [slot]);
  }

  async releaseInstance(instanceId: string): Promise<number> {
    const rows = await this.db.query(
      "DELETE FROM quota_slots WHERE instance_id = $1 RETURNING id",
      [instanceId],
    );
    return rows.length;
  }

  async running(tenant: string): Promise<number> {
    const rows = await this.db.query(
      "SELECT count(*)::int AS n FROM quota_slots WHERE tenant = $1",
      [tenant],
    );
    return Number(rows[0]?.["n"] ?? 0);
  }

  async recordUsage(tenant: string, u: UsageRecord): Promise<void> {
    await this.db.query(RECORD_USAGE, [
      tenant,
      u.at,
      Math.round(u.cpuMs),
      Math.round(u.containerMs),
    ]);
  }

  async usageSince(tenant: string, sinceMs: number): Promise<UsageRecord[]> {
    const rows = await this.db.query(
      "SELECT at, cpu_ms, container_ms FROM usage WHERE tenant = $1 AND at > $2 ORDER BY at",
      [tenant, sinceMs],
    );
    return rows.map(toUsage);
  }

  async purge(olderThanMs: number): Promise<number> {
    const rows = await this.db.query("DELETE FROM usage WHERE at < $1 RETURNING tenant", [
      this.now() - olderThanMs,
    ]);
    return rows.length;
  }
}

class PgStops implements StopRecords {
  private readonly db: PgDb;

  constructor(db: PgDb) {
    this.db = db;
  }

  async list(): Promise<StopRecord[]> {
    const rows = await this.db.query("SELECT target, since FROM stops ORDER BY target");
    return rows.map((r) => ({ target: r["target"] as string, since: r["since"] as string }));
  }

  async add(target: string, since: string): Promise<StopRecord> {
    // The no-op update makes RETURNING give the stop in force when one was there already.
    const rows = await this.db.query(
      `INSERT INTO stops (target, since) VALUES ($1, $2)
       ON CONFLICT (target) DO UPDATE SET since = stops.since RETURNING target, since`,
      [target, since],
    );
    const row = rows[0] as Row;
    return { target: row["target"] as string, since: row["since"] as string };
  }

  async remove(target: string): Promise<void> {
    await this.db.query("DELETE FROM stops WHERE target = $1", [target]);
  }
}

export class PgCluster implements ClusterRecords {
  readonly gateways: GatewayRecords;
  readonly workspaces: WorkspacePlacements;
  readonly rates: RateCounters;
  readonly quotas: QuotaCounters;
  readonly stops: StopRecords;

  private readonly db: PgDb;

  constructor(db: PgDb, now: () => number) {
    this.db = db;
    this.gateways = new PgGateways(db);
    this.workspaces = new PgPlacements(db);
    this.rates = new PgRates(db, now);
    this.quotas = new PgQuotas(db, now);
    this.stops = new PgStops(db);
  }

  async runnerOf(executionId: string): Promise<string | undefined> {
    const rows = await this.db.query(
      "SELECT instance_id FROM executions WHERE id = $1 AND ended_at IS NULL",
      [executionId],
    );
    return rows[0]?.["instance_id"] as string | undefined;
  }

  async openExecutions(limit: number): Promise<ExecutionSummary[]> {
    const rows = await this.db.query(
      `SELECT ${SUMMARY_COLUMNS} FROM executions WHERE ended_at IS NULL
       ORDER BY created_at, seq LIMIT $1`,
      [Math.max(0, Math.floor(limit))],
    );
    return rows.map(toSummary);
  }
}
