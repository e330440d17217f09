// Human checkpoints: a gated job waits here as a pending approval until an
// admin approves (it then runs, exactly once), denies, or it expires. Kept in
// the state store (core/state.ts ApprovalRecords) with what to run once
// approved, so a pending approval is still there after a restart, and every
// decision is one compare-and-set of the store: however many admins press
// approve, on however many gateways, one call wins and gets the job to run.
// What only this process does: wake the requests waiting on an approval.
import type { ExecResult } from "../../core/schemas.ts";
import type {
  ApprovalRecord,
  ApprovalRecords,
  ApprovalStatus,
  StoredError,
} from "../../core/state.ts";
import type { Scope } from "./schema.ts";

export type { ApprovalStatus } from "../../core/state.ts";

export interface ApprovalRequest {
  tenant: string;
  keyId: string;
  profile: string;
  /** Why the policy asks for a human: "network", "jobsOverSeconds", … */
  reasons: string[];
  commandDigest: string;
  timeoutMs: number;
  workspace?: string | undefined;
  /** The scopes the held job needed: a key of its tenant reads the approval with these (or admin). */
  scopes: Scope[];
}

export interface ApprovalView extends ApprovalRequest {
  id: string;
  status: ApprovalStatus;
  createdAt: string;
  expiresAt: string;
  decidedAt?: string;
  decidedBy?: string;
  result?: ExecResult;
  error?: { code: string; message: string };
}

export interface ApprovalStoreOptions {
  records: ApprovalRecords;
  /** This gateway: an approved job runs here, and is failed if it dies meanwhile. */
  instanceId: string;
  /** Pending approvals allowed at once per tenant. */
  maxPendingPerTenant?: number;
  /** The store's clock (to wake a waiter at expiry); default Date.now. */
  now?: () => number;
}

/** How often a waiter looks again at an approval another gateway may decide. */
const POLL_MS = 1000;

function viewOf(r: ApprovalRecord): ApprovalView {
  const view: ApprovalView = {
    id: r.id,
    status: r.status,
    tenant: r.tenant,
    keyId: r.keyId,
    profile: r.profile,
    reasons: r.reasons,
    commandDigest: r.commandDigest,
    timeoutMs: r.timeoutMs,
    // Written by this file's create(): the request always carries its scopes.
    scopes: (r.scopes ?? []) as Scope[],
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
  };
  if (r.workspace !== undefined) view.workspace = r.workspace;
  if (r.decidedAt !== undefined) view.decidedAt = r.decidedAt;
  if (r.decidedBy !== undefined) view.decidedBy = r.decidedBy;
  if (r.result !== undefined) view.result = r.result as ExecResult;
  if (r.error !== undefined) view.error = { code: r.error.code, message: r.error.message };
  return view;
}

export class ApprovalStore {
  readonly maxPendingPerTenant: number;
  private readonly records: ApprovalRecords;
  private readonly instanceId: string;
  private readonly now: () => number;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(options: ApprovalStoreOptions) {
    this.records = options.records;
    this.instanceId = options.instanceId;
    this.now = options.now ?? Date.now;
    this.maxPendingPerTenant = options.maxPendingPerTenant ?? 20;
  }

  /**
   * A pending approval for `job` (what to run once approved, as JSON), or
   * undefined when the tenant has maxPendingPerTenant pending already
   * (checked and created in one step).
   */
  async create(
    request: ApprovalRequest,
    ttlMs: number,
    job: unknown,
  ): Promise<ApprovalView | undefined> {
    const created = await this.records.create({
      request,
      ttlMs,
      maxPendingPerTenant: this.maxPendingPerTenant,
      job,
    });
    return created.created ? viewOf(created.approval) : undefined;
  }

  async get(id: string): Promise<ApprovalView | undefined> {
    const r = await this.records.get(id);
    return r === undefined ? undefined : viewOf(r);
  }

  /** Oldest first. */
  async list(status: ApprovalStatus = "pending"): Promise<ApprovalView[]> {
    return (await this.records.list({ status })).map(viewOf);
  }

  /**
   * pending (and unexpired) → running, exactly once: only the call that
   * changed it gets `job`, and must run it, then finish().
   */
  async approve(
    id: string,
    by: string,
  ): Promise<{ view: ApprovalView; job?: unknown } | undefined> {
    const outcome = await this.records.approve(id, by, this.instanceId);
    if (outcome === undefined) return undefined;
    this.wake(id);
    const view = viewOf(outcome.record);
    return outcome.changed ? { view, job: outcome.job } : { view };
  }

  async deny(id: string, by: string): Promise<ApprovalView | undefined> {
    const outcome = await this.records.deny(id, by);
    this.wake(id);
    return outcome === undefined ? undefined : viewOf(outcome.record);
  }

  /** The approved job has ended: done with its result, or failed with the error that ended it. */
  async finish(
    id: string,
    outcome: { result: ExecResult } | { error: StoredError },
  ): Promise<void> {
    await ("result" in outcome
      ? this.records.finish(id, "done", { result: outcome.result })
      : this.records.finish(id, "failed", { error: outcome.error }));
    this.wake(id);
  }

  /** Cancels the pending approvals of a tenant (or all), e.g. on an emergency stop. */
  async cancelPending(tenant: string | undefined, by: string): Promise<number> {
    const n = await this.records.cancelPending(tenant, by);
    for (const id of this.waiters.keys()) this.wake(id);
    return n;
  }

  /** Resolves when the approval leaves "pending"/"running", or after `ms`, or when `signal` aborts. */
  async wait(id: string, ms: number, signal?: AbortSignal): Promise<ApprovalView | undefined> {
    // Real time for the wait itself (the store's clock may be a test's fake one).
    const end = performance.now() + ms;
    for (;;) {
      const view = await this.get(id);
      if (view === undefined) return undefined;
      const left = end - performance.now();
      const open = view.status === "pending" || view.status === "running";
      if (!open || left <= 0 || signal?.aborted === true) return view;
      // Also wake at expiry, so a waiter sees "expired" as soon as it is true.
      const untilExpiry = Math.max(0, Date.parse(view.expiresAt) - this.now()) + 1;
      const nap = Math.min(left, POLL_MS, view.status === "pending" ? untilExpiry : POLL_MS);
      await this.changed(id, nap, signal);
    }
  }

  private changed(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  private wake(id: string): void {
    for (const done of [...(this.waiters.get(id) ?? [])]) done();
  }
}
