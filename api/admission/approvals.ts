// The approval runner at the HTTP layer: a job that meets one of its tenant's
// checkpoints is held (202 pending) in the ApprovalStore (policies/access);
// approved, it runs exactly once on the tenant's stop signal, with its own
// audit line; denied or expired, never. Also who may read or decide one.
import type { Context } from "hono";
import { AirlockError } from "../../core/errors.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { RunOptions } from "../../executor/sandbox.ts";
import type { ApprovalView } from "../../policies/access/approvals.ts";
import type { Scope } from "../../policies/access/schema.ts";
import type { AuditNote, AuthEnv, Caller } from "../auth.ts";
import type { Access } from "./access.ts";
import { note, outputBytes } from "./audit.ts";

type Ctx = Context<AuthEnv>;

/** A job admitted but for a human's approval. */
export interface HeldJob {
  caller: Caller;
  profile: string;
  workspace: string | undefined;
  /** The scopes it was admitted with; reading its approval needs them too (or admin). */
  scopes: Scope[];
  /** The checkpoints it meets: "network", "jobsOverSeconds", … */
  reasons: string[];
  timeoutMs: number;
  /** Runs it with a job slot of its tenant, listed under its approval. */
  run: (options: RunOptions, approvalId: string) => Promise<ExecResult>;
}

/** Holds the job for approval and answers 202 {approvalId, status, expiresAt, reasons}. */
export function holdForApproval(c: Ctx, access: Access, job: HeldJob): Response {
  const { approvals, policy } = access.deps;
  const { tenant, keyId } = job.caller;
  if (approvals.pendingCount(tenant) >= approvals.maxPendingPerTenant) {
    throw new AirlockError(
      "quota_exceeded",
      `tenant ${tenant} already has ${approvals.maxPendingPerTenant} approvals pending`,
      { details: { limit: "pendingApprovals" }, retryAfterSeconds: 60 },
    );
  }
  const audit = c.get("audit");
  const view = approvals.create(
    {
      tenant,
      keyId,
      profile: job.profile,
      reasons: job.reasons,
      commandDigest: audit.commandDigest ?? "",
      timeoutMs: job.timeoutMs,
      workspace: job.workspace,
      scopes: job.scopes,
    },
    policy.current().approvalTtlMs,
    (id) => runApproved(access, id, job, audit),
  );
  note(c, { status: "pending_approval", approvalId: view.id });
  return c.json(
    { approvalId: view.id, status: view.status, expiresAt: view.expiresAt, reasons: job.reasons },
    202,
  );
}

/** An approved job: runs on the tenant's stop signal only (its request is long gone), audited. */
async function runApproved(
  access: Access,
  id: string,
  job: HeldJob,
  audit: AuditNote,
): Promise<ExecResult> {
  const { caller, profile } = job;
  const { now } = access.deps;
  access.deps.checkpoints.approved(caller.keyId, profile);
  const started = now();
  const record = (status: string, httpStatus: number, result?: ExecResult) =>
    access.deps.audit.record({
      time: new Date(started).toISOString(),
      requestId: null,
      op: "approval.run",
      method: "-",
      path: `/v1/approvals/${id}`,
      tenant: caller.tenant,
      keyId: caller.keyId,
      scope: audit.scope ?? null,
      profile,
      workspace: audit.workspace ?? null,
      commandDigest: audit.commandDigest ?? null,
      status,
      httpStatus,
      exitCode: result?.exitCode ?? null,
      durationMs: now() - started,
      bytesIn: null,
      bytesOut: result === undefined ? null : outputBytes(result),
      approvalId: id,
    });
  try {
    access.assertRunning(caller.tenant);
    const result = await job.run({}, id);
    record(result.status, 200, result);
    return result;
  } catch (err) {
    const known = err instanceof AirlockError ? err : undefined;
    record(known?.code ?? "internal", known?.status ?? 500);
    throw err;
  }
}

/** The approval, if this caller may see it: its own tenant's, or any for an admin. */
export function approvalFor(c: Ctx, access: Access, id: string): ApprovalView {
  const caller = c.get("caller");
  const view = access.deps.approvals.get(id);
  // Another tenant's approval does not exist for this caller.
  if (view === undefined || (view.tenant !== caller.tenant && !caller.grant.scopes.has("admin"))) {
    throw new AirlockError("not_found", `approval ${JSON.stringify(id)} does not exist`);
  }
  return view;
}

/** An admin's decision; approving is refused (423) while the job's tenant is stopped. */
export function decide(
  c: Ctx,
  access: Access,
  id: string,
  action: "approve" | "deny",
): ApprovalView {
  const { approvals } = access.deps;
  const by = c.get("caller").keyId;
  if (action === "approve") access.assertRunning(approvalFor(c, access, id).tenant);
  const view = action === "approve" ? approvals.approve(id, by) : approvals.deny(id, by);
  if (view === undefined) {
    throw new AirlockError("not_found", `approval ${JSON.stringify(id)} does not exist`);
  }
  return view;
}
