// The audit trail at the HTTP layer: the middleware that writes one audit line
// per request under /v1 (refusals included), and note(), with which admission
// and the routes add what the line should say (op, scope, profile, outcome).
import type { Context, MiddlewareHandler } from "hono";
import { AirlockError } from "../../core/errors.ts";
import type { ExecResult } from "../../core/schemas.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import type { AuditLog } from "../../policies/access/audit.ts";
import { type AuditNote, type AuthEnv, type Caller, whenRequestEnds } from "../auth.ts";

/** Adds fields to this request's audit line. */
export function note(c: Context<AuthEnv>, fields: AuditNote): void {
  c.set("audit", { ...(c.get("audit") ?? {}), ...fields });
}

/** The bytes of output a job answered with, for the audit line. */
export function outputBytes(result: ExecResult): number {
  return Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr);
}

/** A job's connections through the egress proxy, counted for the audit line. */
export function egressCounts(result: ExecResult): AuditNote | undefined {
  if (result.egress === undefined) return undefined;
  const count = { allowed: 0, denied: 0, bytesOut: 0, bytesIn: 0 };
  for (const e of result.egress) {
    count[e.decision] += 1;
    count.bytesOut += e.bytesOut;
    count.bytesIn += e.bytesIn;
  }
  return { egress: count };
}

/** How a job that threw ended, for the audit line: an error code, or "cancelled". */
export function endedHow(err: unknown): string {
  if (err instanceof AirlockError) return err.code;
  if (err instanceof JobCancelledError) return "cancelled";
  return "internal";
}

/**
 * One audit line per request under /v1, written after the answer is known:
 * refusals (401, 403, 423, 429) included. Wraps authentication, so it is
 * installed before it.
 */
export function auditTrail(
  audit: AuditLog,
  now: () => number = Date.now,
): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const started = now();
    try {
      await next();
    } finally {
      // A streamed job is still running when its handler returns: its line is
      // written when it ends, with its status and exit code, without holding
      // back the response. Any other line is written in the event loop's next
      // turn, once the answer has gone out (its row in the store is a write
      // on the answer's path otherwise); no later request is read before it.
      whenRequestEnds(c, () => setImmediate(write));
    }
    function write() {
      const caller = c.get("caller") as Caller | undefined;
      const n: AuditNote = c.get("audit") ?? {};
      const status = c.res.status;
      const length = c.req.header("content-length");
      const outLength = c.res.headers.get("content-length");
      audit.record({
        time: new Date(started).toISOString(),
        requestId: c.get("requestId") ?? null,
        op: n.op ?? `${c.req.method} ${c.req.path}`,
        method: c.req.method,
        path: c.req.path,
        tenant: caller?.tenant ?? null,
        keyId: caller?.keyId ?? null,
        scope: n.scope ?? null,
        profile: n.profile ?? null,
        workspace: n.workspace ?? null,
        commandDigest: n.commandDigest ?? null,
        status: c.get("errorCode") ?? n.status ?? (status < 400 ? "ok" : String(status)),
        httpStatus: status,
        exitCode: n.exitCode ?? null,
        durationMs: now() - started,
        bytesIn: length === undefined ? null : Number(length),
        bytesOut: n.bytesOut ?? (outLength === null ? null : Number(outLength)),
        approvalId: n.approvalId ?? null,
        ...(n.egress === undefined ? {} : { egress: n.egress }),
      });
    }
  };
}
