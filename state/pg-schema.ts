// The PostgreSQL store's schema, as numbered migrations (as sqlite-schema.ts):
// each applied once, in order, in one transaction with its row in
// schema_migrations. Gateways starting at once take one advisory lock, so
// one migrates and the others then find the work done. A database of a newer
// airlock is refused. Append new migrations; never edit one that shipped.
import { StoreVersionError } from "../core/state.ts";
import type { PgDb } from "./pg-db.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FINAL = "('done', 'failed', 'cancelled', 'lost')";
/** Any constant: the key of the advisory lock migrations hold. */
const MIGRATION_LOCK = 7_311_402_915;

export const PG_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "executions, output, idempotency, approvals, audit, gateways, placements, rates, stops, quotas, workspace manifests",
    sql: `
      CREATE TABLE executions (
        seq bigserial UNIQUE,
        id text PRIMARY KEY,
        tenant text NOT NULL,
        status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled', 'lost')),
        profile text NOT NULL,
        workspace text,
        instance_id text NOT NULL,
        created_at bigint NOT NULL,
        started_at bigint,
        ended_at bigint,
        result text,
        result_dropped_bytes bigint,
        error text,
        output_bytes bigint NOT NULL DEFAULT 0,
        output_dropped_bytes bigint NOT NULL DEFAULT 0,
        CHECK ((ended_at IS NULL) = (status NOT IN ${FINAL}))
      );
      CREATE INDEX executions_by_tenant ON executions (tenant, created_at);
      CREATE INDEX executions_by_workspace ON executions (tenant, workspace, created_at)
        WHERE workspace IS NOT NULL;
      CREATE INDEX executions_open ON executions (instance_id) WHERE ended_at IS NULL;
      CREATE INDEX executions_created ON executions (created_at);

      CREATE TABLE output (
        execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        stream text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
        data bytea NOT NULL,
        PRIMARY KEY (execution_id, seq)
      );

      CREATE TABLE idempotency (
        tenant text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        state text NOT NULL CHECK (state IN ('in_flight', 'done')),
        token text,
        instance_id text NOT NULL,
        ttl_ms bigint NOT NULL,
        expires_at bigint NOT NULL,
        status integer,
        headers text,
        body bytea,
        PRIMARY KEY (tenant, key)
      );
      CREATE INDEX idempotency_expiry ON idempotency (expires_at);
      CREATE INDEX idempotency_in_flight ON idempotency (instance_id) WHERE state = 'in_flight';

      CREATE TABLE approvals (
        seq bigserial UNIQUE,
        id text PRIMARY KEY,
        tenant text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'denied', 'expired', 'cancelled')),
        request text NOT NULL,
        job text,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        decided_at bigint,
        decided_by text,
        instance_id text,
        settled_at bigint,
        result text,
        result_dropped_bytes bigint,
        error text
      );
      CREATE INDEX approvals_pending ON approvals (tenant, expires_at) WHERE status = 'pending';
      CREATE INDEX approvals_running ON approvals (instance_id) WHERE status = 'running';
      CREATE INDEX approvals_settled ON approvals (settled_at) WHERE settled_at IS NOT NULL;
      CREATE INDEX approvals_created ON approvals (created_at);

      CREATE TABLE audit (
        seq bigserial PRIMARY KEY,
        time_ms bigint,
        tenant text,
        scope text,
        status text NOT NULL,
        op text NOT NULL,
        record text NOT NULL
      );
      CREATE INDEX audit_time ON audit (time_ms);

      CREATE TABLE gateways (
        instance_id text PRIMARY KEY,
        engine_id text NOT NULL,
        url text NOT NULL,
        started_at bigint NOT NULL,
        heartbeat_at bigint NOT NULL
      );

      CREATE TABLE workspace_engines (
        workspace_id text PRIMARY KEY,
        tenant text NOT NULL,
        engine_id text NOT NULL
      );

      CREATE TABLE rate_takes (
        key text NOT NULL,
        at bigint NOT NULL
      );
      CREATE INDEX rate_takes_by_key ON rate_takes (key, at);

      CREATE TABLE stops (
        target text PRIMARY KEY,
        since text NOT NULL
      );

      CREATE TABLE quota_slots (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        instance_id text NOT NULL,
        at bigint NOT NULL
      );
      CREATE INDEX quota_slots_by_tenant ON quota_slots (tenant);
      CREATE INDEX quota_slots_by_instance ON quota_slots (instance_id);

      CREATE TABLE usage (
        tenant text NOT NULL,
        at bigint NOT NULL,
        cpu_ms bigint NOT NULL,
        container_ms bigint NOT NULL
      );
      CREATE INDEX usage_by_tenant ON usage (tenant, at);

      CREATE TABLE workspace_manifests (
        workspace text PRIMARY KEY,
        data bytea NOT NULL,
        updated_at bigint NOT NULL
      );
      CREATE INDEX workspace_manifests_updated ON workspace_manifests (updated_at);
    `,
  },
  {
    version: 2,
    name: "one round trip each: a job slot taken, rate limits taken, an execution ended with its last output",
    // A VOLATILE function's statements each see what committed before them,
    // so the count after the advisory lock sees every slot taken before it.
    sql: `
      CREATE FUNCTION airlock_take_slot(p_tenant text, p_max bigint, p_id text, p_instance text, p_at bigint)
      RETURNS bigint LANGUAGE plpgsql AS $$
      DECLARE n bigint;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('slots:' || p_tenant, 0));
        SELECT count(*) INTO n FROM quota_slots WHERE tenant = p_tenant;
        IF n >= p_max THEN RETURN n; END IF;
        INSERT INTO quota_slots (id, tenant, instance_id, at) VALUES (p_id, p_tenant, p_instance, p_at);
        RETURN -1;
      END $$;

      CREATE FUNCTION airlock_write_output(p_id text, p_seqs int[], p_streams text[], p_data bytea[], p_max bigint)
      RETURNS void LANGUAGE sql AS $$
        WITH cur AS (
          SELECT output_bytes AS kept, output_dropped_bytes AS dropped FROM executions
          WHERE id = p_id FOR UPDATE
        ), ev AS (
          SELECT s, st, d, sum(octet_length(d)) OVER (ORDER BY ord) AS upto
          FROM unnest(p_seqs, p_streams, p_data) WITH ORDINALITY AS t(s, st, d, ord)
        ), fit AS (
          SELECT ev.* FROM ev, cur WHERE cur.dropped = 0 AND cur.kept + ev.upto <= p_max
        ), ins AS (
          INSERT INTO output (execution_id, seq, stream, data)
          SELECT p_id, s, st, d FROM fit WHERE EXISTS (SELECT 1 FROM cur)
          ON CONFLICT DO NOTHING RETURNING octet_length(data) AS n
        )
        UPDATE executions SET
          output_bytes = output_bytes + (SELECT coalesce(sum(n), 0) FROM ins),
          output_dropped_bytes = output_dropped_bytes
            + (SELECT coalesce(sum(octet_length(d)), 0) FROM ev)
            - (SELECT coalesce(sum(octet_length(d)), 0) FROM fit)
        WHERE id = p_id
      $$;

      -- Every key locked (in one order, so two takes never wait in a cycle), every
      -- window checked; a take counted against each only when all have room.
      -- Refused: {index (from 0) of the check whose room comes back last, ms until it does}.
      CREATE FUNCTION airlock_take_rates(p_keys text[], p_windows bigint[], p_limits bigint[], p_now bigint)
      RETURNS bigint[] LANGUAGE plpgsql AS $$
      DECLARE
        k text;
        taken_at bigint;
        refused bigint[];
      BEGIN
        FOR k IN SELECT DISTINCT u COLLATE "C" FROM unnest(p_keys) AS u ORDER BY 1 LOOP
          PERFORM pg_advisory_xact_lock(hashtextextended('rate:' || k, 0));
        END LOOP;
        FOR i IN 1 .. cardinality(p_keys) LOOP
          -- The limit-th newest take inside the window: while there is one, the window is full.
          SELECT at INTO taken_at FROM rate_takes WHERE key = p_keys[i] AND at > p_now - p_windows[i]
            ORDER BY at DESC OFFSET p_limits[i] - 1 LIMIT 1;
          IF FOUND AND (refused IS NULL OR taken_at + p_windows[i] - p_now > refused[2]) THEN
            refused := ARRAY[i - 1, taken_at + p_windows[i] - p_now];
          END IF;
        END LOOP;
        IF refused IS NOT NULL THEN RETURN refused; END IF;
        INSERT INTO rate_takes (key, at) SELECT unnest(p_keys), p_now;
        RETURN NULL;
      END $$;

      -- The last output first, then the end: a reader that sees the end sees all of it.
      CREATE FUNCTION airlock_end_execution(
        p_id text, p_to text, p_from text[], p_now bigint, p_result text, p_dropped bigint,
        p_error text, p_tenant text, p_seqs int[], p_streams text[], p_data bytea[], p_max bigint)
      RETURNS SETOF executions LANGUAGE plpgsql AS $$
      BEGIN
        IF cardinality(p_seqs) > 0 THEN
          PERFORM airlock_write_output(p_id, p_seqs, p_streams, p_data, p_max);
        END IF;
        RETURN QUERY WITH ended AS (
          UPDATE executions SET status = p_to, ended_at = p_now,
            result = coalesce(p_result, result),
            result_dropped_bytes = coalesce(p_dropped, result_dropped_bytes),
            error = coalesce(p_error, error)
          WHERE id = p_id AND status = ANY (p_from) AND (p_tenant IS NULL OR tenant = p_tenant)
          RETURNING *
        ) SELECT * FROM ended;
      END $$;
    `,
  },
  {
    version: 3,
    name: "an execution ended from queued stamps its start; output written by cached plans",
    // The output write as plpgsql: its statement's plan is kept per connection,
    // where a LANGUAGE sql function's body is planned again at every call (the
    // same statement; this is ~0.2 ms less on the end of every job). The end
    // gains p_started (a job that ran, ended before it was recorded running,
    // gets started_at with its end); the 12-argument one stays for gateways of
    // the version before, which may still run during an upgrade.
    sql: `
      CREATE OR REPLACE FUNCTION airlock_write_output(p_id text, p_seqs int[], p_streams text[], p_data bytea[], p_max bigint)
      RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        WITH cur AS (
          SELECT output_bytes AS kept, output_dropped_bytes AS dropped FROM executions
          WHERE id = p_id FOR UPDATE
        ), ev AS (
          SELECT s, st, d, sum(octet_length(d)) OVER (ORDER BY ord) AS upto
          FROM unnest(p_seqs, p_streams, p_data) WITH ORDINALITY AS t(s, st, d, ord)
        ), fit AS (
          SELECT ev.* FROM ev, cur WHERE cur.dropped = 0 AND cur.kept + ev.upto <= p_max
        ), ins AS (
          INSERT INTO output (execution_id, seq, stream, data)
          SELECT p_id, s, st, d FROM fit WHERE EXISTS (SELECT 1 FROM cur)
          ON CONFLICT DO NOTHING RETURNING octet_length(data) AS n
        )
        UPDATE executions SET
          output_bytes = output_bytes + (SELECT coalesce(sum(n), 0) FROM ins),
          output_dropped_bytes = output_dropped_bytes
            + (SELECT coalesce(sum(octet_length(d)), 0) FROM ev)
            - (SELECT coalesce(sum(octet_length(d)), 0) FROM fit)
        WHERE id = p_id;
      END $$;

      -- The last output first, then the end: a reader that sees the end sees all of it.
      CREATE FUNCTION airlock_end_execution(
        p_id text, p_to text, p_from text[], p_now bigint, p_result text, p_dropped bigint,
        p_error text, p_tenant text, p_started boolean, p_seqs int[], p_streams text[],
        p_data bytea[], p_max bigint)
      RETURNS SETOF executions LANGUAGE plpgsql AS $$
      BEGIN
        IF cardinality(p_seqs) > 0 THEN
          PERFORM airlock_write_output(p_id, p_seqs, p_streams, p_data, p_max);
        END IF;
        RETURN QUERY WITH ended AS (
          UPDATE executions SET status = p_to, ended_at = p_now,
            started_at = CASE WHEN p_started THEN coalesce(started_at, p_now) ELSE started_at END,
            result = coalesce(p_result, result),
            result_dropped_bytes = coalesce(p_dropped, result_dropped_bytes),
            error = coalesce(p_error, error)
          WHERE id = p_id AND status = ANY (p_from) AND (p_tenant IS NULL OR tenant = p_tenant)
          RETURNING *
        ) SELECT * FROM ended;
      END $$;
    `,
  },
];

/** Brings the database up to the newest migration; refuses one newer than this code. */
export async function migratePg(db: PgDb, migrations = PG_MIGRATIONS): Promise<number> {
  const latest = migrations.at(-1)?.version ?? 0;
  return db.tx(async (q) => {
    await q.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await q.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at bigint NOT NULL
    )`);
    const rows = await q.query("SELECT coalesce(max(version), 0) AS v FROM schema_migrations");
    const current = Number(rows[0]?.["v"] ?? 0);
    if (current > latest) {
      throw new StoreVersionError(
        `the state store ${db.where} is at schema version ${current}, written by a newer airlock; ` +
          `this one knows versions up to ${latest}. Run the newer airlock, or point AIRLOCK_STATE_URL at another database.`,
      );
    }
    for (const m of migrations) {
      if (m.version <= current) continue;
      await q.query(m.sql);
      await q.query(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        [m.version, m.name, Date.now()],
      );
    }
    return latest;
  });
}
