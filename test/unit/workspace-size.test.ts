// The workspace size cap's rules (executor/workspace-size.ts): which cap holds,
// and which writes it refuses.
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import { assertWithinCap, sizeCapOf } from "../../executor/workspace-size.ts";

describe("the workspace size cap", () => {
  it("is the gateway's, or the tenant's own when smaller, named after its setting", () => {
    expect(sizeCapOf(1000, undefined)).toEqual({
      bytes: 1000,
      setting: "AIRLOCK_WORKSPACE_MAX_BYTES",
    });
    expect(sizeCapOf(1000, 2000)).toEqual({ bytes: 1000, setting: "AIRLOCK_WORKSPACE_MAX_BYTES" });
    expect(sizeCapOf(1000, 500)).toEqual({ bytes: 500, setting: "maxWorkspaceBytes" });
  });

  it("refuses a write that grows the workspace past it with 413 naming it; one that does not grow it passes", () => {
    const cap = sizeCapOf(1000, 500);
    expect(() => assertWithinCap("workspace ws_a", cap, 100, 500)).not.toThrow();
    let refusal: unknown;
    try {
      assertWithinCap("workspace ws_a", cap, 100, 501);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(AirlockError);
    expect(refusal).toMatchObject({
      code: "payload_too_large",
      status: 413,
      retryAfterSeconds: undefined,
      details: { limit: "maxWorkspaceBytes", max: 500, bytes: 501 },
    });
    expect((refusal as Error).message).toBe(
      "this write would take workspace ws_a to 501 bytes, past its size cap of 500 bytes (maxWorkspaceBytes); delete files first",
    );
    // Already over (a lowered cap, a run's overshoot): shrinking, or staying, is allowed.
    expect(() => assertWithinCap("workspace ws_a", cap, 900, 800)).not.toThrow();
    expect(() => assertWithinCap("workspace ws_a", cap, 900, 900)).not.toThrow();
    expect(() => assertWithinCap("workspace ws_a", cap, 900, 901)).toThrow(AirlockError);
  });
});
