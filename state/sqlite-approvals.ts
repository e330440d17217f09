// Approval checkpoints in the embedded store, so a pending approval outlives a
// restart. Each decision is one compare-and-set UPDATE (pending and unexpired
// → running/denied/cancelled), so an approval runs once however many admins
// press the button on however many gateways. A pending approval past its
// expiry reads as `expired` without anyone having to write that down.
import { randomBytes } from "node:crypto";
import type {
  ApprovalCreate,
  ApprovalRecord,
  ApprovalRecords,
  ApprovalStatus,
  NewApproval,
  Outcome,
  StoredError,
} from "../core/state.ts";
import { toApprovalRecord } from "./rows.ts";
import { capJson, type Db, type Row } from "./sqlite-db.ts";

const COLUMNS =
  "id, status, request, created_at, expires_at, decided_at, decided_by, instance_id, result, result_dropped_bytes, error";

export class SqliteApprovals implements ApprovalRecords {
  private readonly db: Db;
  private readonly now: () => number;
  private readonly maxResultBytes: number;

  constructor(db: Db, now: () => number, maxResultBytes: number) {
    this.db = db;
    this.now = now;
    this.maxResultBytes = maxResultBytes;
  }

  private toRecord(row: Row, now = this.now()): ApprovalRecord {
    return toApprovalRecord(row, now);
  }

  async create(n: NewApproval): Promise<ApprovalCreate> {
    const now = this.now();
    const id = `apr_${randomBytes(12).toString("hex")}`;
    return this.db.tx((): ApprovalCreate => {
      const pending = Number(
        this.db
          .stmt(
            "SELECT count(*) AS n FROM approvals WHERE tenant = ? AND status = 'pending' AND expires_at > ?",
          )
          .get(n.request.tenant, now)?.["n"] ?? 0,
      );
      if (pending >= n.maxPendingPerTenant) return { created: false, pending };
      const row = this.db
        .stmt(
          `INSERT INTO approvals (id, tenant, status, request, job, created_at, expires_at)
           VALUES (?, ?, 'pending', ?, ?, ?, ?) RETURNING ${COLUMNS}`,
        )
        .get(
          id,
          n.request.tenant,
          JSON.stringify(n.request),
          n.job === undefined ? null : JSON.stringify(n.job),
          now,
          now + n.ttlMs,
        );
      return { created: true, approval: this.toRecord(row as Row, now) };
    });
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const row = this.db.guard(() =>
      this.db.stmt(`SELECT ${COLUMNS} FROM approvals WHERE id = ?`).get(id),
    );
    return row === undefined ? undefined : this.toRecord(row);
  }

  async list(
    q: { status?: ApprovalStatus | "all"; tenant?: string; limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const status = q.status ?? "pending";
    const now = this.now();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (status === "pending") where.push("status = 'pending' AND expires_at > ?");
    else if (status === "expired") {
      where.push("(status = 'expired' OR (status = 'pending' AND expires_at <= ?))");
    } else if (status !== "all") where.push("status = ?");
    if (status === "pending" || status === "expired") params.push(now);
    else if (status !== "all") params.push(status);
    if (q.tenant !== undefined) {
      where.push("tenant = ?");
      params.push(q.tenant);
    }
    const sql = `SELECT ${COLUMNS} FROM approvals ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at, rowid LIMIT ?`;
    const rows = this.db.guard(() => this.db.stmt(sql).all(...params, q.limit ?? 1000));
    return rows.map((r) => this.toRecord(r, now));
  }

  /** One compare-and-set: the row if this call changed it, else the approval as it is. */
  private async decide(
    id: string,
    sql: string,
    params: (string | number | null)[],
  ): Promise<(Outcome<ApprovalRecord> & { job?: unknown }) | undefined> {
    const row = this.db.guard(() => this.db.stmt(sql).get(...params));
    if (row !== undefined) {
      const out: Outcome<ApprovalRecord> & { job?: unknown } = {
        changed: true,
        record: this.toRecord(row),
      };
      if (typeof row["job"] === "string") out.job = JSON.parse(row["job"]);
      return out;
    }
    const record = await this.get(id);
    return record === undefined ? undefined : { changed: false, record };
  }

  async approve(id: string, by: string, instanceId: string) {
    const now = this.now();
    return this.decide(
      id,
      `UPDATE approvals SET status = 'running', decided_by = ?, decided_at = ?, instance_id = ?
       WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING ${COLUMNS}, job`,
      [by, now, instanceId, id, now],
    );
  }

  async deny(id: string, by: string): Promise<Outcome<ApprovalRecord> | undefined> {
    const now = this.now();
    return this.decide(
      id,
      `UPDATE approvals SET status = 'denied', decided_by = ?, decided_at = ?, settled_at = ?
       WHERE id = ? AND status = 'pending' AND expires_at > ? RETURNING ${COLUMNS}`,
      [by, now, now, id, now],
    );
  }

  async cancelPending(tenant: string | undefined, by: string): Promise<number> {
    const now = this.now();
    const r = this.db.guard(() =>
      this.db
        .stmt(
          `UPDATE approvals SET status = 'cancelled', decided_by = ?1, decided_at = ?2, settled_at = ?2
           WHERE status = 'pending' AND expires_at > ?2 AND (?3 IS NULL OR tenant = ?3)`,
        )
        .run(by, now, tenant ?? null),
    );
    return Number(r.changes);
  }

  async finish(
    id: string,
    status: "done" | "failed",
    outcome: { result?: unknown; error?: StoredError },
  ): Promise<Outcome<ApprovalRecord> | undefined> {
    const result = capJson(outcome.result, this.maxResultBytes);
    return this.decide(
      id,
      `UPDATE approvals SET status = ?, settled_at = ?, result = ?, result_dropped_bytes = ?, error = ?
       WHERE id = ? AND status = 'running' RETURNING ${COLUMNS}`,
      [
        status,
        this.now(),
        result.json,
        result.droppedBytes,
        outcome.error === undefined ? null : JSON.stringify(outcome.error),
        id,
      ],
    );
  }

  async failRunning(instanceId: string, error: StoredError): Promise<number> {
    const r = this.db.guard(() =>
      this.db
        .stmt(
          `UPDATE approvals SET status = 'failed', settled_at = ?, error = ?
           WHERE status = 'running' AND instance_id = ?`,
        )
        .run(this.now(), JSON.stringify(error), instanceId),
    );
    return Number(r.changes);
  }

  async purge(olderThanMs: number): Promise<number> {
    return this.db.deleteInChunks(
      `DELETE FROM approvals WHERE id IN (SELECT id FROM approvals
         WHERE (settled_at IS NOT NULL AND settled_at < ?1) OR (status = 'pending' AND expires_at < ?1)
         LIMIT ?2)`,
      [this.now() - olderThanMs],
    );
  }
}
