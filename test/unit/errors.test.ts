import { describe, expect, it } from "vitest";
import { AirlockError, ERROR_STATUS, type ErrorCode } from "../../core/errors.ts";

describe("error table", () => {
  it("maps every code of DESIGN.md to its status", () => {
    expect(ERROR_STATUS).toEqual({
      invalid_request: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      payload_too_large: 413,
      busy: 429,
      rate_limited: 429,
      quota_exceeded: 429,
      stopped: 423,
      conflict: 409,
      idempotency_key_reused: 422,
      docker_unavailable: 503,
      state_unavailable: 503,
      shutting_down: 503,
      internal: 500,
    });
  });

  it("builds the error body and keeps the cause", () => {
    const cause = new Error("socket hang up");
    const err = new AirlockError("docker_unavailable", "engine down", {
      cause,
      details: { a: 1 },
      retryAfterSeconds: 5,
    });
    expect(err.status).toBe(503);
    expect(err.cause).toBe(cause);
    expect(err.retryAfterSeconds).toBe(5);
    expect(err.toBody()).toEqual({
      error: { code: "docker_unavailable", message: "engine down", details: { a: 1 } },
    });
  });

  it("omits details when there are none", () => {
    for (const code of Object.keys(ERROR_STATUS) as ErrorCode[]) {
      expect(new AirlockError(code, "m").toBody()).toEqual({ error: { code, message: "m" } });
    }
  });
});
