// Per-tenant quotas: jobs running at once, and the hourly "cost" budgets —
// CPU-seconds and container-seconds used by finished jobs in the last sliding
// hour. A tenant at or over a budget gets no new job until enough of its
// usage has aged out of the hour.
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

export class QuotaLedger {
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
    const running = this.running.get(tenant) ?? 0;
    if (quotas.concurrentJobs !== undefined && running >= quotas.concurrentJobs) {
      return {
        limit: "concurrentJobs",
        max: quotas.concurrentJobs,
        used: running,
        retryAfterMs: 1000,
      };
    }
    const budgets = [
      ["cpuSecondsPerHour", quotas.cpuSecondsPerHour, (u: Usage) => u.cpuMs],
      ["containerSecondsPerHour", quotas.containerSecondsPerHour, (u: Usage) => u.containerMs],
    ] as const;
    const records = this.recent(tenant);
    for (const [limit, max, pick] of budgets) {
      if (max === undefined) continue;
      const budgetMs = max * 1000;
      let used = records.reduce((sum, u) => sum + pick(u), 0);
      if (used < budgetMs) continue;
      // Room comes back as the oldest records leave the hour.
      let retryAt = this.now() + HOUR_MS;
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
        retryAfterMs: Math.max(1000, retryAt - this.now()),
      };
    }
    return undefined;
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
  used(tenant: string): { cpuSeconds: number; containerSeconds: number; running: number } {
    const records = this.recent(tenant);
    return {
      cpuSeconds: records.reduce((s, u) => s + u.cpuMs, 0) / 1000,
      containerSeconds: records.reduce((s, u) => s + u.containerMs, 0) / 1000,
      running: this.running.get(tenant) ?? 0,
    };
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
