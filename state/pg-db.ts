// The connection pool a PostgreSQL store holds (the `pg` driver): queries with
// the failures of the server or the connection turned into
// StoreUnavailableError (so the API answers 503 with a sentence), transactions
// on one pooled client, and bigint columns read as numbers (every one holds
// epoch milliseconds or a byte count, far below 2^53). The hot statements
// are prepared: parsed and planned once per connection, not at every call.
import { createHash } from "node:crypto";
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

/**
 * A statement of fixed text that each connection prepares the first time it
 * runs it (a named statement of the extended protocol), then only binds and
 * executes: the jobs' writes skip the server's parse and plan. The name is
 * the text's digest, so two texts never share one. Its text names the
 * columns it returns (no `*`): a migration adding a column to a table (a
 * newer gateway's, during an upgrade) leaves its result as it was. A
 * migration that replaces a function or table it uses makes the server plan
 * it again by itself; a connection that died takes its statements with it,
 * and the next one prepares them again.
 */
export interface Prepared {
  readonly name: string;
  readonly text: string;
}

export function prepared(text: string): Prepared {
  return { name: `airlock_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, text };
}

/**
 * The server's refusal to run a prepared statement whose result's columns
 * changed under it (feature_not_supported: a migration changed a column's
 * type); the connection that holds it is dropped, and the call sent again
 * unprepared.
 */
function resultTypeChanged(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === "0A000" && /cached plan must not change result type/.test(String(e.message));
}

export interface Queryable {
  query(sql: string | Prepared, params?: readonly Param[]): Promise<Row[]>;
}

async function run(
  on: pg.Pool | pg.PoolClient,
  sql: string | Prepared,
  values: unknown[],
): Promise<Row[]> {
  if (typeof sql === "string") return (await on.query(sql, values)).rows as Row[];
  return (await on.query({ name: sql.name, text: sql.text, values })).rows as Row[];
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

  async query(sql: string | Prepared, params: readonly Param[] = []): Promise<Row[]> {
    const values = params as unknown[];
    try {
      try {
        return await run(this.pool, sql, values);
      } catch (err) {
        // The pool dropped the client it failed on (as after any failure).
        if (typeof sql === "string" || !resultTypeChanged(err)) throw err;
        return await run(this.pool, sql.text, values);
      }
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
          return await run(client, sql, params as unknown[]);
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
      // A client whose connection failed (or holds a stale prepared statement) is not given back to the pool.
      client.release(err instanceof StoreUnavailableError || resultTypeChanged(err));
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
