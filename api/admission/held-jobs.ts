// Jobs as data. A route hands admission its job as a kind and a request; the
// kind's builder (JobBuilders: exec, a workspace's exec) turns them into a
// run. A job held for approval waits in the state store as a HeldJob (JSON),
// so after a restart it is still there, and once approved it is rebuilt from
// what was asked and runs exactly once, recorded as the execution its request
// was told of (api/executions/), with a job slot of its tenant like any other.
import type { EgressRules } from "../../core/egress.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { ExecutorRunOptions } from "../../executor/executor.ts";
import type { Scope } from "../../policies/access/schema.ts";
import type { ExecutionMeta, Executions } from "../executions/executions.ts";
import type { Access } from "./access.ts";
import { accounted, type JobRequest } from "./job-policy.ts";

/** The kinds of job a route asks admission to run. */
export type JobKind = "exec" | "workspace.exec";

/** What a builder gets: the execution to run as, its request (JSON), and the limits the policy allows. */
export interface JobToBuild extends ExecutionMeta {
  request: unknown;
  limits: { timeoutMs: number };
  /** The networks it asked for and was granted, when it asked for some. */
  egress?: EgressRules | undefined;
}

/** Runs a job of one kind: resolves its request and hands it to the engine. */
export type JobBuilder = (job: JobToBuild, options: ExecutorRunOptions) => Promise<ExecResult>;

export type JobBuilders = Record<JobKind, JobBuilder>;

/** A job held for a human's approval, as the state store keeps it (JSON). */
export interface HeldJob {
  kind: JobKind;
  request: unknown;
  /** The execution it runs as once approved: fixed when it was asked for. */
  executionId: string;
  tenant: string;
  keyId: string;
  profile: string;
  workspace?: string;
  timeoutMs: number;
  /** The scopes it was admitted with; reading its approval needs them too (or admin). */
  scopes: Scope[];
  /** The checkpoints it met: "network", "jobsOverSeconds", … */
  reasons: string[];
  /** What its audit line says of it. */
  audit: { scope: string | null; commandDigest: string | null };
}

export interface HeldJobDeps {
  access: Access;
  executions: Executions;
  jobs: JobBuilders;
}

/**
 * Runs an approved job (whose approval this caller just won): recorded as its
 * execution, with a slot of its tenant, on the tenant's stop signal only (its
 * request is long gone).
 */
export async function runHeld(
  deps: HeldJobDeps,
  held: HeldJob,
  approvalId: string,
): Promise<ExecResult> {
  const meta: ExecutionMeta = {
    id: held.executionId,
    tenant: held.tenant,
    profile: held.profile,
    workspace: held.workspace,
  };
  const entry = {
    tenant: held.tenant,
    keyId: held.keyId,
    profile: held.profile,
    workspace: held.workspace,
    approvalId,
  };
  const limits = { timeoutMs: held.timeoutMs };
  const started = await deps.executions.start(meta, (options) =>
    accounted(
      deps.access,
      entry,
      held.timeoutMs,
      (o) =>
        deps.jobs[held.kind](
          {
            ...meta,
            request: held.request,
            limits,
            // Granted when it was admitted; the networks are those in force now.
            egress: deps.access.egress(undefined, (held.request as JobRequest).networks),
          },
          o,
        ),
      options,
    ),
  );
  return started.result;
}
