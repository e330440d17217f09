// Approval checkpoints in the PostgreSQL store. Each decision is one
// compare-and-set UPDATE (pending and unexpired → running/denied/cancelled),
// so an approval runs once however many admins press the button on however
// many gateways; creating one counts the tenant's pending approvals under a
// per-tenant advisory lock, so two gateways cannot both pass the limit.
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
import type { Param, PgDb, Row } from "./pg-db.ts";
import { toApprovalRecord } from "./rows.ts";
import { capJson } from "./sqlite-db.ts";

const COLUMNS =
  "id, status, request, created_at, expires_at, decided_at, decided_by, instance_id, result, result_dropped_bytes, error";

type Decision = (Outcome<ApprovalRecord> & { job?: unknown }) | undefined;

export class PgApprovals implements ApprovalRecords {
  private readonly db: PgDb;
  private readonly now: () => number;
  private readonly maxResultBytes: number;

  constructor(db: PgDb, now: () => number, maxResultBytes: number) {
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
    return this.db.tx(async (q): Promise<ApprovalCreate> => {
      await q.query("SELECT pg_advisory_xact_lock(hashtextextended('approvals:' || $1, 0))", [
        n.request.tenant,
      ]);
      const counted = await q.query(
        "SELECT count(*)::int AS n FROM approvals WHERE tenant = $1 AND status = 'pending' AND expires_at > $2",
        [n.request.tenant, now],
      );
      const pending = Number(counted[0]?.["n"] ?? 0);
      if (pending >= n.maxPendingPerTenant) return { created: false, pending };
      const rows = await q.query(
        `INSERT INTO approvals (id, tenant, status, request, job, created_at, expires_at)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [
          id,
          n.request.tenant,
          JSON.stringify(n.request),
          n.job === undefined ? null : JSON.stringify(n.job),
          now,
          now + n.ttlMs,
        ],
      );
      return { created: true, approval: this.toRecord(rows[0] as Row, now) };
    });
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    const rows = await this.db.query(`SELECT ${COLUMNS} FROM approvals WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : this.toRecord(rows[0]);
  }

  async list(
    q: { status?: ApprovalStatus | "all"; tenant?: string; limit?: number } = {},
  ): Promise<ApprovalRecord[]> {
    const status = q.status ?? "pending";
    const now = this.now();
    const where: string[] = [];
    const params: Param[] = [];
    const p = (v: Param) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (status === "pending") where.push(`status = 'pending' AND expires_at > ${p(now)}`);
    else if (status === "expired") {
      where.push(`(status = 'expired' OR (status = 'pending' AND expires_at <= ${p(now)}))`);
    } else if (status !== "all") where.push(`status = ${p(status)}`);
    if (q.tenant !== undefined) where.push(`tenant = ${p(q.tenant)}`);
    const sql = `SELECT ${COLUMNS} FROM approvals ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at, seq LIMIT ${p(q.limit ?? 1000)}`;
    return (await this.db.query(sql, params)).map((r) => this.toRecord(r, now));
  }

  private async decide(id: string, sql: string, params: Param[]): Promise<Decision> {
    const row = (await this.db.query(sql, params))[0];
    if (row !== undefined) {
      const out: NonNullable<Decision> = { changed: true, record: this.toRecord(row) };
      if (typeof row["job"] === "string") out.job = JSON.parse(row["job"]);
      return out;
    }
    const record = await this.get(id);
    return record === undefined ? undefined : { changed: false, record };
  }

  async approve(id: string, by: string, instanceId: string): Promise<Decision> {
    const now = this.now();
    return this.decide(
      id,
      `UPDATE approvals SET status = 'running', decided_by = $1, decided_at = $2, instance_id = $3
       WHERE id = $4 AND status = 'pending' AND expires_at > $2 RETURNING ${COLUMNS}, job`,
      [by, now, instanceId, id],
    );
  }

  async deny(id: string, by: string): Promise<Outcome<ApprovalRecord> | undefined> {
    const now = this.now();
    return this.decide(
      id,
      `UPDATE approvals SET status = 'denied', decided_by = $1, decided_at = $2, settled_at = $2
       WHERE id = $3 AND status = 'pending' AND expires_at > $2 RETURNING ${COLUMNS}`,
      [by, now, id],
    );
  }

  async cancelPending(tenant: string | undefined, by: string): Promise<number> {
    const rows = await this.db.query(
      `UPDATE approvals SET status = 'cancelled', decided_by = $1, decided_at = $2, settled_at = $2
       WHERE status = 'pending' AND expires_at > $2 AND ($3::text IS NULL OR tenant = $3) RETURNING id`,
      [by, this.now(), tenant ?? null],
    );
    return rows.length;
  }

  async finish(
    id: string,
    status: "done" | "failed",
    outcome: { result?: unknown; error?: StoredError },
  ): Promise<Outcome<ApprovalRecord> | undefined> {
    const result = capJson(outcome.result, this.maxResultBytes);
    return this.decide(
      id,
      `UPDATE approvals SET status = $1, settled_at = $2, result = $3, result_dropped_bytes = $4, error = $5
       WHERE id = $6 AND status = 'running' RETURNING ${COLUMNS}`,
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
    const rows = await this.db.query(
      `UPDATE approvals SET status = 'failed', settled_at = $1, error = $2
       WHERE status = 'running' AND instance_id = $3 RETURNING id`,
      [this.now(), JSON.stringify(error), instanceId],
    );
    return rows.length;
  }

  async purge(olderThanMs: number): Promise<number> {
    const rows = await this.db.query(
      `DELETE FROM approvals WHERE (settled_at IS NOT NULL AND settled_at < $1)
         OR (status = 'pending' AND expires_at < $1) RETURNING id`,
      [this.now() - olderThanMs],
    );
    return rows.length;
  }
}
