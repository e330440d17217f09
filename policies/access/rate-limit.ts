// Per-key, per-scope rate limits over sliding windows of a minute and an hour.
// A sliding log (the times of the last N admitted requests) gives exact
// answers — 5 per minute means the 6th request inside any 60 s is refused —
// and needs at most N timestamps per key, scope and window. Replicas count in
// the shared state store instead (SharedRateLimiter), so a limit holds across
// every gateway of the service.
import type { RateCounters } from "../../core/state.ts";
import type { RateLimits, Scope } from "./schema.ts";

export const WINDOWS = { perMinute: 60_000, perHour: 3600_000 } as const;
export type WindowName = keyof typeof WINDOWS;

export interface RateRefusal {
  scope: Scope;
  window: WindowName;
  limit: number;
  /** When a request would next be admitted. */
  retryAfterMs: number;
}

interface Check {
  log: string;
  window: WindowName;
  limit: number;
  scope: Scope;
}

/** One check per scope the request needs and window its rule sets. */
function checksFor(keyId: string, scopes: readonly Scope[], limits: RateLimits): Check[] {
  const checks: Check[] = [];
  for (const scope of new Set(scopes)) {
    const rule = limits[scope];
    if (rule === undefined) continue;
    for (const window of Object.keys(WINDOWS) as WindowName[]) {
      const limit = rule[window];
      if (limit !== undefined)
        checks.push({ log: `${keyId}\0${scope}\0${window}`, window, limit, scope });
    }
  }
  return checks;
}

export interface Limiter {
  take(
    keyId: string,
    scopes: readonly Scope[],
    limits: RateLimits,
  ): RateRefusal | undefined | Promise<RateRefusal | undefined>;
}

/** The same limits, counted in the shared state store: one atomic take per request. */
export class SharedRateLimiter implements Limiter {
  private readonly counters: RateCounters;

  constructor(counters: RateCounters) {
    this.counters = counters;
  }

  async take(
    keyId: string,
    scopes: readonly Scope[],
    limits: RateLimits,
  ): Promise<RateRefusal | undefined> {
    const checks = checksFor(keyId, scopes, limits);
    // PostgreSQL's text holds no NUL: "/" separates instead (neither a scope nor a window has one).
    const refused = await this.counters.take(
      checks.map((c) => ({
        key: `${c.log.replaceAll("\0", "/")}`,
        windowMs: WINDOWS[c.window],
        limit: c.limit,
      })),
    );
    if (refused === undefined) return undefined;
    const c = checks[refused.index] as Check;
    return { scope: c.scope, window: c.window, limit: c.limit, retryAfterMs: refused.retryAfterMs };
  }
}

export class RateLimiter implements Limiter {
  private readonly logs = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /**
   * Admits one request of `keyId` that needs `scopes`, counting it against
   * each of them; refuses (and counts nothing) when any limit is reached.
   */
  take(keyId: string, scopes: readonly Scope[], limits: RateLimits): RateRefusal | undefined {
    const now = this.now();
    const checks = checksFor(keyId, scopes, limits);
    let refusal: RateRefusal | undefined;
    for (const c of checks) {
      const times = this.prune(c.log, now - WINDOWS[c.window]);
      if (times.length >= c.limit) {
        // The oldest admission still in the window decides when room frees up.
        const retryAfterMs = (times[times.length - c.limit] as number) + WINDOWS[c.window] - now;
        if (refusal === undefined || retryAfterMs > refusal.retryAfterMs) {
          refusal = { scope: c.scope, window: c.window, limit: c.limit, retryAfterMs };
        }
      }
    }
    if (refusal !== undefined) return refusal;
    for (const c of checks) {
      const times = this.logs.get(c.log) ?? [];
      times.push(now);
      if (times.length > c.limit) times.splice(0, times.length - c.limit);
      this.logs.set(c.log, times);
    }
    return undefined;
  }

  private prune(log: string, after: number): number[] {
    const times = this.logs.get(log) ?? [];
    let drop = 0;
    while (drop < times.length && (times[drop] as number) <= after) drop++;
    if (drop > 0) times.splice(0, drop);
    if (times.length === 0) this.logs.delete(log);
    return times;
  }
}
