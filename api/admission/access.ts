// The policy machinery of one gateway: the policy in force and the state that
// enforces it (rate-limit logs, quota ledger, approval checkpoints, the
// emergency stop, the audit log, the running jobs in memory; approvals in the
// state store, so they survive a restart). Made once by main.ts
// (createAccess); the admission (admit.ts) and the admin routes use it.
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { EgressRules } from "../../core/egress.ts";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ApprovalRecords, AuditRecords, ClusterRecords } from "../../core/state.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import { ApprovalStore } from "../../policies/access/approvals.ts";
import { AuditLog } from "../../policies/access/audit.ts";
import { Checkpoints } from "../../policies/access/checkpoints.ts";
import type { PolicyHolder } from "../../policies/access/load.ts";
import { type QuotaBook, QuotaLedger, SharedQuotaLedger } from "../../policies/access/quota.ts";
import { type Limiter, RateLimiter, SharedRateLimiter } from "../../policies/access/rate-limit.ts";
import { RunningJobs } from "../../policies/access/running.ts";
import { type TenantPolicy, tenantPolicy } from "../../policies/access/schema.ts";
import { profileRefusal } from "../../policies/access/scopes.ts";
import { StopSwitch } from "../../policies/access/stop.ts";
import { egressRules } from "../../policies/egress.ts";
import type { Caller } from "../auth.ts";

export interface AccessDeps {
  policy: PolicyHolder;
  limiter: Limiter;
  quotas: QuotaBook;
  approvals: ApprovalStore;
  /** Which approval rules a job meets, and what they remember. */
  checkpoints: Checkpoints;
  stop: StopSwitch;
  audit: AuditLog;
  /** The jobs holding a job slot now, for the operators' view. */
  jobs: RunningJobs;
  /** For counting a tenant's workspaces. */
  client: Pick<ContainerClient, "listVolumes">;
  /** What the gateways on a shared store share (replicas); undefined for one gateway alone. */
  cluster?: ClusterRecords | undefined;
  instanceId?: string | undefined;
  now: () => number;
}

export class Access {
  readonly deps: AccessDeps;

  constructor(deps: AccessDeps) {
    this.deps = deps;
  }

  /** The tenant's quotas and approval rules under the policy in force now. */
  tenant(tenant: string): TenantPolicy {
    return tenantPolicy(this.deps.policy.current(), tenant);
  }

  /** May this caller use this profile at all (GET /v1/profiles lists only those)? */
  mayUse(caller: Caller, profile: LoadedProfile): boolean {
    return profileRefusal(this.deps.policy.current(), caller.grant, profile) === undefined;
  }

  /** The workspace size cap of a tenant, when its policy sets one. */
  workspaceBytes(tenant: string): number | undefined {
    return this.tenant(tenant).quotas.maxWorkspaceBytes;
  }

  /**
   * The rules of the networks a job asks for: 403 naming one the key lacks
   * (no caller: a held job, granted when it was admitted); undefined for none.
   */
  egress(
    caller: Caller | undefined,
    names: readonly string[] | undefined,
  ): EgressRules | undefined {
    if (names === undefined || names.length === 0) return undefined;
    const policy = this.deps.policy.current();
    const networks = [...new Set(names)].map((name) => {
      const net = policy.networks.get(name);
      if ((caller !== undefined && !caller.grant.networks.includes(name)) || net === undefined) {
        throw new AirlockError("forbidden", `this key is not granted network ${name}`, {
          details: { network: name },
        });
      }
      return net;
    });
    return egressRules(networks, hostAddresses());
  }

  /** What the proxy would decide for host:port on `network` (404 for a network the policy lacks). */
  egressCheck(network: string, host: string, port: number, address?: string) {
    const net = this.deps.policy.current().networks.get(network);
    if (net === undefined) {
      throw new AirlockError("not_found", `the policy defines no network ${network}`, {
        details: { network },
      });
    }
    const rules = egressRules([net], hostAddresses());
    const dialled = address ?? rules.pinned(host) ?? (isIP(host) !== 0 ? host : undefined);
    const verdict = rules.check(host, port, dialled);
    const reason =
      dialled === undefined && verdict.decision === "allowed"
        ? `${verdict.reason}; the address ${host} resolves to is checked when it is dialled`
        : verdict.reason;
    return { decision: verdict.decision, reason };
  }

  /** 423 while an operator's emergency stop of this tenant (or of everything) is in force. */
  assertRunning(tenant: string): void {
    const stopped = this.deps.stop.stoppedFor(tenant);
    if (stopped === undefined) return;
    throw new AirlockError(
      "stopped",
      stopped.target === "all"
        ? `an operator's emergency stop of everything is in force since ${stopped.since}`
        : `an operator's emergency stop of tenant ${tenant} is in force since ${stopped.since}`,
      { details: { stopped: stopped.target, since: stopped.since } },
    );
  }
}

export interface CreateAccessOptions {
  policy: PolicyHolder;
  /** Where approvals are kept: the state store's (core/state.ts). */
  approvals: ApprovalRecords;
  /** This gateway's instance id: an approved job runs on the gateway that approved it. */
  instanceId: string;
  client: Pick<ContainerClient, "listVolumes" | "createVolume" | "removeVolume">;
  /** Where audit lines go; default: nowhere (GET /v1/audit reads the store, or the ring). */
  auditWrite?: (line: string) => void;
  /** The state store's audit records, which GET /v1/audit reads; without them, an in-memory ring. */
  audit?: AuditRecords | undefined;
  auditRingSize?: number;
  /** Told of an audit record the store could not keep. */
  onAuditError?: (err: unknown) => void;
  /**
   * Replicas: rate limits, quotas and stops counted and kept in the shared
   * store, so they hold across gateways. Without it they are this gateway's
   * (stops on its engine).
   */
  cluster?: ClusterRecords | undefined;
  now?: () => number;
}

/** The policy machinery of one gateway, in-memory state included. */
export function createAccess(o: CreateAccessOptions): Access {
  const now = o.now ?? Date.now;
  return new Access({
    policy: o.policy,
    limiter:
      o.cluster === undefined ? new RateLimiter(now) : new SharedRateLimiter(o.cluster.rates),
    quotas:
      o.cluster === undefined
        ? new QuotaLedger(now)
        : new SharedQuotaLedger(o.cluster.quotas, o.instanceId, now),
    approvals: new ApprovalStore({ records: o.approvals, instanceId: o.instanceId, now }),
    checkpoints: new Checkpoints(),
    stop: new StopSwitch(o.client, now, o.cluster?.stops),
    audit: new AuditLog(o.auditWrite ?? (() => {}), {
      ringSize: o.auditRingSize ?? 10_000,
      records: o.audit,
      ...(o.onAuditError === undefined ? {} : { onError: o.onAuditError }),
    }),
    jobs: new RunningJobs(now),
    client: o.client,
    cluster: o.cluster,
    instanceId: o.instanceId,
    now,
  });
}

/** Every address of this host's interfaces (the bridges' included): never dialled for a job. */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}
