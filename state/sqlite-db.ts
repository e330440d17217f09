// The one connection an embedded store holds (node:sqlite's DatabaseSync):
// statements prepared once and kept, write transactions that take the write
// lock up front, and SQLite's failures of the disk or the file turned into
// StoreUnavailableError, so the API can answer 503 with a sentence.
import type { DatabaseSync, SQLInputValue, SQLOutputValue, StatementSync } from "node:sqlite";
import { StoreUnavailableError } from "../core/state.ts";

/** SQLite's primary result codes (https://sqlite.org/rescode.html) that mean "the store is unusable now". */
const UNAVAILABLE: Record<number, StoreUnavailableError["reason"]> = {
  5: "busy", // SQLITE_BUSY: another connection held the lock past the busy timeout
  6: "busy", // SQLITE_LOCKED
  8: "read_only", // SQLITE_READONLY
  10: "io", // SQLITE_IOERR
  11: "corrupt", // SQLITE_CORRUPT
  13: "full", // SQLITE_FULL: the disk, or the store's own size limit
  14: "io", // SQLITE_CANTOPEN
  15: "busy", // SQLITE_PROTOCOL
  26: "corrupt", // SQLITE_NOTADB
};

const WHAT: Record<StoreUnavailableError["reason"], string> = {
  busy: "is locked by another process past the busy timeout",
  read_only: "is read-only (the file or its directory cannot be written)",
  io: "cannot be read or written (I/O error)",
  corrupt: "is damaged or not an airlock state file",
  full: "cannot grow: the disk (or the store's size limit) is full",
};

/** A SQLite error of the disk or the file → StoreUnavailableError; anything else unchanged. */
export function translateSqliteError(err: unknown, file: string): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as { errcode?: unknown } | null)?.errcode;
  if (typeof code !== "number") return err;
  // Extended codes carry the primary code in their low byte.
  const reason = UNAVAILABLE[code & 0xff];
  if (reason === undefined) return err;
  const detail = (err as { errstr?: unknown }).errstr ?? (err as Error).message;
  return new StoreUnavailableError(
    reason,
    `the state store ${file} ${WHAT[reason]}: ${String(detail)}`,
    { cause: err },
  );
}

export type Row = Record<string, SQLOutputValue>;

export class Db {
  readonly raw: DatabaseSync;
  readonly file: string;
  private readonly statements = new Map<string, StatementSync>();

  constructor(raw: DatabaseSync, file: string) {
    this.raw = raw;
    this.file = file;
  }

  /** The statement for this SQL, prepared on first use and kept. */
  stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.raw.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `fn` with SQLite's errors translated; the failures every method of
   * the store can meet. Synchronous: node:sqlite blocks, but our statements
   * take microseconds.
   */
  guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw translateSqliteError(err, this.file);
    }
  }

  /**
   * One write transaction. BEGIN IMMEDIATE takes the write lock before the
   * first read, so a second connection waits (busy timeout) instead of failing
   * to upgrade a read snapshot that went stale (SQLITE_BUSY_SNAPSHOT in WAL).
   */
  tx<T>(fn: () => T): T {
    return this.guard(() => {
      if (this.raw.isTransaction) return fn();
      this.stmt("BEGIN IMMEDIATE").run();
      try {
        const out = fn();
        this.stmt("COMMIT").run();
        return out;
      } catch (err) {
        if (this.raw.isTransaction) this.stmt("ROLLBACK").run();
        throw err;
      }
    });
  }

  /** Deletes in slices of `chunk` rows, one transaction each, so a big purge never holds the lock long. */
  deleteInChunks(sql: string, params: SQLInputValue[], chunk = 1000): number {
    let total = 0;
    for (;;) {
      const n = Number(this.tx(() => this.stmt(sql).run(...params, chunk)).changes);
      total += n;
      if (n < chunk) return total;
    }
  }

  close(): void {
    this.statements.clear();
    if (this.raw.isOpen) this.raw.close();
  }
}

/** JSON text of a value, or what to record when it is larger than `max` bytes. */
export function capJson(
  value: unknown,
  max: number,
): { json: string | null; droppedBytes: number | null } {
  if (value === undefined) return { json: null, droppedBytes: null };
  const json = JSON.stringify(value);
  const bytes = Buffer.byteLength(json);
  return bytes > max ? { json: null, droppedBytes: bytes } : { json, droppedBytes: null };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
