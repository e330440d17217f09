// Records as both stores write and read them: the embedded and the PostgreSQL
// stores keep executions, approvals and audit records in the same columns, so
// one mapping between a record and its row serves both (only their SQL differs).
import type {
  ApprovalRecord,
  ApprovalRequest,
  ApprovalStatus,
  AuditRecord,
  Execution,
  ExecutionStatus,
  ExecutionSummary,
  NewExecution,
  StoredError,
} from "../core/state.ts";
import { iso } from "./sqlite-db.ts";

/** A row of either driver: column name → value. */
export type AnyRow = Record<string, unknown>;

/**
 * A new execution's values for (id, tenant, status, profile, workspace,
 * instance_id, created_at, started_at), in that order.
 */
export function newExecutionValues(n: NewExecution, now: number) {
  const status = n.status ?? "queued";
  return [
    n.id,
    n.tenant,
    status,
    n.profile,
    n.workspace ?? null,
    n.instanceId,
    now,
    status === "running" ? now : null,
  ] as const;
}

/** An audit record's values for (time_ms, tenant, scope, status, op, record), in that order. */
export function auditValues(r: AuditRecord) {
  const time = Date.parse(r.time);
  return [
    Number.isFinite(time) ? time : null,
    r.tenant,
    r.scope,
    r.status,
    r.op,
    JSON.stringify(r),
  ] as const;
}

export function toSummary(row: AnyRow): ExecutionSummary {
  const e: ExecutionSummary = {
    id: row["id"] as string,
    tenant: row["tenant"] as string,
    status: row["status"] as ExecutionStatus,
    profile: row["profile"] as string,
    instanceId: row["instance_id"] as string,
    createdAt: iso(row["created_at"] as number),
    outputBytes: row["output_bytes"] as number,
    outputDroppedBytes: row["output_dropped_bytes"] as number,
  };
  if (row["workspace"] !== null) e.workspace = row["workspace"] as string;
  if (row["started_at"] !== null) e.startedAt = iso(row["started_at"] as number);
  if (row["ended_at"] !== null) e.endedAt = iso(row["ended_at"] as number);
  if (row["result_dropped_bytes"] !== null) {
    e.resultDroppedBytes = row["result_dropped_bytes"] as number;
  }
  if (row["error"] !== null) e.error = JSON.parse(row["error"] as string) as StoredError;
  return e;
}

export function toExecution(row: AnyRow): Execution {
  const e: Execution = toSummary(row);
  if (row["result"] !== null && row["result"] !== undefined) {
    e.result = JSON.parse(row["result"] as string);
  }
  return e;
}

/** A pending approval past its expiry reads as `expired` without anyone having written that down. */
export function toApprovalRecord(row: AnyRow, now: number): ApprovalRecord {
  const request = JSON.parse(row["request"] as string) as ApprovalRequest;
  const expiresAt = row["expires_at"] as number;
  const status = row["status"] as ApprovalStatus;
  const a: ApprovalRecord = {
    ...request,
    id: row["id"] as string,
    status: status === "pending" && expiresAt <= now ? "expired" : status,
    createdAt: iso(row["created_at"] as number),
    expiresAt: iso(expiresAt),
  };
  if (row["decided_at"] !== null) a.decidedAt = iso(row["decided_at"] as number);
  if (row["decided_by"] !== null) a.decidedBy = row["decided_by"] as string;
  if (row["instance_id"] !== null) a.instanceId = row["instance_id"] as string;
  if (row["result"] !== null) a.result = JSON.parse(row["result"] as string);
  if (row["result_dropped_bytes"] !== null) {
    a.resultDroppedBytes = row["result_dropped_bytes"] as number;
  }
  if (row["error"] !== null) a.error = JSON.parse(row["error"] as string) as StoredError;
  return a;
}
