// The embedded state store (DESIGN.md "Executions", "Replicas": without
// AIRLOCK_STATE_URL, a file store serves one gateway): one SQLite file in the
// data directory, through Node's built-in node:sqlite, no extra dependency.
// WAL with synchronous=NORMAL makes a commit an append to the log without an
// fsync (a power cut may lose the last commits, never the file), so the hot
// path pays microseconds; a busy timeout lets two gateways share the file.
import { closeSync, mkdirSync, openSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  type PurgeReport,
  type Retention,
  type StateLimits,
  type StateStore,
  StoreUnavailableError,
} from "../core/state.ts";
import { SqliteApprovals } from "./sqlite-approvals.ts";
import { SqliteAudit } from "./sqlite-audit.ts";
import { SqliteCluster } from "./sqlite-cluster.ts";
import { Db, translateSqliteError } from "./sqlite-db.ts";
import { SqliteExecutions } from "./sqlite-executions.ts";
import { SqliteIdempotency } from "./sqlite-idempotency.ts";
import { SqliteManifests } from "./sqlite-manifests.ts";
import { SqliteOutput } from "./sqlite-output.ts";
import { migrate } from "./sqlite-schema.ts";

export const STATE_FILE = "state.db";

export const DEFAULT_LIMITS: StateLimits = {
  maxResultBytes: 16 * 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  maxAnswerBytes: 16 * 1024 * 1024,
};

export interface SqliteStateOptions {
  /** Where state.db lives; default defaultDataDir(). Created (0700) if missing. */
  dataDir?: string | undefined;
  limits?: Partial<StateLimits>;
  /** How long a write waits for another connection's lock before StoreUnavailableError. */
  busyTimeoutMs?: number;
  /** A cap on the file's size: past it, writes fail as a full disk would (StoreUnavailableError "full"). */
  maxBytes?: number | undefined;
  /** Output batching: the longest an event waits, and the events/bytes that write a batch at once. */
  outputFlushMs?: number;
  outputBatchEvents?: number;
  outputBatchBytes?: number;
  /** Told of an output batch that could not be written (the next flush also throws it). */
  onError?: (err: unknown) => void;
  /** The clock (tests); default Date.now. */
  now?: () => number;
}

/** AIRLOCK_DATA_DIR's default: $XDG_STATE_HOME/airlock, else ~/.local/state/airlock. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env["XDG_STATE_HOME"];
  // The XDG spec ignores a relative path.
  if (xdg?.startsWith("/")) return join(xdg, "airlock");
  return join(env["HOME"] || homedir(), ".local", "state", "airlock");
}

class SqliteState implements StateStore {
  readonly executions: SqliteExecutions;
  readonly output: SqliteOutput;
  readonly idempotency: SqliteIdempotency;
  readonly approvals: SqliteApprovals;
  readonly audit: SqliteAudit;
  readonly manifests: SqliteManifests;
  readonly cluster: SqliteCluster;
  readonly limits: StateLimits;
  private readonly db: Db;

  constructor(db: Db, o: SqliteStateOptions) {
    const now = o.now ?? Date.now;
    this.db = db;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.output = new SqliteOutput(db, {
      maxOutputBytes: this.limits.maxOutputBytes,
      flushMs: o.outputFlushMs ?? 5,
      batchEvents: o.outputBatchEvents ?? 256,
      batchBytes: o.outputBatchBytes ?? 1024 * 1024,
      onError: o.onError ?? (() => {}),
    });
    this.executions = new SqliteExecutions(db, this.output, now, this.limits.maxResultBytes);
    this.idempotency = new SqliteIdempotency(db, now, this.limits.maxAnswerBytes);
    this.approvals = new SqliteApprovals(db, now, this.limits.maxResultBytes);
    this.audit = new SqliteAudit(db, now);
    this.manifests = new SqliteManifests(db, now);
    this.cluster = new SqliteCluster(db, now);
  }

  async purge(r: Retention): Promise<PurgeReport> {
    await this.manifests.purge(r.executionsMs);
    // Longer than the longest rate window (an hour).
    await this.cluster.rates.purge(2 * 3600_000);
    await this.cluster.quotas.purge(2 * 3600_000);
    return {
      executions: await this.executions.purge(r.executionsMs),
      idempotency: await this.idempotency.purge(),
      approvals: await this.approvals.purge(r.executionsMs),
      audit: await this.audit.purge(r.auditMs, r.auditKeepAtMost),
    };
  }

  async close(): Promise<void> {
    if (!this.db.raw.isOpen) return;
    this.output.stop();
    try {
      await this.output.flush();
    } finally {
      this.db.close();
    }
  }
}

function openDatabase(file: string, o: SqliteStateOptions): Db {
  const db = new Db(new DatabaseSync(file, { timeout: o.busyTimeoutMs ?? 5000 }), file);
  try {
    db.guard(() => {
      const mode = db.raw.prepare("PRAGMA journal_mode = WAL").get()?.["journal_mode"];
      if (mode !== "wal") throw new Error(`journal_mode is ${String(mode)}, not wal`);
      db.raw.exec("PRAGMA synchronous = NORMAL");
      db.raw.exec("PRAGMA foreign_keys = ON");
      // The log is truncated back to this after a checkpoint, so it cannot keep a burst's size.
      db.raw.exec("PRAGMA journal_size_limit = 67108864");
      if (o.maxBytes !== undefined) {
        const page = Number(db.raw.prepare("PRAGMA page_size").get()?.["page_size"]);
        db.raw.exec(`PRAGMA max_page_count = ${Math.max(1, Math.floor(o.maxBytes / page))}`);
      }
    });
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function createError(file: string, err: unknown): StoreUnavailableError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code === "ENOSPC" ? "full" : code === "EIO" ? "io" : "read_only";
  return new StoreUnavailableError(
    reason,
    `the state store ${file} cannot be created: ${(err as Error).message}`,
    { cause: err },
  );
}

/** Opens (creating and migrating) the store in `dataDir`. */
export async function openSqliteState(options: SqliteStateOptions = {}): Promise<StateStore> {
  return openSqliteStateSync(options);
}

/**
 * openSqliteState for a caller that cannot await (a test's app builder):
 * node:sqlite opens synchronously anyway.
 */
export function openSqliteStateSync(options: SqliteStateOptions = {}): StateStore {
  const dir = options.dataDir ?? defaultDataDir();
  const file = join(dir, STATE_FILE);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Results and audit records are the tenants' business: the file is the
    // owner's only, and SQLite gives its -wal and -shm files the same mode.
    closeSync(openSync(file, "wx", 0o600));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") throw createError(file, err);
  }
  let db: Db;
  try {
    db = openDatabase(file, options);
  } catch (err) {
    throw translateSqliteError(err, file);
  }
  return new SqliteState(db, options);
}
