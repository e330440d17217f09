// Audit records in the embedded store: the trail GET /v1/audit reads, kept
// across restarts and bounded by age and count instead of a ring in memory.
// The filters are the ring's: tenant, one scope, status, op, since.
import type { AuditQuery, AuditRecord, AuditRecords } from "../core/state.ts";
import { auditValues } from "./rows.ts";
import type { Db } from "./sqlite-db.ts";

export class SqliteAudit implements AuditRecords {
  private readonly db: Db;
  private readonly now: () => number;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async append(r: AuditRecord): Promise<void> {
    this.db.guard(() =>
      this.db
        .stmt(
          "INSERT INTO audit (time_ms, tenant, scope, status, op, record) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .run(...auditValues(r)),
    );
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (sql: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    // A record whose time does not parse is kept, as the in-memory ring keeps it.
    add("(time_ms IS NULL OR time_ms >= ?)", q.since);
    add("tenant = ?", q.tenant);
    add("instr(',' || scope || ',', ',' || ? || ',') > 0", q.scope);
    add("status = ?", q.status);
    add("op = ?", q.op);
    // Newest appended first: records are written when operations end, so their times interleave.
    const sql = `SELECT record FROM audit ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY seq DESC LIMIT ?`;
    const rows = this.db.guard(() => this.db.stmt(sql).all(...params, q.limit ?? 100));
    return rows.map((r) => JSON.parse(r["record"] as string) as AuditRecord);
  }

  async purge(olderThanMs: number, keepAtMost?: number): Promise<number> {
    let n = this.db.deleteInChunks(
      "DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE time_ms < ? LIMIT ?)",
      [this.now() - olderThanMs],
      5000,
    );
    if (keepAtMost !== undefined) {
      n += this.db.deleteInChunks(
        `DELETE FROM audit WHERE seq IN (SELECT seq FROM audit
           WHERE seq <= (SELECT max(seq) FROM audit) - ? ORDER BY seq LIMIT ?)`,
        [Math.max(0, Math.floor(keepAtMost))],
        5000,
      );
    }
    return n;
  }
}
