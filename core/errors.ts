// The one table of error codes and HTTP statuses (DESIGN.md "HTTP API"), and the
// typed error every layer throws. Turned into a response once, in app.onError.
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  busy: 429,
  rate_limited: 429,
  quota_exceeded: 429,
  stopped: 423,
  /** The resource is in a state that forbids it (e.g. cancelling an execution that has ended). */
  conflict: 409,
  /** The same Idempotency-Key came with a different request (method, path or body). */
  idempotency_key_reused: 422,
  docker_unavailable: 503,
  /** The state store (executions, idempotency, approvals) cannot be read or written now. */
  state_unavailable: 503,
  /** The gateway is stopping (SIGTERM): the job was not run, or killed after the grace period. */
  shutting_down: 503,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export interface AirlockErrorOptions {
  cause?: unknown;
  details?: unknown;
  /** Seconds a client should wait before retrying; sent as `Retry-After`. */
  retryAfterSeconds?: number;
}

export class AirlockError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: AirlockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AirlockError";
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}
