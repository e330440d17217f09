// What a tenant's quotas say about one job, after admission: its limits under
// the tenant's maximums (403 above one), the hourly budgets (429), then the
// approval checkpoints (202, approvals.ts) or the go-ahead. The go-ahead runs
// with a job slot of the concurrency quota, listed among the running jobs, on
// the tenant's stop signal, and records its usage. Every go-ahead is an
// execution (api/executions/): its id is the Job's, fixed here at admission,
// so a job held for approval runs under the id its request was told of. A
// route describes its job as data (its kind and request), which the kind's
// builder runs, so a held job survives a restart as it was asked for
// (held-jobs.ts). Also the workspace-count quota, before a workspace is made.
import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ExecutorRunOptions } from "../../executor/executor.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import { assertRoomForWorkspace, type WorkspaceLimit } from "../../executor/workspace-quota.ts";
import type { QuotaRefusal } from "../../policies/access/quota.ts";
import type { JobEntry } from "../../policies/access/running.ts";
import type { Scope, TenantPolicy } from "../../policies/access/schema.ts";
import type { AuthEnv } from "../auth.ts";
import type { ExecutionMeta, JobRunner } from "../executions/executions.ts";
import type { Access } from "./access.ts";
import { holdForApproval } from "./approvals.ts";
import { egressCounts, endedHow, note, outputBytes } from "./audit.ts";
import type { HeldJob, JobBuilders, JobKind } from "./held-jobs.ts";

/** The parts of an exec request the policy looks at. */
export interface JobRequest {
  command?: string | readonly string[] | undefined;
  code?: string | undefined;
  language?: string | undefined;
  limits?:
    | { timeoutMs?: number | undefined; memoryMb?: number | undefined; cpus?: number | undefined }
    | undefined;
  /** Named egress networks the job asks for (the key must be granted each). */
  networks?: readonly string[] | undefined;
}

/**
 * The job a route wants to run, as data: its kind's builder (JobBuilders)
 * runs it, now or, held for approval, once approved (after a restart too).
 */
export interface JobSpec {
  kind: JobKind;
  /** The request as the route validated it (JSON); the policy reads the JobRequest parts. */
  request: JobRequest;
}

/**
 * A job's outcome of admission: held for a human (its 202 answer), or free to
 * run as the execution it names (the route records and starts it: api/executions/).
 */
export type JobTicket =
  | { status: "pending_approval"; response: Response }
  | {
      status: "admitted";
      execution: ExecutionMeta;
      /** Runs the job once, in the job slot admission took for it (and gives the slot back at its end). */
      run: JobRunner;
      /** Gives the slot back when the job never runs (its record could not be made); idempotent. */
      release: () => Promise<void>;
    };

/** A job slot of the tenant's concurrency quota, taken and not yet given back. */
export type JobSlot = { release: () => void | Promise<void> };

export const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * Limits, budgets and checkpoints for a job whose caller and profile are
 * admitted; `scopes` are those it was admitted with (a held job's approval
 * is read with them).
 */
export async function admitJob(
  c: Context<AuthEnv>,
  access: Access,
  jobs: JobBuilders,
  profile: LoadedProfile,
  workspace: string | undefined,
  job: JobSpec,
  scopes: Scope[],
): Promise<JobTicket> {
  const caller = c.get("caller");
  const tenant = access.tenant(caller.tenant);
  const limits = jobLimits(tenant, profile, job.request);
  // The job slot is taken here, before any answer: an admitted job (an async
  // one's 202 included) holds it, so a refusal is this request's 429 and never
  // a failure after its 202, even when another gateway asks at the same time.
  const slot = await takeSlot(access, caller.tenant);
  try {
    return await ticket(c, access, jobs, profile, workspace, job, scopes, limits, slot);
  } catch (err) {
    await slot.release();
    throw err;
  }
}

/** Past the quotas: the job held for a human (its slot given back), or admitted in `slot`. */
async function ticket(
  c: Context<AuthEnv>,
  access: Access,
  jobs: JobBuilders,
  profile: LoadedProfile,
  workspace: string | undefined,
  job: JobSpec,
  scopes: Scope[],
  limits: { timeoutMs: number },
  slot: JobSlot,
): Promise<JobTicket> {
  const caller = c.get("caller");
  const tenant = access.tenant(caller.tenant);
  // 403 naming a network the key was not granted, before anything is held or run.
  const egress = access.egress(caller, job.request.networks);

  const entry: JobEntry = {
    tenant: caller.tenant,
    keyId: caller.keyId,
    profile: profile.name,
    workspace,
  };
  const execution: ExecutionMeta = {
    id: randomUUID(),
    tenant: caller.tenant,
    profile: profile.name,
    workspace,
  };
  const run = (options: ExecutorRunOptions) =>
    accounted(
      access,
      entry,
      limits.timeoutMs,
      (o) => jobs[job.kind]({ ...execution, request: job.request, limits, egress }, o),
      options,
      slot,
    );
  const { timeoutMs } = limits;
  const reasons = access.deps.checkpoints.reasons(
    caller.keyId,
    tenant.requireApproval,
    profile,
    timeoutMs,
    job.request.networks,
  );
  if (reasons.length > 0) {
    // What it takes to run it once approved, as JSON: it waits in the state store.
    const audit = c.get("audit") ?? {};
    const held: HeldJob = {
      kind: job.kind,
      request: job.request,
      executionId: execution.id,
      tenant: caller.tenant,
      keyId: caller.keyId,
      profile: profile.name,
      ...(workspace === undefined ? {} : { workspace }),
      timeoutMs,
      scopes,
      reasons,
      audit: { scope: audit.scope ?? null, commandDigest: audit.commandDigest ?? null },
    };
    // A held job takes its slot once approved, when it runs (held-jobs.ts).
    await slot.release();
    return { status: "pending_approval", response: await holdForApproval(c, access, held) };
  }
  return {
    status: "admitted",
    execution,
    run: (options) => audited(c, run(options)),
    release: async () => {
      await slot.release();
    },
  };
}

/** Notes how the job ended on the request's audit line, written when it ends (SSE included). */
function audited(c: Context<AuthEnv>, running: Promise<ExecResult>): Promise<ExecResult> {
  const finished = running.then(
    (result) => {
      note(c, {
        status: result.status,
        exitCode: result.exitCode,
        bytesOut: outputBytes(result),
        ...egressCounts(result),
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
}

/**
 * Runs with a job slot of the tenant's concurrency quota, listed among the
 * running jobs while it holds it, records its usage, and turns a stop into 423.
 */
export async function accounted(
  access: Access,
  entry: JobEntry,
  timeoutMs: number,
  run: (options: ExecutorRunOptions) => Promise<ExecResult>,
  options: ExecutorRunOptions,
  /** The slot admission took for it; none: one is taken now (a held job, once approved). */
  taken?: JobSlot,
): Promise<ExecResult> {
  const { tenant } = entry;
  const { quotas, jobs, stop, now } = access.deps;
  const slot = taken ?? (await takeSlot(access, tenant));
  const tracked = jobs.add(entry, timeoutMs);
  const stopSignal = stop.signal(tenant);
  const signal =
    options.signal === undefined ? stopSignal : AbortSignal.any([options.signal, stopSignal]);
  const started = now();
  let result: ExecResult | undefined;
  try {
    result = await run({
      ...options,
      signal,
      onStart: (job) => {
        tracked.started(job.id, job.limits);
        options.onStart?.(job);
      },
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
    await slot.release();
    tracked.done();
    // A killed or failed job still used its container time; when the cgroup
    // could not be read, its wall time counts as CPU time (one CPU, the default).
    const wall = result?.durationMs ?? now() - started;
    const cpu = result?.usage.cpuMs ?? (result === undefined ? 0 : wall);
    await quotas.record(tenant, cpu, wall, options.answered);
  }
}

/** The job's limits under the tenant's maximums: a request above one is refused, none asked gets the maximum. */
export function jobLimits(
  tenant: TenantPolicy,
  profile: LoadedProfile,
  request: JobRequest,
): { timeoutMs: number } {
  const q = tenant.quotas;
  const asked = request.limits ?? {};
  const maxMs = q.maxJobSeconds === undefined ? undefined : q.maxJobSeconds * 1000;
  const checks = [
    ["timeoutMs", asked.timeoutMs, maxMs, "maxJobSeconds"],
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
  const timeoutMs =
    asked.timeoutMs ??
    Math.min(profile.limits.default.timeoutMs, maxMs ?? Number.POSITIVE_INFINITY);
  return { timeoutMs };
}

/** A job slot of the tenant (atomic across gateways on a shared store), or its 429 quota_exceeded. */
async function takeSlot(access: Access, tenant: string): Promise<JobSlot> {
  const slot = await access.deps.quotas.acquire(tenant, access.tenant(tenant).quotas);
  if (!("release" in slot)) throw quotaError(tenant, slot);
  return slot;
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

/** The policy's limits on the tenant's workspace count (its quotas.maxWorkspaces), if any. */
export function workspaceLimits(access: Access, tenant: string): WorkspaceLimit[] {
  const max = access.tenant(tenant).quotas.maxWorkspaces;
  return max === undefined ? [] : [{ name: "maxWorkspaces", max }];
}

/**
 * The tenant's workspace-count quota, before a workspace is made: an early
 * refusal, by the same code (executor/workspace-quota.ts) that counts again,
 * reserved with the volume's creation, when the store makes it.
 */
export async function admitNewWorkspace(access: Access, tenant: string): Promise<void> {
  await assertRoomForWorkspace(access.deps.client, tenant, workspaceLimits(access, tenant));
}
