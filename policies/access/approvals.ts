// Human checkpoints: a gated job waits here as a pending approval until an
// admin approves (it then runs, exactly once), denies, or it expires. Kept in
// memory only: pending approvals are lost when the gateway restarts.
import { randomBytes } from "node:crypto";
import type { ExecResult } from "../../core/schemas.ts";
import type { Scope } from "./schema.ts";

export type ApprovalStatus =
  | "pending"
  | "running"
  | "done"
  | "failed"
  | "denied"
  | "expired"
  | "cancelled";

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

interface Entry {
  view: ApprovalView;
  expiresAtMs: number;
  run: ((id: string) => Promise<ExecResult>) | undefined;
  waiters: Set<() => void>;
}

export interface ApprovalStoreOptions {
  now?: () => number;
  /** Finished approvals are kept this long for pollers, then forgotten. */
  retainMs?: number;
  /** Pending approvals allowed at once per tenant. */
  maxPendingPerTenant?: number;
}

export class ApprovalStore {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly retainMs: number;
  readonly maxPendingPerTenant: number;

  constructor(options: ApprovalStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.retainMs = options.retainMs ?? 3600_000;
    this.maxPendingPerTenant = options.maxPendingPerTenant ?? 20;
  }

  pendingCount(tenant: string): number {
    this.sweep();
    let n = 0;
    for (const e of this.entries.values()) {
      if (e.view.tenant === tenant && e.view.status === "pending") n++;
    }
    return n;
  }

  /** A pending approval whose job `run` performs once approved. */
  create(
    request: ApprovalRequest,
    ttlMs: number,
    run: (id: string) => Promise<ExecResult>,
  ): ApprovalView {
    this.sweep();
    const now = this.now();
    const id = `apr_${randomBytes(12).toString("hex")}`;
    const view: ApprovalView = {
      ...request,
      id,
      status: "pending",
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlMs).toISOString(),
    };
    this.entries.set(id, { view, expiresAtMs: now + ttlMs, run, waiters: new Set() });
    return { ...view };
  }

  get(id: string): ApprovalView | undefined {
    this.sweep();
    const e = this.entries.get(id);
    return e === undefined ? undefined : { ...e.view };
  }

  list(status: ApprovalStatus | undefined = "pending"): ApprovalView[] {
    this.sweep();
    return [...this.entries.values()]
      .filter((e) => status === undefined || e.view.status === status)
      .map((e) => ({ ...e.view }));
  }

  /**
   * Approves and starts the job. Only a pending, unexpired approval can be
   * approved, so however many admins approve and pollers wait, the job runs once.
   */
  approve(id: string, by: string): ApprovalView | undefined {
    const e = this.entry(id);
    if (e === undefined) return undefined;
    if (e.view.status !== "pending" || e.run === undefined) return { ...e.view };
    const run = e.run;
    e.run = undefined;
    this.settle(e, "running", by);
    run(id).then(
      (result) => {
        e.view.result = result;
        this.settle(e, "done");
      },
      (err: unknown) => {
        const code = (err as { code?: unknown }).code;
        e.view.error = {
          code: typeof code === "string" ? code : "internal",
          message: (err as Error).message ?? String(err),
        };
        this.settle(e, "failed");
      },
    );
    return { ...e.view };
  }

  deny(id: string, by: string): ApprovalView | undefined {
    const e = this.entry(id);
    if (e === undefined) return undefined;
    if (e.view.status === "pending") {
      e.run = undefined;
      this.settle(e, "denied", by);
    }
    return { ...e.view };
  }

  /** Cancels the pending approvals of a tenant (or all), e.g. on an emergency stop. */
  cancelPending(tenant: string | undefined, by: string): number {
    let n = 0;
    for (const e of this.entries.values()) {
      if (e.view.status !== "pending" || (tenant !== undefined && e.view.tenant !== tenant))
        continue;
      e.run = undefined;
      this.settle(e, "cancelled", by);
      n++;
    }
    return n;
  }

  /** Resolves when the approval leaves "pending"/"running", or after `ms`, or when `signal` aborts. */
  async wait(id: string, ms: number, signal?: AbortSignal): Promise<ApprovalView | undefined> {
    // Real time for the wait itself (the store's clock may be a test's fake one).
    const end = performance.now() + ms;
    for (;;) {
      const e = this.entry(id);
      if (e === undefined) return undefined;
      const left = end - performance.now();
      if (!this.open(e) || left <= 0 || signal?.aborted) return { ...e.view };
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          e.waiters.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        // Also wake at expiry, so a waiter sees "expired" as soon as it is true.
        const timer = setTimeout(done, Math.min(left, Math.max(0, e.expiresAtMs - this.now()) + 1));
        e.waiters.add(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  private open(e: Entry): boolean {
    return e.view.status === "pending" || e.view.status === "running";
  }

  private entry(id: string): Entry | undefined {
    this.sweep();
    return this.entries.get(id);
  }

  private settle(e: Entry, status: ApprovalStatus, by?: string): void {
    e.view.status = status;
    if (by !== undefined) {
      e.view.decidedBy = by;
      e.view.decidedAt = new Date(this.now()).toISOString();
    }
    // Finished approvals stay readable for retainMs from now.
    if (!this.open(e)) e.expiresAtMs = this.now() + this.retainMs;
    for (const wake of [...e.waiters]) wake();
  }

  /** Pending approvals past their expiry become "expired"; old finished ones are forgotten. */
  private sweep(): void {
    const now = this.now();
    for (const [id, e] of this.entries) {
      if (now < e.expiresAtMs) continue;
      if (e.view.status === "pending") {
        e.run = undefined;
        this.settle(e, "expired");
      } else if (e.view.status !== "running") {
        this.entries.delete(id);
      }
    }
  }
}
