// Per-tenant quotas: jobs running at once, and the hourly "cost" budgets —
// CPU-seconds and container-seconds used by finished jobs in the last sliding
// hour. A tenant at or over a budget gets no new job until enough of its
// usage has aged out of the hour. In memory for one gateway (QuotaLedger), or
// counted in the shared state store for replicas (SharedQuotaLedger), so the
// quotas hold across every gateway of the service.
import type { QuotaCounters } from "../../core/state.ts";
import type { Quotas } from "./schema.ts";

const HOUR_MS = 3600_000;

export interface QuotaRefusal {
  limit: "concurrentJobs" | "cpuSecondsPerHour" | "containerSecondsPerHour";
  max: number;
  used: number;
  retryAfterMs: number;
}

interface Usage {
  at: number;
  cpuMs: number;
  containerMs: number;
}

export interface Used {
  cpuSeconds: number;
  containerSeconds: number;
  running: number;
}

/** The quotas' bookkeeping, as admission uses it: in memory (sync) or in the store (async). */
export interface QuotaBook {
  check(
    tenant: string,
    quotas: Quotas,
  ): QuotaRefusal | undefined | Promise<QuotaRefusal | undefined>;
  acquire(
    tenant: string,
    quotas: Quotas,
  ):
    | { release: () => void | Promise<void> }
    | QuotaRefusal
    | Promise<{ release: () => void | Promise<void> } | QuotaRefusal>;
  /**
   * What a finished job used. `answered` settles once its answer is on its way:
   * a book that writes to a store waits for it, so the write does not compete
   * with the answer's own.
   */
  record(
    tenant: string,
    cpuMs: number,
    containerMs: number,
    answered?: Promise<unknown>,
  ): void | Promise<void>;
  used(tenant: string): Used | Promise<Used>;
}

function concurrencyRefusal(running: number, quotas: Quotas): QuotaRefusal | undefined {
  if (quotas.concurrentJobs === undefined || running < quotas.concurrentJobs) return undefined;
  return { limit: "concurrentJobs", max: quotas.concurrentJobs, used: running, retryAfterMs: 1000 };
}

/** Which hourly budget the usage of the last hour (oldest first) exhausts, and when room comes back. */
function budgetRefusal(records: Usage[], quotas: Quotas, now: number): QuotaRefusal | undefined {
  const budgets = [
    ["cpuSecondsPerHour", quotas.cpuSecondsPerHour, (u: Usage) => u.cpuMs],
    ["containerSecondsPerHour", quotas.containerSecondsPerHour, (u: Usage) => u.containerMs],
  ] as const;
  for (const [limit, max, pick] of budgets) {
    if (max === undefined) continue;
    const budgetMs = max * 1000;
    let used = records.reduce((sum, u) => sum + pick(u), 0);
    if (used < budgetMs) continue;
    // Room comes back as the oldest records leave the hour.
    let retryAt = now + HOUR_MS;
    for (const u of records) {
      used -= pick(u);
      if (used < budgetMs) {
        retryAt = u.at + HOUR_MS;
        break;
      }
    }
    return {
      limit,
      max,
      used: records.reduce((sum, u) => sum + pick(u), 0) / 1000,
      retryAfterMs: Math.max(1000, retryAt - now),
    };
  }
  return undefined;
}

function usedOf(records: Usage[], running: number): Used {
  return {
    cpuSeconds: records.reduce((s, u) => s + u.cpuMs, 0) / 1000,
    containerSeconds: records.reduce((s, u) => s + u.containerMs, 0) / 1000,
    running,
  };
}

/** The quotas counted in the shared state store: job slots taken atomically, usage of every gateway. */
export class SharedQuotaLedger implements QuotaBook {
  private readonly counters: QuotaCounters;
  private readonly instanceId: string;
  private readonly now: () => number;

  private readonly countAfterMs: number;

  constructor(
    counters: QuotaCounters,
    instanceId: string,
    now: () => number = Date.now,
    /** A job of a tenant without concurrentJobs is counted as running once it has run this long. */
    countAfterMs = 250,
  ) {
    this.counters = counters;
    this.instanceId = instanceId;
    this.now = now;
    this.countAfterMs = countAfterMs;
  }

  async check(tenant: string, quotas: Quotas): Promise<QuotaRefusal | undefined> {
    if (quotas.concurrentJobs !== undefined) {
      const refusal = concurrencyRefusal(await this.counters.running(tenant), quotas);
      if (refusal !== undefined) return refusal;
    }
    if (quotas.cpuSecondsPerHour === undefined && quotas.containerSecondsPerHour === undefined) {
      return undefined;
    }
    const now = this.now();
    return budgetRefusal(await this.counters.usageSince(tenant, now - HOUR_MS), quotas, now);
  }

  async acquire(
    tenant: string,
    quotas: Quotas,
  ): Promise<{ release: () => Promise<void> } | QuotaRefusal> {
    const budget = await this.check(tenant, { ...quotas, concurrentJobs: undefined });
    if (budget !== undefined) return budget;
    // Every job takes a slot (the operators' view counts them), limited or not.
    if (quotas.concurrentJobs === undefined) return this.countedSlot(tenant);
    const taken = await this.counters.acquireSlot(tenant, quotas.concurrentJobs, this.instanceId);
    if (!("slot" in taken)) return concurrencyRefusal(taken.running, quotas) as QuotaRefusal;
    return this.releasing(Promise.resolve(taken.slot));
  }

  /**
   * A slot with no limit to hold, so nobody waits for it: it only counts the
   * job for the operators' view. Taken once the job has run for COUNT_AFTER_MS
   * (a job that ends sooner never costs the store a write), and given back
   * beside the job's end, not before its answer.
   */
  private countedSlot(tenant: string): { release: () => Promise<void> } {
    let slot: { release: () => Promise<void> } | undefined;
    const timer = setTimeout(() => {
      slot = this.releasing(
        this.counters
          .acquireSlot(tenant, Number.MAX_SAFE_INTEGER, this.instanceId)
          .then((t) => ("slot" in t ? t.slot : undefined))
          .catch(() => undefined),
      );
    }, this.countAfterMs);
    timer.unref();
    return {
      release: async () => {
        clearTimeout(timer);
        void slot?.release();
      },
    };
  }

  private releasing(taken: Promise<string | undefined>): { release: () => Promise<void> } {
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        const slot = await taken;
        // A slot that cannot be released now goes when this gateway leaves the registry (or dies).
        if (slot !== undefined) await this.counters.releaseSlot(slot).catch(() => {});
      },
    };
  }

  /**
   * Not waited for: the job's answer does not wait on its bookkeeping, and the
   * write goes once the answer is on its way (`answered`). A record the store
   * cannot keep under-counts the hour's budget; it never fails a job that ran.
   */
  record(tenant: string, cpuMs: number, containerMs: number, answered?: Promise<unknown>): void {
    const usage = {
      at: this.now(),
      cpuMs: Math.max(0, cpuMs),
      containerMs: Math.max(0, containerMs),
    };
    const write = () => this.counters.recordUsage(tenant, usage);
    (answered === undefined ? write() : answered.then(write)).catch(() => {});
  }

  async used(tenant: string): Promise<Used> {
    const records = await this.counters.usageSince(tenant, this.now() - HOUR_MS);
    return usedOf(records, await this.counters.running(tenant));
  }
}

export class QuotaLedger implements QuotaBook {
  private readonly running = new Map<string, number>();
  private readonly usage = new Map<string, Usage[]>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Takes a job slot for `tenant`, or says which quota refuses it. Call release() once when done. */
  acquire(tenant: string, quotas: Quotas): { release: () => void } | QuotaRefusal {
    const refusal = this.check(tenant, quotas);
    if (refusal !== undefined) return refusal;
    this.running.set(tenant, (this.running.get(tenant) ?? 0) + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const n = (this.running.get(tenant) ?? 1) - 1;
        if (n <= 0) this.running.delete(tenant);
        else this.running.set(tenant, n);
      },
    };
  }

  check(tenant: string, quotas: Quotas): QuotaRefusal | undefined {
    return (
      concurrencyRefusal(this.running.get(tenant) ?? 0, quotas) ??
      budgetRefusal(this.recent(tenant), quotas, this.now())
    );
  }

  /** Records what a finished job used. */
  record(tenant: string, cpuMs: number, containerMs: number): void {
    const records = this.recent(tenant);
    records.push({
      at: this.now(),
      cpuMs: Math.max(0, cpuMs),
      containerMs: Math.max(0, containerMs),
    });
    this.usage.set(tenant, records);
  }

  /** Seconds used in the last hour, for the admin view. */
  used(tenant: string): Used {
    return usedOf(this.recent(tenant), this.running.get(tenant) ?? 0);
  }

  private recent(tenant: string): Usage[] {
    const records = this.usage.get(tenant) ?? [];
    const after = this.now() - HOUR_MS;
    let drop = 0;
    while (drop < records.length && (records[drop] as Usage).at <= after) drop++;
    if (drop > 0) records.splice(0, drop);
    if (records.length === 0) this.usage.delete(tenant);
    return records;
  }
}
