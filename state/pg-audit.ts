// Audit records in the PostgreSQL store: the trail GET /v1/audit reads on any
// gateway, every gateway's records in one table, newest appended first.
import type { AuditQuery, AuditRecord, AuditRecords } from "../core/state.ts";
import { type Param, type PgDb, prepared } from "./pg-db.ts";
import { auditValues } from "./rows.ts";

/** Every job's record, after its answer: prepared (pg-db.ts). */
const APPEND = prepared(
  "INSERT INTO audit (time_ms, tenant, scope, status, op, record) VALUES ($1, $2, $3, $4, $5, $6)",
);

export class PgAudit implements AuditRecords {
  private readonly db: PgDb;
  private readonly now: () => number;

  constructor(db: PgDb, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async append(r: AuditRecord): Promise<void> {
    await this.db.query(APPEND, auditValues(r));
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: Param[] = [];
    const add = (sql: (p: string) => string, value: string | number | undefined) => {
      if (value === undefined) return;
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    add((p) => `(time_ms IS NULL OR time_ms >= ${p})`, q.since);
    add((p) => `tenant = ${p}`, q.tenant);
    add((p) => `${p}::text = ANY (string_to_array(scope, ','))`, q.scope);
    add((p) => `status = ${p}`, q.status);
    add((p) => `op = ${p}`, q.op);
    params.push(q.limit ?? 100);
    const rows = await this.db.query(
      `SELECT record FROM audit ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => JSON.parse(r["record"] as string) as AuditRecord);
  }

  async purge(olderThanMs: number, keepAtMost?: number): Promise<number> {
    let n = (
      await this.db.query("DELETE FROM audit WHERE time_ms < $1 RETURNING seq", [
        this.now() - olderThanMs,
      ])
    ).length;
    if (keepAtMost !== undefined) {
      n += (
        await this.db.query(
          "DELETE FROM audit WHERE seq <= (SELECT max(seq) FROM audit) - $1 RETURNING seq",
          [Math.max(0, Math.floor(keepAtMost))],
        )
      ).length;
    }
    return n;
  }
}
