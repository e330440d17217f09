// The PostgreSQL state store (DESIGN.md "Replicas": AIRLOCK_STATE_URL=postgres://…):
// the same interfaces as the embedded store, on a database every gateway of
// the service shares, plus what replicas share (ClusterRecords: the gateways'
// registry, workspaces' engines, rate counters, stops). Opening it migrates
// the schema (state/pg-schema.ts).
import type {
  ClusterRecords,
  PurgeReport,
  Retention,
  StateLimits,
  StateStore,
} from "../core/state.ts";
import { PgApprovals } from "./pg-approvals.ts";
import { PgAudit } from "./pg-audit.ts";
import { PgCluster } from "./pg-cluster.ts";
import { PgDb } from "./pg-db.ts";
import { PgExecutions } from "./pg-executions.ts";
import { PgIdempotency } from "./pg-idempotency.ts";
import { PgManifests } from "./pg-manifests.ts";
import { PgOutput } from "./pg-output.ts";
import { migratePg } from "./pg-schema.ts";
import { DEFAULT_LIMITS } from "./sqlite.ts";

/** Rate takes are kept this long: longer than the longest window (an hour). */
const RATE_KEEP_MS = 2 * 3600_000;

export interface PgStateOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  limits?: Partial<StateLimits>;
  /** Connections in the pool. */
  poolSize?: number;
  outputFlushMs?: number;
  outputBatchEvents?: number;
  outputBatchBytes?: number;
  onError?: (err: unknown) => void;
  now?: () => number;
}

class PgState implements StateStore {
  readonly executions: PgExecutions;
  readonly output: PgOutput;
  readonly idempotency: PgIdempotency;
  readonly approvals: PgApprovals;
  readonly audit: PgAudit;
  readonly manifests: PgManifests;
  readonly cluster: ClusterRecords;
  readonly limits: StateLimits;
  private readonly db: PgDb;
  private closed = false;

  constructor(db: PgDb, o: PgStateOptions) {
    const now = o.now ?? Date.now;
    this.db = db;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.output = new PgOutput(db, {
      maxOutputBytes: this.limits.maxOutputBytes,
      flushMs: o.outputFlushMs ?? 5,
      batchEvents: o.outputBatchEvents ?? 256,
      batchBytes: o.outputBatchBytes ?? 1024 * 1024,
      onError: o.onError ?? (() => {}),
    });
    this.executions = new PgExecutions(db, this.output, now, this.limits.maxResultBytes);
    this.idempotency = new PgIdempotency(db, now, this.limits.maxAnswerBytes);
    this.approvals = new PgApprovals(db, now, this.limits.maxResultBytes);
    this.audit = new PgAudit(db, now);
    this.manifests = new PgManifests(db, now);
    this.cluster = new PgCluster(db, now);
  }

  async purge(r: Retention): Promise<PurgeReport> {
    await this.cluster.rates.purge(RATE_KEEP_MS);
    await this.cluster.quotas.purge(RATE_KEEP_MS);
    await this.manifests.purge(r.executionsMs);
    return {
      executions: await this.executions.purge(r.executionsMs),
      idempotency: await this.idempotency.purge(),
      approvals: await this.approvals.purge(r.executionsMs),
      audit: await this.audit.purge(r.auditMs, r.auditKeepAtMost),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.output.stop();
    try {
      await this.output.flush();
    } finally {
      await this.db.close();
    }
  }
}

/** Connects, migrates, and returns the store; StoreUnavailableError when the server does not answer. */
export async function openPgState(options: PgStateOptions): Promise<StateStore> {
  const db = new PgDb(options.url, { max: options.poolSize ?? 10 });
  try {
    await migratePg(db);
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
  return new PgState(db, options);
}

/** Whether AIRLOCK_STATE_URL names PostgreSQL (the only server store there is). */
export function isPgUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}
