// Bearer-key authentication. Keys are kept only as sha256 hashes and every
// stored hash is compared with timingSafeEqual, all of them every time, so
// neither the comparison nor the loop leaks which key (or how much of one) matched.
import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { type ApiKey, hashKey } from "./config.ts";
import { AirlockError } from "./errors.ts";

export interface Caller {
  tenant: string;
  /** First 8 hex digits of the key's hash: safe to log, enough to tell keys apart. */
  keyId: string;
}

export type AuthEnv = { Variables: { caller: Caller; requestId: string } };

export function findCaller(
  keys: readonly ApiKey[],
  presented: string,
  equal: (a: Buffer, b: Buffer) => boolean = timingSafeEqual,
): Caller | undefined {
  const hash = hashKey(presented);
  let found: ApiKey | undefined;
  // No early exit: every stored hash is compared whichever one matches.
  for (const key of keys) {
    if (equal(key.hash, hash) && found === undefined) found = key;
  }
  return found === undefined
    ? undefined
    : { tenant: found.tenant, keyId: found.hash.toString("hex").slice(0, 8) };
}

export function bearerAuth(keys: readonly ApiKey[]): MiddlewareHandler<AuthEnv> {
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
    const caller = findCaller(keys, match[1] as string);
    if (caller === undefined) throw new AirlockError("unauthorized", "the API key is not valid");
    c.set("caller", caller);
    await next();
  };
}
