// The one place the operator's policy is enforced. Every route calls admit()
// with the scopes it needs (and the profile it would use); routes that run a
// job call runJob(). Order: emergency stop (423) → scopes and profile (403) →
// limits (403) → rate limits (429) → quotas (429) → approval checkpoint (202)
// → the job, on the tenant's stop signal. The MCP server and Piston API call
// these same routes in-process, so the same checks apply to them.
import type { Context, MiddlewareHandler } from "hono";
import { AirlockError } from "../core/errors.ts";
import type { LoadedProfile } from "../core/profile.ts";
import type { ExecResult } from "../core/schemas.ts";
import type { ContainerClient } from "../executor/docker.ts";
import type { ExecutorRunOptions } from "../executor/executor.ts";
import { JobCancelledError, type RunOptions } from "../executor/sandbox.ts";
import { LABEL_TENANT, LABEL_WORKSPACE } from "../executor/workspaces.ts";
import { ApprovalStore, type ApprovalView } from "../policies/access/approvals.ts";
import { AuditLog, commandDigest } from "../policies/access/audit.ts";
import type { PolicyHolder } from "../policies/access/load.ts";
import { QuotaLedger, type QuotaRefusal } from "../policies/access/quota.ts";
import { RateLimiter } from "../policies/access/rate-limit.ts";
import { type JobEntry, RunningJobs } from "../policies/access/running.ts";
import { type Scope, type TenantPolicy, tenantPolicy } from "../policies/access/schema.ts";
import { missingScopes, profileRefusal } from "../policies/access/scopes.ts";
import { StopSwitch } from "../policies/access/stop.ts";
import { type AuditNote, type AuthEnv, type Caller, whenRequestEnds } from "./auth.ts";

export interface AccessDeps {
  policy: PolicyHolder;
  limiter: RateLimiter;
  quotas: QuotaLedger;
  approvals: ApprovalStore;
  stop: StopSwitch;
  audit: AuditLog;
  /** The jobs holding a job slot now, for the operators' view. */
  jobs: RunningJobs;
  /** For counting a tenant's workspaces. */
  client: Pick<ContainerClient, "listVolumes">;
  now?: () => number;
}

/** The parts of an exec request the policy looks at. */
export interface JobRequest {
  command?: string | readonly string[] | undefined;
  code?: string | undefined;
  language?: string | undefined;
  limits?:
    | { timeoutMs?: number | undefined; memoryMb?: number | undefined; cpus?: number | undefined }
    | undefined;
}

export interface JobPlan {
  op: string;
  scopes: Scope[];
  profile: LoadedProfile;
  workspace?: string | undefined;
  /** Runs the job with the limits the policy allows (timeoutMs possibly lowered to maxJobSeconds). */
  run: (limits: { timeoutMs: number }, options: ExecutorRunOptions) => Promise<ExecResult>;
}

type Ctx = Context<AuthEnv>;

export function note(c: Ctx, fields: AuditNote): void {
  c.set("audit", { ...(c.get("audit") ?? {}), ...fields });
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class Access {
  readonly deps: AccessDeps;
  /** keyId\0profile pairs that passed a first-use checkpoint. */
  private readonly usedProfiles = new Set<string>();
  /** Jobs admitted per key, for everyNOperations. */
  private readonly jobCounts = new Map<string, number>();

  constructor(deps: AccessDeps) {
    this.deps = deps;
  }

  tenant(c: Ctx): TenantPolicy {
    return tenantPolicy(this.deps.policy.current(), c.get("caller").tenant);
  }

  /** May this caller use this profile at all (GET /v1/profiles lists only those)? */
  mayUse(caller: Caller, profile: LoadedProfile): boolean {
    return profileRefusal(this.deps.policy.current(), caller.grant, profile) === undefined;
  }

  /** Stop, scopes, profile and rate limits for one operation; throws the refusal. */
  admit(c: Ctx, op: string, scopes: Scope[], profile?: LoadedProfile, workspace?: string): void {
    this.precheck(c, op, scopes, workspace);
    if (profile !== undefined) this.checkProfile(c, profile);
    const caller = c.get("caller");
    const limited = this.deps.limiter.take(caller.keyId, scopes, caller.grant.rateLimits);
    if (limited !== undefined) {
      const per = limited.window === "perMinute" ? "minute" : "hour";
      throw new AirlockError(
        "rate_limited",
        `rate limit of scope ${limited.scope} reached: ${limited.limit} per ${per} for this key`,
        {
          details: { scope: limited.scope, window: limited.window, limit: limited.limit },
          retryAfterSeconds: seconds(limited.retryAfterMs),
        },
      );
    }
  }

  /** The emergency stop and the key's scopes, without counting against rate limits. */
  precheck(c: Ctx, op: string, scopes: Scope[], workspace?: string): void {
    const caller = c.get("caller");
    note(c, { op, scope: scopes.join(","), ...(workspace === undefined ? {} : { workspace }) });
    if (!scopes.includes("admin")) this.assertRunning(caller.tenant);
    const missing = missingScopes(caller.grant, scopes);
    if (missing.length > 0) {
      throw new AirlockError("forbidden", `this key lacks scope ${missing.join(", ")}`, {
        details: { missingScopes: missing },
      });
    }
  }

  /** 403 unless the key may use the profile (profiles list, gVisor rule, network scope). */
  checkProfile(c: Ctx, profile: LoadedProfile): void {
    const caller = c.get("caller");
    note(c, { profile: profile.name });
    const refusal = profileRefusal(this.deps.policy.current(), caller.grant, profile);
    if (refusal === undefined) return;
    throw new AirlockError("forbidden", refusal, {
      details: {
        profile: profile.name,
        ...(profile.network === "none" || caller.grant.scopes.has("network")
          ? {}
          : { missingScopes: ["network"] }),
      },
    });
  }

  assertRunning(tenant: string): void {
    const stopped = this.deps.stop.stoppedFor(tenant);
    if (stopped !== undefined) {
      throw new AirlockError(
        "stopped",
        stopped.target === "all"
          ? `an operator's emergency stop of everything is in force since ${stopped.since}`
          : `an operator's emergency stop of tenant ${tenant} is in force since ${stopped.since}`,
        { details: { stopped: stopped.target, since: stopped.since } },
      );
    }
  }

  /** The tenant's workspace count and size quotas, before a workspace is made. */
  async admitWorkspace(c: Ctx): Promise<void> {
    const { tenant } = c.get("caller");
    const max = this.tenant(c).quotas.maxWorkspaces;
    if (max === undefined) return;
    const owned = await this.deps.client.listVolumes(`${LABEL_TENANT}=${tenant}`);
    const count = owned.filter((v) => v.labels[LABEL_WORKSPACE] !== undefined).length;
    if (count >= max) {
      throw new AirlockError(
        "quota_exceeded",
        `quota maxWorkspaces reached: tenant ${tenant} has ${count} of ${max} workspaces; delete one first`,
        { details: { limit: "maxWorkspaces", max, used: count }, retryAfterSeconds: 60 },
      );
    }
  }

  /** The workspace size cap of a tenant, when its policy sets one. */
  workspaceBytes(tenant: string): number | undefined {
    return tenantPolicy(this.deps.policy.current(), tenant).quotas.maxWorkspaceBytes;
  }

  /**
   * Everything for a job: admission, the tenant's limits, quotas, the
   * approval checkpoint (202), then the run on the tenant's stop signal.
   */
  async runJob(
    c: Ctx,
    request: JobRequest,
    plan: JobPlan,
    answer: (run: (options: RunOptions) => Promise<ExecResult>) => Promise<Response>,
  ): Promise<Response> {
    const caller = c.get("caller");
    note(c, { commandDigest: commandDigest(request) });
    this.admit(c, plan.op, plan.scopes, plan.profile, plan.workspace);
    const tenant = this.tenant(c);
    const limits = this.jobLimits(tenant, plan.profile, request);
    const refusal = this.deps.quotas.check(caller.tenant, tenant.quotas);
    if (refusal !== undefined) throw quotaError(caller.tenant, refusal);

    const entry: JobEntry = {
      tenant: caller.tenant,
      keyId: caller.keyId,
      profile: plan.profile.name,
      workspace: plan.workspace,
    };
    const run = (options: RunOptions, approvalId?: string) =>
      this.accounted(
        { ...entry, approvalId },
        limits.timeoutMs,
        (o) => plan.run(limits, o),
        options,
      );
    const reasons = this.checkpoints(caller, tenant, plan.profile, limits.timeoutMs);
    if (reasons.length === 0) {
      return answer((options) => {
        const finished = run(options).then(
          (result) => {
            note(c, {
              status: result.status,
              exitCode: result.exitCode,
              bytesOut: outputBytes(result),
            });
            return result;
          },
          (err: unknown) => {
            // A streamed job fails after its 200 went out: its audit line says how.
            note(c, { status: endedHow(err) });
            throw err;
          },
        );
        c.set(
          "jobEnded",
          finished.then(
            () => undefined,
            () => undefined,
          ),
        );
        return finished;
      });
    }
    if (
      this.deps.approvals.pendingCount(caller.tenant) >= this.deps.approvals.maxPendingPerTenant
    ) {
      throw new AirlockError(
        "quota_exceeded",
        `tenant ${caller.tenant} already has ${this.deps.approvals.maxPendingPerTenant} approvals pending`,
        { details: { limit: "pendingApprovals" }, retryAfterSeconds: 60 },
      );
    }
    const audit = c.get("audit");
    const view = this.deps.approvals.create(
      {
        tenant: caller.tenant,
        keyId: caller.keyId,
        profile: plan.profile.name,
        reasons,
        commandDigest: audit.commandDigest ?? "",
        timeoutMs: limits.timeoutMs,
        workspace: plan.workspace,
      },
      this.deps.policy.current().approvalTtlMs,
      (id) => this.runApproved(id, caller, plan.profile.name, (o) => run(o, id), audit),
    );
    note(c, { status: "pending_approval", approvalId: view.id });
    return c.json(
      { approvalId: view.id, status: view.status, expiresAt: view.expiresAt, reasons },
      202,
    );
  }

  /** An approved job: runs on the tenant's stop signal only (its request is long gone), audited. */
  private async runApproved(
    id: string,
    caller: Caller,
    profile: string,
    run: (options: RunOptions) => Promise<ExecResult>,
    audit: AuditNote,
  ): Promise<ExecResult> {
    this.usedProfiles.add(`${caller.keyId}\0${profile}`);
    const started = (this.deps.now ?? Date.now)();
    const record = (status: string, httpStatus: number, result?: ExecResult) =>
      this.deps.audit.record({
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
        durationMs: (this.deps.now ?? Date.now)() - started,
        bytesIn: null,
        bytesOut: result === undefined ? null : outputBytes(result),
        approvalId: id,
      });
    try {
      this.assertRunning(caller.tenant);
      const result = await run({});
      record(result.status, 200, result);
      return result;
    } catch (err) {
      const known = err instanceof AirlockError ? err : undefined;
      record(known?.code ?? "internal", known?.status ?? 500);
      throw err;
    }
  }

  /**
   * Runs with a job slot of the tenant's concurrency quota, listed among the
   * running jobs while it holds it, records its usage, and turns a stop into 423.
   */
  private async accounted(
    entry: JobEntry,
    timeoutMs: number,
    run: (options: ExecutorRunOptions) => Promise<ExecResult>,
    options: RunOptions,
  ): Promise<ExecResult> {
    const { tenant } = entry;
    const quotas = tenantPolicy(this.deps.policy.current(), tenant).quotas;
    const slot = this.deps.quotas.acquire(tenant, quotas);
    if (!("release" in slot)) throw quotaError(tenant, slot);
    const tracked = this.deps.jobs.add(entry, timeoutMs);
    const stopSignal = this.deps.stop.signal(tenant);
    const signal =
      options.signal === undefined ? stopSignal : AbortSignal.any([options.signal, stopSignal]);
    const now = this.deps.now ?? Date.now;
    const started = now();
    let result: ExecResult | undefined;
    try {
      result = await run({
        ...options,
        signal,
        onStart: (job) => tracked.started(job.id, job.limits),
      });
      return result;
    } catch (err) {
      if (err instanceof JobCancelledError && stopSignal.aborted) {
        throw new AirlockError("stopped", "the job was cancelled by an operator's emergency stop", {
          cause: err,
          details: { cancelled: true },
        });
      }
      throw err;
    } finally {
      slot.release();
      tracked.done();
      // A killed or failed job still used its container time; when the cgroup
      // could not be read, its wall time counts as CPU time (one CPU, the default).
      const wall = result?.durationMs ?? now() - started;
      this.deps.quotas.record(
        tenant,
        result?.usage.cpuMs ?? (result === undefined ? 0 : wall),
        wall,
      );
    }
  }

  /** The job's limits under the tenant's maximums: a request above one is refused, none asked gets the maximum. */
  private jobLimits(
    tenant: TenantPolicy,
    profile: LoadedProfile,
    request: JobRequest,
  ): { timeoutMs: number } {
    const q = tenant.quotas;
    const asked = request.limits ?? {};
    const checks = [
      [
        "timeoutMs",
        asked.timeoutMs,
        q.maxJobSeconds === undefined ? undefined : q.maxJobSeconds * 1000,
        "maxJobSeconds",
      ],
      ["memoryMb", asked.memoryMb, q.maxMemoryMb, "maxMemoryMb"],
      ["cpus", asked.cpus, q.maxCpus, "maxCpus"],
    ] as const;
    for (const [field, value, max, quota] of checks) {
      if (value !== undefined && max !== undefined && value > max) {
        throw new AirlockError(
          "forbidden",
          `limits.${field} ${value} is above this tenant's ${quota} (${field === "timeoutMs" ? `${max} ms` : max})`,
          { details: { field: `limits.${field}`, max, quota } },
        );
      }
    }
    for (const [field, max, quota] of [
      ["memoryMb", q.maxMemoryMb, "maxMemoryMb"],
      ["cpus", q.maxCpus, "maxCpus"],
    ] as const) {
      if (asked[field] === undefined && max !== undefined && profile.limits.default[field] > max) {
        throw new AirlockError(
          "forbidden",
          `profile ${profile.name}'s default ${field} ${profile.limits.default[field]} is above this tenant's ${quota} (${max}); ask for limits.${field}`,
          { details: { field: `limits.${field}`, max, quota } },
        );
      }
    }
    const maxMs = q.maxJobSeconds === undefined ? undefined : q.maxJobSeconds * 1000;
    const timeoutMs =
      asked.timeoutMs ??
      Math.min(profile.limits.default.timeoutMs, maxMs ?? Number.POSITIVE_INFINITY);
    return { timeoutMs };
  }

  /** Which of the tenant's approval rules this job meets (empty: no human needed). */
  private checkpoints(
    caller: Caller,
    tenant: TenantPolicy,
    profile: LoadedProfile,
    timeoutMs: number,
  ): string[] {
    const rules = tenant.requireApproval;
    const reasons: string[] = [];
    if (rules.network && profile.network !== "none") reasons.push("network");
    if (rules.jobsOverSeconds !== undefined && timeoutMs > rules.jobsOverSeconds * 1000) {
      reasons.push("jobsOverSeconds");
    }
    if (rules.firstUseOfProfile && !this.usedProfiles.has(`${caller.keyId}\0${profile.name}`)) {
      reasons.push("firstUseOfProfile");
    }
    if (rules.everyNOperations !== undefined) {
      const n = (this.jobCounts.get(caller.keyId) ?? 0) + 1;
      this.jobCounts.set(caller.keyId, n);
      if (n % rules.everyNOperations === 0) reasons.push("everyNOperations");
    }
    return reasons;
  }

  approvalFor(c: Ctx, id: string): ApprovalView {
    const caller = c.get("caller");
    const view = this.deps.approvals.get(id);
    // Another tenant's approval does not exist for this caller.
    if (
      view === undefined ||
      (view.tenant !== caller.tenant && !caller.grant.scopes.has("admin"))
    ) {
      throw new AirlockError("not_found", `approval ${JSON.stringify(id)} does not exist`);
    }
    return view;
  }
}

function quotaError(tenant: string, r: QuotaRefusal): AirlockError {
  const what =
    r.limit === "concurrentJobs"
      ? `${r.used} of ${r.max} jobs already running`
      : `${r.used.toFixed(1)} of ${r.max} seconds used in the last hour`;
  return new AirlockError(
    "quota_exceeded",
    `quota ${r.limit} of tenant ${tenant} reached: ${what}`,
    {
      details: { limit: r.limit, max: r.max, used: r.used },
      retryAfterSeconds: seconds(r.retryAfterMs),
    },
  );
}

function outputBytes(result: ExecResult): number {
  return Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr);
}

/**
 * One audit line per request under /v1, written after the answer is known:
 * refusals (401, 403, 423, 429) included. Wraps authentication, so it is
 * installed before it.
 */
export function auditTrail(
  audit: AuditLog,
  now: () => number = Date.now,
): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const started = now();
    try {
      await next();
    } finally {
      // A streamed job is still running when its handler returns: its line is
      // written when it ends, with its status and exit code, without holding
      // back the response.
      whenRequestEnds(c, write);
    }
    function write() {
      const caller = c.get("caller") as Caller | undefined;
      const n: AuditNote = c.get("audit") ?? {};
      const status = c.res.status;
      const length = c.req.header("content-length");
      const outLength = c.res.headers.get("content-length");
      audit.record({
        time: new Date(started).toISOString(),
        requestId: c.get("requestId") ?? null,
        op: n.op ?? `${c.req.method} ${c.req.path}`,
        method: c.req.method,
        path: c.req.path,
        tenant: caller?.tenant ?? null,
        keyId: caller?.keyId ?? null,
        scope: n.scope ?? null,
        profile: n.profile ?? null,
        workspace: n.workspace ?? null,
        commandDigest: n.commandDigest ?? null,
        status: c.get("errorCode") ?? n.status ?? (status < 400 ? "ok" : String(status)),
        httpStatus: status,
        exitCode: n.exitCode ?? null,
        durationMs: now() - started,
        bytesIn: length === undefined ? null : Number(length),
        bytesOut: n.bytesOut ?? (outLength === null ? null : Number(outLength)),
        approvalId: n.approvalId ?? null,
      });
    }
  };
}

/** How a job that threw ended, for the audit line: an error code, or "cancelled". */
function endedHow(err: unknown): string {
  if (err instanceof AirlockError) return err.code;
  if (err instanceof JobCancelledError) return "cancelled";
  return "internal";
}

export interface CreateAccessOptions {
  policy: PolicyHolder;
  client: Pick<ContainerClient, "listVolumes" | "createVolume" | "removeVolume">;
  /** Where audit lines go; default: nowhere (the in-memory ring only). */
  auditWrite?: (line: string) => void;
  auditRingSize?: number;
  now?: () => number;
}

/** The policy machinery of one gateway, in-memory state included. */
export function createAccess(o: CreateAccessOptions): Access {
  const now = o.now ?? Date.now;
  return new Access({
    policy: o.policy,
    limiter: new RateLimiter(now),
    quotas: new QuotaLedger(now),
    approvals: new ApprovalStore({ now }),
    stop: new StopSwitch(o.client, now),
    audit: new AuditLog(o.auditWrite ?? (() => {}), o.auditRingSize ?? 10_000),
    jobs: new RunningJobs(now),
    client: o.client,
    now,
  });
}
