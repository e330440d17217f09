// Admission: the one entry point through which every /v1 route asks whether
// it may go ahead (the MCP server and the Piston API call these routes
// in-process, so they are admitted here too). A route describes what it
// wants as a Plan; admit() checks, in this order, and throws the first refusal:
//   the emergency stop (423; not for a plan that reads during a stop) → the
//   key's scopes (403) → the profile: the request's, or the workspace's, looked
//   up in the store (404 for another tenant's) (403) → the key's rate limits
//   (429) → for a new workspace, the workspace-count quota (429) → for a job,
//   its limits (403), the hourly budgets (429) and the approval checkpoints
//   (202) (job-policy.ts).
// A malformed request is the route's to refuse first (400), whatever the policy.
import type { Context } from "hono";
import { AirlockError } from "../../core/errors.ts";
import { type LoadedProfile, lookupProfile } from "../../core/profile.ts";
import type { WorkspaceInfo, WorkspaceStore } from "../../executor/workspaces.ts";
import { commandDigest } from "../../policies/access/audit.ts";
import type { Scope } from "../../policies/access/schema.ts";
import { missingScopes, profileRefusal, profileScopes } from "../../policies/access/scopes.ts";
import type { AuthEnv, Caller } from "../auth.ts";
import type { Executions } from "../executions/executions.ts";
import type { Access } from "./access.ts";
import { decide } from "./approvals.ts";
import { note } from "./audit.ts";
import { type JobBuilders, runHeld } from "./held-jobs.ts";
import {
  admitJob,
  admitNewWorkspace,
  type JobSpec,
  type JobTicket,
  seconds,
} from "./job-policy.ts";

interface PlanBase {
  /** The audit line's name for the operation: "exec", "workspace.get", "files.read", … */
  op: string;
  /** The scopes it needs. The stop holds for any but admin; none: what any key may do. */
  scopes: Scope[];
  /** It makes a workspace: the tenant's workspace-count quota applies. */
  createsWorkspace?: boolean;
  /** A read that answers during an emergency stop too (a held job's approval, which the stop cancels). */
  duringStop?: boolean;
}

/**
 * What a route wants to do, as admission sees it: on the profile the request
 * names (found with Admission.named), or on a workspace (admission looks up
 * its profile), or neither; a job (limits, budgets, checkpoints) needs one.
 */
export type Plan = PlanBase &
  (
    | { profile?: LoadedProfile; workspace?: undefined; job?: undefined }
    | { profile: LoadedProfile; workspace?: undefined; job: JobSpec }
    | { workspace: string; profile?: undefined; job?: JobSpec }
  );

/** What an admitted route gets back: only what its plan asked about is there. */
export interface Admitted<P extends Plan> {
  caller: Caller;
  /** The profile checked: the request's or the workspace's. */
  profile: P extends { profile: LoadedProfile } | { workspace: string } ? LoadedProfile : undefined;
  /** The workspace, as GET /v1/workspaces/:id answers it. */
  workspace: P extends { workspace: string } ? WorkspaceInfo : undefined;
  /** The job's go-ahead, or its 202 answer while it waits for approval. */
  job: P extends { job: JobSpec } ? JobTicket : undefined;
}

export interface AdmissionDeps {
  access: Access;
  profiles: ReadonlyMap<string, LoadedProfile>;
  /** Finds the caller's workspace (not_found for another tenant's) and names its profile. */
  workspaces: Pick<WorkspaceStore, "get">;
  /** Where an approved job is recorded and run (an admitted one is started by its route). */
  executions: Executions;
  /** How each kind of job runs (held-jobs.ts): a route's job now, or a held one once approved. */
  jobs: JobBuilders;
}

type Ctx = Context<AuthEnv>;

export class Admission {
  readonly access: Access;
  private readonly deps: AdmissionDeps;

  constructor(deps: AdmissionDeps) {
    this.deps = deps;
    this.access = deps.access;
  }

  /** Admits the plan for this request's caller, or throws the first refusal (order: file header). */
  async admit<P extends Plan>(c: Ctx, plan: P): Promise<Admitted<P>> {
    const caller = c.get("caller");
    if (plan.job !== undefined) note(c, { commandDigest: commandDigest(plan.job.request) });
    note(c, {
      op: plan.op,
      ...(plan.scopes.length === 0 ? {} : { scope: plan.scopes.join(",") }),
      ...(plan.workspace === undefined ? {} : { workspace: plan.workspace }),
    });
    // The stop halts work; the admin routes (or nobody could resume), what
    // needs no scope (the profiles a key may use) and the reads of approvals still answer.
    if (plan.duringStop !== true && plan.scopes.some((s) => s !== "admin")) {
      this.access.assertRunning(caller.tenant);
    }
    const missing = missingScopes(caller.grant, plan.scopes);
    if (missing.length > 0) {
      throw new AirlockError("forbidden", `this key lacks scope ${missing.join(", ")}`, {
        details: { missingScopes: missing },
      });
    }
    // Only now is the engine asked anything.
    const workspace =
      plan.workspace === undefined
        ? undefined
        : await this.deps.workspaces.get(caller.tenant, plan.workspace);
    const profile =
      workspace === undefined ? plan.profile : lookupProfile(this.deps.profiles, workspace.profile);
    if (profile !== undefined) this.checkProfile(c, profile);
    await this.takeRate(caller, plan.scopes);
    if (plan.createsWorkspace === true) await admitNewWorkspace(this.access, caller.tenant);
    // A job plan always has a profile (the Plan type): its own or its workspace's.
    const job =
      plan.job === undefined || profile === undefined
        ? undefined
        : await admitJob(
            c,
            this.access,
            this.deps.jobs,
            profile,
            plan.workspace,
            withNetworks(plan.job, workspace),
            [...new Set([...plan.scopes, ...profileScopes(profile)])],
          );
    return { caller, profile, workspace, job } as Admitted<P>;
  }

  /**
   * An admin's decision on an approval: approved, its held job runs once,
   * here, as the execution its request was told of (after a restart too).
   */
  decide(c: Ctx, id: string, action: "approve" | "deny") {
    const deps = { access: this.access, executions: this.deps.executions, jobs: this.deps.jobs };
    return decide(c, this.access, id, action, (job, approvalId) => runHeld(deps, job, approvalId));
  }

  /** The profiles this caller may use (GET /v1/profiles lists only those). */
  usable(caller: Caller): LoadedProfile[] {
    return [...this.deps.profiles.values()].filter((p) => this.access.mayUse(caller, p));
  }

  /** The profile a request names, or not_found listing only the profiles this caller may use. */
  named(c: Ctx, name: string): LoadedProfile {
    const profile = this.deps.profiles.get(name);
    if (profile !== undefined) return profile;
    const available = this.usable(c.get("caller")).map((p) => p.name);
    throw new AirlockError("not_found", `profile ${JSON.stringify(name)} does not exist`, {
      details: { profile: name, available },
    });
  }

  /** 403 unless the key may use the profile (its profiles list, the gVisor rule, the network scope). */
  private checkProfile(c: Ctx, profile: LoadedProfile): void {
    const caller = c.get("caller");
    note(c, { profile: profile.name });
    const refusal = profileRefusal(this.access.deps.policy.current(), caller.grant, profile);
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

  /** Counts the request against the key's rate limit of every scope it needs. */
  private async takeRate(caller: Caller, scopes: Scope[]): Promise<void> {
    const limited = await this.access.deps.limiter.take(
      caller.keyId,
      scopes,
      caller.grant.rateLimits,
    );
    if (limited === undefined) return;
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

/** A workspace's job that asks for no networks gets the workspace's own. */
function withNetworks(job: JobSpec, workspace: WorkspaceInfo | undefined): JobSpec {
  if (workspace?.networks === undefined || job.request.networks !== undefined) return job;
  return { ...job, request: { ...job.request, networks: workspace.networks } };
}
