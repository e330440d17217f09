// The approval runner at the HTTP layer: a job that meets one of its tenant's
// checkpoints is held (202 pending) in the ApprovalStore (policies/access, on
// the state store) as the HeldJob it was asked as; approved, it runs exactly
// once, with its own audit line, even when the gateway restarted while it
// waited; denied or expired, never. Also who may read or decide one.
import type { Context } from "hono";
import { AirlockError } from "../../core/errors.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ApprovalView } from "../../policies/access/approvals.ts";
import type { AuthEnv } from "../auth.ts";
import type { Access } from "./access.ts";
import { note, outputBytes } from "./audit.ts";
import type { HeldJob } from "./held-jobs.ts";

type Ctx = Context<AuthEnv>;

/** Holds the job for approval and answers 202 {approvalId, status, expiresAt, reasons}. */
export async function holdForApproval(c: Ctx, access: Access, job: HeldJob): Promise<Response> {
  const { approvals, policy } = access.deps;
  const view = await approvals.create(
    {
      tenant: job.tenant,
      keyId: job.keyId,
      profile: job.profile,
      reasons: job.reasons,
      commandDigest: job.audit.commandDigest ?? "",
      timeoutMs: job.timeoutMs,
      workspace: job.workspace,
      scopes: job.scopes,
    },
    policy.current().approvalTtlMs,
    job,
  );
  if (view === undefined) {
    throw new AirlockError(
      "quota_exceeded",
      `tenant ${job.tenant} already has ${approvals.maxPendingPerTenant} approvals pending`,
      { details: { limit: "pendingApprovals" }, retryAfterSeconds: 60 },
    );
  }
  note(c, { status: "pending_approval", approvalId: view.id });
  return c.json(
    { approvalId: view.id, status: view.status, expiresAt: view.expiresAt, reasons: job.reasons },
    202,
  );
}

/**
 * An approved job, run by `run` (it won the approval): audited, refused while
 * its tenant is stopped, and its outcome written on the approval.
 */
export async function runApproved(
  access: Access,
  id: string,
  job: HeldJob,
  run: () => Promise<ExecResult>,
): Promise<void> {
  const { now } = access.deps;
  access.deps.checkpoints.approved(job.keyId, job.profile);
  const started = now();
  const record = (status: string, httpStatus: number, result?: ExecResult) =>
    access.deps.audit.record({
      time: new Date(started).toISOString(),
      requestId: null,
      op: "approval.run",
      method: "-",
      path: `/v1/approvals/${id}`,
      tenant: job.tenant,
      keyId: job.keyId,
      scope: job.audit.scope,
      profile: job.profile,
      workspace: job.workspace ?? null,
      commandDigest: job.audit.commandDigest,
      status,
      httpStatus,
      exitCode: result?.exitCode ?? null,
      durationMs: now() - started,
      bytesIn: null,
      bytesOut: result === undefined ? null : outputBytes(result),
      approvalId: id,
    });
  let outcome: Outcome;
  try {
    access.assertRunning(job.tenant);
    const result = await run();
    record(result.status, 200, result);
    outcome = { result };
  } catch (err) {
    const known = err instanceof AirlockError ? err : undefined;
    record(known?.code ?? "internal", known?.status ?? 500);
    const code = (err as { code?: unknown }).code;
    outcome = {
      error: {
        code: typeof code === "string" ? code : "internal",
        message: (err as Error).message ?? String(err),
      },
    };
  }
  await finishDurably(access, id, outcome);
}

type Outcome = Parameters<Access["deps"]["approvals"]["finish"]>[1];
/** Waits before each retry of an outcome's write: a store that hiccups (a locked or full disk) gets ~2 s. */
const FINISH_RETRY_MS = [100, 400, 1500];

/**
 * Writes an approved job's outcome on its approval, retrying a failing store
 * a few times: the job has run and must not run again, so an outcome that
 * cannot be written is reported (the caller logs it), never dropped in silence.
 * The execution record keeps the result either way.
 */
async function finishDurably(access: Access, id: string, outcome: Outcome): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await access.deps.approvals.finish(id, outcome);
      return;
    } catch (err) {
      const wait = FINISH_RETRY_MS[attempt];
      if (wait === undefined) {
        const ran = "result" in outcome ? "ran" : "failed";
        throw new Error(
          `approval ${id}: its job ${ran}, but its outcome could not be written to the state store ` +
            `after ${attempt + 1} attempts; the execution record still has it`,
          { cause: err },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** The approval, if this caller may see it: its own tenant's, or any for an admin. */
export async function approvalFor(c: Ctx, access: Access, id: string): Promise<ApprovalView> {
  const caller = c.get("caller");
  const view = await access.deps.approvals.get(id);
  // Another tenant's approval does not exist for this caller.
  if (view === undefined || (view.tenant !== caller.tenant && !caller.grant.scopes.has("admin"))) {
    throw new AirlockError("not_found", `approval ${JSON.stringify(id)} does not exist`);
  }
  return view;
}

/**
 * An admin's decision; approving is refused (423) while the job's tenant is
 * stopped. The call that wins an approval starts its job with `run` (it goes
 * on after the answer) and answers `running`.
 */
export async function decide(
  c: Ctx,
  access: Access,
  id: string,
  action: "approve" | "deny",
  run: (job: HeldJob, approvalId: string) => Promise<ExecResult>,
): Promise<ApprovalView> {
  const { approvals } = access.deps;
  const by = c.get("caller").keyId;
  if (action === "deny") {
    const view = await approvals.deny(id, by);
    if (view === undefined) throw notFound(id);
    return view;
  }
  access.assertRunning((await approvalFor(c, access, id)).tenant);
  const outcome = await approvals.approve(id, by);
  if (outcome === undefined) throw notFound(id);
  if (outcome.job !== undefined) {
    const job = outcome.job as HeldJob;
    const log = c.get("log");
    void runApproved(access, id, job, () => run(job, id)).catch((err: unknown) => {
      log.error({ err, approvalId: id }, "an approved job's outcome was lost");
    });
  }
  return outcome.view;
}

function notFound(id: string): AirlockError {
  return new AirlockError("not_found", `approval ${JSON.stringify(id)} does not exist`);
}
