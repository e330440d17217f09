// Bearer-key authentication. Keys are kept only as sha256 hashes and every
// stored hash is compared with timingSafeEqual, all of them every time, so
// neither the comparison nor the loop leaks which key (or how much of one) matched.
import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { AirlockError } from "../core/errors.ts";
import { phase } from "../core/timing.ts";
import type { AuditRecord } from "../policies/access/audit.ts";
import type { KeyGrant } from "../policies/access/schema.ts";
import { type ApiKey, hashKey } from "./config.ts";
import type { LogEnv } from "./request-log.ts";

export interface Caller {
  tenant: string;
  /** The policy's key id, or the first 8 hex digits of the key's hash: safe to log. */
  keyId: string;
  /** What the key may do (policies/access). */
  grant: KeyGrant;
}

/** What a route tells the audit log about its operation. */
export type AuditNote = Partial<
  Pick<
    AuditRecord,
    | "op"
    | "scope"
    | "profile"
    | "workspace"
    | "commandDigest"
    | "status"
    | "exitCode"
    | "bytesOut"
    | "approvalId"
    | "egress"
  >
>;

export type AuthEnv = {
  Variables: {
    caller: Caller;
    requestId: string;
    audit: AuditNote;
    errorCode: string;
    /** Settles when the request's job has ended: a streamed job outlives its handler. */
    jobEnded: Promise<void>;
    /** Set by an exec route whose answer is an event stream: the execution it streams (api/idempotency.ts). */
    streamedExecution: string;
  } & LogEnv["Variables"];
};

/**
 * Runs `record` once the request is over: at once, or, for a streamed job
 * that outlives its handler, when the job ends (the audit and access lines).
 */
export function whenRequestEnds(
  c: { get(key: "jobEnded"): Promise<void> | undefined },
  record: () => void,
): void {
  const jobEnded = c.get("jobEnded");
  if (jobEnded === undefined) record();
  else void jobEnded.then(record);
}

export function findKey<K extends ApiKey>(
  keys: readonly K[],
  presented: string,
  equal: (a: Buffer, b: Buffer) => boolean = timingSafeEqual,
): K | undefined {
  const hash = hashKey(presented);
  let found: K | undefined;
  // No early exit: every stored hash is compared whichever one matches.
  for (const key of keys) {
    if (equal(key.hash, hash) && found === undefined) found = key;
  }
  return found;
}

export function findCaller(
  keys: readonly ApiKey[],
  presented: string,
  equal: (a: Buffer, b: Buffer) => boolean = timingSafeEqual,
): Pick<Caller, "tenant" | "keyId"> | undefined {
  const found = findKey(keys, presented, equal);
  return found === undefined
    ? undefined
    : { tenant: found.tenant, keyId: found.hash.toString("hex").slice(0, 8) };
}

/** `keys` is read on every request, so a policy reload takes effect at once. */
export function bearerAuth(keys: () => readonly KeyGrant[]): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (header === undefined) {
      throw new AirlockError(
        "unauthorized",
        "missing Authorization header; send Authorization: Bearer <key>",
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match === null) {
      throw new AirlockError("unauthorized", "the Authorization header must be: Bearer <key>");
    }
    const grant = findKey(keys(), match[1] as string);
    if (grant === undefined) throw new AirlockError("unauthorized", "the API key is not valid");
    c.set("caller", { tenant: grant.tenant, keyId: grant.keyId, grant });
    phase("auth");
    await next();
  };
}
