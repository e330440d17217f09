// The connection pool a PostgreSQL store holds (the `pg` driver): queries with
// the failures of the server or the connection turned into
// StoreUnavailableError (so the API answers 503 with a sentence), transactions
// on one pooled client, and bigint columns read as numbers (every one holds
// epoch milliseconds or a byte count, far below 2^53).
import pg from "pg";
import { StoreUnavailableError } from "../core/state.ts";

export type Row = Record<string, unknown>;
export type Param = string | number | boolean | null | Uint8Array | string[] | number[];

/** SQLSTATE classes and codes (postgresql.org/docs/15/errcodes-appendix.html) that mean "unusable now". */
function reasonOf(code: string): StoreUnavailableError["reason"] | undefined {
  if (code === "53100") return "full"; // disk_full
  if (code === "25006") return "read_only"; // read_only_sql_transaction (a standby)
  if (code === "53300" || code === "55P03" || code === "57014") return "busy"; // too many connections, lock, timeout
  if (code === "XX001" || code === "XX002") return "corrupt"; // data_corrupted, index_corrupted
  // connection exceptions, insufficient resources, operator intervention, system and I/O errors
  if (/^(08|53|57|58)/.test(code)) return "io";
  return undefined;
}

const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
]);

/** A failure of the server or the connection → StoreUnavailableError; anything else unchanged. */
export function translatePgError(err: unknown, where: string): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = (err as Error | null)?.message ?? String(err);
  let reason: StoreUnavailableError["reason"] | undefined;
  if (typeof code === "string") reason = NETWORK.has(code) ? "io" : reasonOf(code);
  // The driver's own words when a connection dies or cannot be made in time.
  if (
    reason === undefined &&
    /Connection terminated|timeout exceeded when trying to connect/i.test(message)
  ) {
    reason = "io";
  }
  if (reason === undefined) return err;
  return new StoreUnavailableError(
    reason,
    `the state store ${where} cannot be used now (${reason}): ${message}`,
    { cause: err },
  );
}

/** int8 (bigint) as a JS number; the driver's default is a string. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

export interface Queryable {
  query(sql: string, params?: readonly Param[]): Promise<Row[]>;
}

export class PgDb implements Queryable {
  readonly pool: pg.Pool;
  /** The URL without its password, for messages. */
  readonly where: string;

  constructor(url: string, options: { max?: number } = {}) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      // As the embedded store's WAL with synchronous=NORMAL: a commit does not
      // wait for its fsync, so the hot path pays a round trip, not a disk
      // flush (several per job). A crash of the database server may lose the
      // last few hundred milliseconds of commits, never consistency.
      options: "-c synchronous_commit=off",
      types,
    });
    // An idle client's connection that dies is reported here; the next query reconnects.
    this.pool.on("error", () => {});
    this.where = redact(url);
  }

  async query(sql: string, params: readonly Param[] = []): Promise<Row[]> {
    try {
      return (await this.pool.query(sql, params as unknown[])).rows as Row[];
    } catch (err) {
      throw translatePgError(err, this.where);
    }
  }

  /** One transaction on one client; rolled back when `fn` throws. */
  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw translatePgError(err, this.where);
    }
    const q: Queryable = {
      query: async (sql, params = []) => {
        try {
          return (await client.query(sql, params as unknown[])).rows as Row[];
        } catch (err) {
          throw translatePgError(err, this.where);
        }
      },
    };
    try {
      await q.query("BEGIN");
      const out = await fn(q);
      await q.query("COMMIT");
      client.release();
      return out;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      // A client whose connection failed is not given back to the pool.
      client.release(err instanceof StoreUnavailableError ? err : undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** postgres://user:secret@host/db → postgres://user@host/db */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "(an unparsable AIRLOCK_STATE_URL)";
  }
}

/** The store's clock in epoch ms, as SQL: heartbeats from several hosts compare one clock. */
export const DB_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
