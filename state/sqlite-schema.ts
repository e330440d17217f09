// The embedded store's schema, as numbered migrations. Each is applied once,
// in order, in one transaction with its row in schema_migrations, so a store
// is always at a version this list names. A file from a newer airlock is
// refused, never half-understood. Append new migrations; never edit one that
// shipped.
import { StoreVersionError } from "../core/state.ts";
import type { Db } from "./sqlite-db.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FINAL = "('done', 'failed', 'cancelled', 'lost')";

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "executions, output, idempotency, approvals, audit",
    sql: `
      CREATE TABLE executions (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled', 'lost')),
        profile TEXT NOT NULL,
        workspace TEXT,
        instance_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER,
        result TEXT,
        result_dropped_bytes INTEGER,
        error TEXT,
        output_bytes INTEGER NOT NULL DEFAULT 0,
        output_dropped_bytes INTEGER NOT NULL DEFAULT 0,
        CHECK ((ended_at IS NULL) = (status NOT IN ${FINAL}))
      );
      CREATE INDEX executions_by_tenant ON executions (tenant, created_at);
      CREATE INDEX executions_by_workspace ON executions (tenant, workspace, created_at)
        WHERE workspace IS NOT NULL;
      -- Keyed and filtered on columns a start does not change, so only create
      -- and the end of an execution write to them (each index page costs a
      -- page in the log on the hot path).
      CREATE INDEX executions_open ON executions (instance_id) WHERE ended_at IS NULL;
      CREATE INDEX executions_created ON executions (created_at);

      CREATE TABLE output (
        execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        stream TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr')),
        data BLOB NOT NULL,
        PRIMARY KEY (execution_id, seq)
      );

      CREATE TABLE idempotency (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
        token TEXT,
        instance_id TEXT NOT NULL,
        ttl_ms INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status INTEGER,
        headers TEXT,
        body BLOB,
        PRIMARY KEY (tenant, key)
      ) WITHOUT ROWID;
      CREATE INDEX idempotency_expiry ON idempotency (expires_at);
      CREATE INDEX idempotency_in_flight ON idempotency (instance_id) WHERE state = 'in_flight';

      CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'denied', 'expired', 'cancelled')),
        request TEXT NOT NULL,
        job TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        decided_by TEXT,
        instance_id TEXT,
        settled_at INTEGER,
        result TEXT,
        result_dropped_bytes INTEGER,
        error TEXT
      );
      CREATE INDEX approvals_pending ON approvals (tenant, expires_at) WHERE status = 'pending';
      CREATE INDEX approvals_running ON approvals (instance_id) WHERE status = 'running';
      CREATE INDEX approvals_settled ON approvals (settled_at) WHERE settled_at IS NOT NULL;
      CREATE INDEX approvals_created ON approvals (created_at);

      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        time_ms INTEGER,
        tenant TEXT,
        scope TEXT,
        status TEXT NOT NULL,
        op TEXT NOT NULL,
        record TEXT NOT NULL
      );
      CREATE INDEX audit_time ON audit (time_ms);
    `,
  },
  {
    version: 2,
    name: "workspace manifests",
    sql: `
      CREATE TABLE workspace_manifests (
        workspace TEXT PRIMARY KEY,
        data BLOB NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX workspace_manifests_updated ON workspace_manifests (updated_at);
    `,
  },
  {
    version: 3,
    name: "gateways, workspace engines, rate takes, stops, quota slots, usage",
    sql: `
      CREATE TABLE gateways (
        instance_id TEXT PRIMARY KEY,
        engine_id TEXT NOT NULL,
        url TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
      );
      CREATE TABLE workspace_engines (
        workspace_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        engine_id TEXT NOT NULL
      );
      CREATE TABLE rate_takes (
        key TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX rate_takes_by_key ON rate_takes (key, at);
      CREATE TABLE stops (
        target TEXT PRIMARY KEY,
        since TEXT NOT NULL
      );
      CREATE TABLE quota_slots (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX quota_slots_by_tenant ON quota_slots (tenant);
      CREATE TABLE usage (
        tenant TEXT NOT NULL,
        at INTEGER NOT NULL,
        cpu_ms INTEGER NOT NULL,
        container_ms INTEGER NOT NULL
      );
      CREATE INDEX usage_by_tenant ON usage (tenant, at);
    `,
  },
];

/** Brings the store up to the newest migration; refuses a store newer than this code. */
export function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = migrations.at(-1)?.version ?? 0;
  return db.tx(() => {
    db.raw.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at INTEGER NOT NULL
    )`);
    const row = db.raw.prepare("SELECT max(version) AS v FROM schema_migrations").get();
    const current = Number(row?.["v"] ?? 0);
    if (current > latest) {
      throw new StoreVersionError(
        `the state store ${db.file} is at schema version ${current}, written by a newer airlock; ` +
          `this one knows versions up to ${latest}. Run the newer airlock, or point AIRLOCK_DATA_DIR at another directory.`,
      );
    }
    const record = db.raw.prepare(
      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
    );
    for (const m of migrations) {
      if (m.version <= current) continue;
      db.raw.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
    // Also a write on every open, so a read-only file is refused here, not at the first job.
    db.raw.exec(`PRAGMA user_version = ${latest}`);
    return latest;
  });
}
