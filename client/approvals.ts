// Jobs the gateway holds for a human (a policy's requireApproval rule): the
// typed errors that surface them — an exec held for approval throws
// ApprovalPendingError with its id, never a 202 body typed as a result — and
// the approval methods, `wait` included, which long-polls
// GET /v1/approvals/:id?wait= until the approval is decided and returns the
// job's result once approved.
import { ERROR_STATUS } from "../core/errors.ts";
import { AirlockApiError } from "./errors.ts";
import type { JsonAnswer, MethodOf, Operation, Path, RequestInit } from "./http.ts";

type Answer<P extends Path, M extends MethodOf<P>> = JsonAnswer<Operation<P, M>>;
type Json = <P extends Path, M extends MethodOf<P>>(
  method: M,
  path: P,
  init: RequestInit<Operation<P, M>>,
) => Promise<Answer<P, M>>;

export type ApprovalView = Answer<"/v1/approvals/{id}", "get">;
export type ApprovalExecResult = NonNullable<ApprovalView["result"]>;
/** 202 from an exec route: the policy holds the job for an admin's approval (not respond-async's {id, status}). */
export type ApprovalPending = Extract<
  JsonAnswer<Operation<"/v1/exec", "post">, 202>,
  { approvalId: string }
>;

/** The longest wait one GET /v1/approvals/:id may ask for. */
const MAX_WAIT_S = 60;

/**
 * The job has not run: it waits for an admin's approval (`approvalStatus`
 * "pending"), or it was approved and still runs ("running"). Wait for it with
 * `client.approvals.wait(err.approvalId)`. Its HTTP status is 202, its code
 * `approval_pending`: code that only knows AirlockApiError still reports the id.
 */
export class ApprovalPendingError extends AirlockApiError {
  readonly approvalId: string;
  readonly approvalStatus: "pending" | "running";
  /** ISO time after which a pending approval lapses and the job never runs. */
  readonly expiresAt: string;
  /** The policy rules that asked for a human ("network", "jobsOverSeconds", …). */
  readonly reasons: string[];

  constructor(held: {
    approvalId: string;
    status: "pending" | "running";
    expiresAt: string;
    reasons: string[];
  }) {
    const { approvalId, status, expiresAt, reasons } = held;
    super(202, {
      code: "approval_pending",
      message:
        status === "running"
          ? `approval ${approvalId} was approved and its job is still running`
          : `the policy holds this job for an admin's approval (${reasons.join(", ")}): ` +
            `approval ${approvalId} is pending until ${expiresAt}; the job has not run`,
      details: held,
    });
    this.name = "ApprovalPendingError";
    this.approvalId = approvalId;
    this.approvalStatus = status;
    this.expiresAt = expiresAt;
    this.reasons = reasons;
  }
}

/**
 * The approval ended without running its job: denied by an admin (403
 * `approval_denied`), lapsed (403 `approval_expired`) or cancelled by an
 * emergency stop (423 `approval_cancelled`).
 */
export class ApprovalEndedError extends AirlockApiError {
  readonly approvalId: string;
  readonly approval: ApprovalView;

  constructor(approval: ApprovalView) {
    const { id, status, decidedBy } = approval;
    const how =
      status === "denied"
        ? `was denied${decidedBy === undefined ? "" : ` by ${decidedBy}`}`
        : status === "expired"
          ? `expired at ${approval.expiresAt} before an admin approved it`
          : "was cancelled by an emergency stop";
    super(status === "cancelled" ? 423 : 403, {
      code: `approval_${status}`,
      message: `approval ${id} ${how}: the job did not run`,
      details: { approvalId: id, status },
    });
    this.name = "ApprovalEndedError";
    this.approvalId = id;
    this.approval = approval;
  }
}

/** A 202 answer of an exec route as the error that carries it. */
export function pendingError(held: ApprovalPending): ApprovalPendingError {
  const status = held.status === "running" ? "running" : "pending";
  return new ApprovalPendingError({ ...held, status });
}

/**
 * What a decided approval means for its caller: the job's result when it ran
 * (`done`); else the error that says why there is none.
 */
export function approvalOutcome(view: ApprovalView): ApprovalExecResult {
  switch (view.status) {
    case "done":
      if (view.result !== undefined) return view.result;
      throw new AirlockApiError(500, {
        code: "internal",
        message: `approval ${view.id} is done but carries no result`,
      });
    case "pending":
    case "running":
      throw new ApprovalPendingError({ ...view, approvalId: view.id, status: view.status });
    case "failed": {
      // The job's own error (e.g. stopped, quota_exceeded), with the status of its code.
      const error = view.error ?? { code: "internal", message: "the approved job failed" };
      const status = (ERROR_STATUS as Record<string, number>)[error.code] ?? 500;
      throw new AirlockApiError(status, { ...error, details: { approvalId: view.id } });
    }
    default:
      throw new ApprovalEndedError(view);
  }
}

export interface WaitOptions {
  /** Give up after this many seconds (ApprovalPendingError); default: until it is decided or expires. 0: look once. */
  timeoutS?: number;
  /** Aborting it stops waiting; the approval itself is not touched. */
  signal?: AbortSignal;
}

/** Approval checkpoints: an admin lists and decides; the requesting tenant's keys read and wait. */
export function approvalMethods(json: Json) {
  const get = (id: string, wait?: number, call: { signal?: AbortSignal } = {}) =>
    json("get", "/v1/approvals/{id}", {
      path: { id },
      query: wait === undefined ? {} : { wait },
      ...call,
    });
  return {
    list: (call: { signal?: AbortSignal } = {}) => json("get", "/v1/approvals", call),
    /** With `wait` (seconds, at most 60), held until the approval changes. */
    get,
    approve: (id: string, call: { signal?: AbortSignal } = {}) =>
      json("post", "/v1/approvals/{id}/approve", { path: { id }, ...call }),
    deny: (id: string, call: { signal?: AbortSignal } = {}) =>
      json("post", "/v1/approvals/{id}/deny", { path: { id }, ...call }),
    /**
     * Waits until the approval is decided and its job has run: the job's
     * result (as `exec` returns it). Throws ApprovalEndedError when it is
     * denied, expires or is cancelled; the job's own error when it failed
     * (e.g. 423 stopped); ApprovalPendingError when `timeoutS` runs out first.
     * Long-polls in waits of up to 60 s, each counted against the key's rate
     * limit; a 429 rate_limited is waited out (Retry-After) while time is left.
     */
    wait: async (id: string, options: WaitOptions = {}): Promise<ApprovalExecResult> => {
      const { signal } = options;
      const end =
        options.timeoutS === undefined
          ? Number.POSITIVE_INFINITY
          : Date.now() + options.timeoutS * 1000;
      for (;;) {
        const left = end - Date.now();
        const wait = Math.round(Math.max(0, Math.min(MAX_WAIT_S, left / 1000)) * 1000) / 1000;
        let view: ApprovalView;
        try {
          view = await get(id, wait, signal === undefined ? {} : { signal });
        } catch (err) {
          const pause = rateLimitPause(err, end - Date.now());
          if (pause === undefined) throw err;
          await sleep(pause, signal);
          continue;
        }
        const open = view.status === "pending" || view.status === "running";
        if (!open || Date.now() >= end) return approvalOutcome(view);
      }
    },
  };
}

/** How long to wait out a 429 rate_limited, when its Retry-After ends within `left` ms. */
function rateLimitPause(err: unknown, left: number): number | undefined {
  if (!(err instanceof AirlockApiError) || err.code !== "rate_limited") return undefined;
  const ms = (err.retryAfterSeconds ?? 1) * 1000;
  return ms <= left ? ms : undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
