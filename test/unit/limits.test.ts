// Rate-limit and quota arithmetic on a fake clock: no test sleeps.
import { describe, expect, it } from "vitest";
import { QuotaLedger } from "../../policies/access/quota.ts";
import { RateLimiter } from "../../policies/access/rate-limit.ts";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("rate limiter", () => {
  it("admits exactly perMinute requests in any 60 s, then says when the next one fits", () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    const limits = { exec: { perMinute: 5 } };
    for (let i = 0; i < 5; i++) {
      expect(limiter.take("k", ["exec"], limits)).toBeUndefined();
      c.advance(1000);
    }
    // 5 s after the first: 55 s until it leaves the window.
    expect(limiter.take("k", ["exec"], limits)).toEqual({
      scope: "exec",
      window: "perMinute",
      limit: 5,
      retryAfterMs: 55_000,
    });
    c.advance(54_999);
    expect(limiter.take("k", ["exec"], limits)).toMatchObject({ retryAfterMs: 1 });
    c.advance(1);
    expect(limiter.take("k", ["exec"], limits)).toBeUndefined();
    expect(limiter.take("k", ["exec"], limits)).toBeDefined();
  });

  it("keeps keys and scopes apart, and ignores scopes without a limit", () => {
    const limiter = new RateLimiter(clock().now);
    const limits = { exec: { perMinute: 1 } };
    expect(limiter.take("a", ["exec"], limits)).toBeUndefined();
    expect(limiter.take("b", ["exec"], limits)).toBeUndefined();
    expect(limiter.take("a", ["files.read"], limits)).toBeUndefined();
    expect(limiter.take("a", ["files.read"], limits)).toBeUndefined();
    expect(limiter.take("a", ["exec"], limits)).toMatchObject({ scope: "exec" });
  });

  it("applies the hour window too, and a refused request counts against nothing", () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    const limits = { exec: { perMinute: 10, perHour: 3 }, workspaces: { perMinute: 2 } };
    for (let i = 0; i < 2; i++)
      expect(limiter.take("k", ["exec", "workspaces"], limits)).toBeUndefined();
    // workspaces is full: the exec count must not move.
    expect(limiter.take("k", ["exec", "workspaces"], limits)).toMatchObject({
      scope: "workspaces",
    });
    expect(limiter.take("k", ["exec"], limits)).toBeUndefined();
    c.advance(120_000);
    expect(limiter.take("k", ["exec"], limits)).toEqual({
      scope: "exec",
      window: "perHour",
      limit: 3,
      retryAfterMs: 3600_000 - 120_000,
    });
  });
});

describe("quota ledger", () => {
  it("caps jobs running at once and frees a slot on release (once)", () => {
    const ledger = new QuotaLedger(clock().now);
    const q = { concurrentJobs: 2 };
    const a = ledger.acquire("t", q);
    const b = ledger.acquire("t", q);
    expect("release" in a && "release" in b).toBe(true);
    expect(ledger.acquire("t", q)).toMatchObject({ limit: "concurrentJobs", max: 2, used: 2 });
    expect("release" in ledger.acquire("other", q)).toBe(true);
    if ("release" in a) {
      a.release();
      a.release();
    }
    expect(ledger.used("t").running).toBe(1);
    expect("release" in ledger.acquire("t", q)).toBe(true);
    expect(ledger.acquire("t", q)).toMatchObject({ limit: "concurrentJobs" });
  });

  it("refuses once the CPU-seconds of the last hour reach the budget, until they age out", () => {
    const c = clock();
    const ledger = new QuotaLedger(c.now);
    const q = { cpuSecondsPerHour: 10 };
    ledger.record("t", 4000, 5000);
    c.advance(60_000);
    expect(ledger.check("t", q)).toBeUndefined();
    ledger.record("t", 7000, 8000);
    c.advance(1000);
    // 11 s used; the first record (4 s) leaves the hour 59 min from now, leaving 7 < 10.
    expect(ledger.check("t", q)).toEqual({
      limit: "cpuSecondsPerHour",
      max: 10,
      used: 11,
      retryAfterMs: 3600_000 - 61_000,
    });
    expect(ledger.check("u", q)).toBeUndefined();
    c.advance(3600_000 - 61_000);
    expect(ledger.check("t", q)).toBeUndefined();
    expect(ledger.used("t").cpuSeconds).toBe(7);
  });

  it("counts container-seconds separately", () => {
    const ledger = new QuotaLedger(clock().now);
    ledger.record("t", 10, 30_000);
    expect(ledger.check("t", { cpuSecondsPerHour: 1 })).toBeUndefined();
    expect(ledger.check("t", { containerSecondsPerHour: 30 })).toMatchObject({
      limit: "containerSecondsPerHour",
      used: 30,
    });
  });
});
