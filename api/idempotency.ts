// Idempotency-Key on every POST and PUT under /v1 (DESIGN.md "Executions";
// the IETF httpapi Idempotency-Key draft; Stripe's documented behaviour). The
// first request with a key takes it in the state store (one atomic begin, so
// of two at once exactly one runs, on one gateway or several), runs, and
// leaves its answer there; a retry with the same key and the same request
// (method, path with query, body) gets that answer again with
// `Idempotent-Replayed: true`, and nothing runs twice. A retry while the first
// still runs waits for it. The same key with another request is 422
// idempotency_key_reused. Keys belong to the tenant.
//
// What is kept: every answer but a 5xx (a fault of the service: a retry may
// run) and the "try again later" ones, 409, 423 and 429 (kept, they would
// refuse every retry for the whole retention). A streamed exec keeps a
// pointer to its execution as soon as its stream opens: a retry with the key,
// while it runs or after, gets the execution's events from the start, then
// live, then its result (GET /v1/executions/:id/events).
import { createHash } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { AirlockError } from "../core/errors.ts";
import type { StateStore, StoredAnswer } from "../core/state.ts";
import { JobCancelledError } from "../executor/sandbox.ts";
import type { AuthEnv } from "./auth.ts";
import { replay } from "./executions/events.ts";
import { type Executions, guarded } from "./executions/executions.ts";
import { EventStream } from "./stream-job.ts";

export const MAX_KEY_LENGTH = 255;
/** 4xx answers that say "not now": not kept, so a retry with the key can go on later. */
const NOT_KEPT = new Set([409, 423, 429]);
/** The headers an answer is replayed with (besides the body's type). */
const KEPT_HEADERS = ["content-type", "location", "preference-applied"];
/** Marks a kept answer that stands for an event stream: the execution in its Location. */
const STREAM_MARK = "x-airlock-idempotent-stream";
/** How often a retry looks again at a key in flight on another gateway. */
const POLL_MS = 250;

export interface IdempotencyDeps {
  state: StateStore;
  executions: Executions;
  instanceId: string;
  /** How long an entry is kept. */
  ttlMs: number;
  warn: (message: string, err: unknown) => void;
}

/** The key, checked: 1-255 visible ASCII characters. */
function keyOf(c: Context): string | undefined {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new AirlockError(
      "invalid_request",
      `the Idempotency-Key header must be 1-${MAX_KEY_LENGTH} visible ASCII characters (got ${key.length})`,
      { details: { field: "Idempotency-Key", maxLength: MAX_KEY_LENGTH } },
    );
  }
  return key;
}

/** What makes two requests the same one: method, path with its query, and the body's bytes. */
async function fingerprint(c: Context): Promise<string> {
  const url = new URL(c.req.url);
  const body = new Uint8Array(await c.req.arrayBuffer());
  return createHash("sha256")
    .update(`${c.req.method}\n${url.pathname}${url.search}\n`)
    .update(body)
    .digest("hex");
}

/** Wakes the retries waiting in this process for a key to settle (others poll). */
class Settled {
  private readonly waiters = new Map<string, Set<() => void>>();

  wait(id: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(id) ?? new Set();
      this.waiters.set(id, set);
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        set.delete(done);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      set.add(done);
    });
  }

  wake(id: string): void {
    for (const done of [...(this.waiters.get(id) ?? [])]) done();
  }
}

export function idempotency(deps: IdempotencyDeps): MiddlewareHandler<AuthEnv> {
  const settled = new Settled();
  const options = { ttlMs: deps.ttlMs, instanceId: deps.instanceId };
  return async (c, next) => {
    if (c.req.method !== "POST" && c.req.method !== "PUT") return next();
    const key = keyOf(c);
    if (key === undefined) return next();
    const tenant = c.get("caller").tenant;
    const print = await fingerprint(c);
    const id = `${tenant}\0${key}`;
    for (;;) {
      const begun = await guarded(() => deps.state.idempotency.begin(tenant, key, print, options));
      if (begun.state === "mismatch") {
        throw new AirlockError(
          "idempotency_key_reused",
          "this Idempotency-Key was used with a different request (method, path or body): use a new key for a new request",
          { details: { field: "Idempotency-Key" } },
        );
      }
      if (begun.state === "done") return answerAgain(c, begun, deps.executions);
      if (begun.state === "new") {
        await next();
        await keep(c, deps, tenant, key, begun.token).finally(() => settled.wake(id));
        return;
      }
      // In flight: the first is still running. Wait for it (the client may give up).
      if (c.req.raw.signal.aborted) {
        throw new JobCancelledError("the client left while its retry waited for the first request");
      }
      await settled.wait(id, POLL_MS, c.req.raw.signal);
    }
  };
}

/** Keeps the answer this request just got (or lets the key go: a 5xx, a "not now"). */
async function keep(
  c: Context<AuthEnv>,
  deps: IdempotencyDeps,
  tenant: string,
  key: string,
  token: string,
): Promise<void> {
  const { idempotency } = deps.state;
  try {
    const streamed = c.get("streamedExecution");
    const status = streamed === undefined ? c.res.status : 200;
    if (status >= 500 || NOT_KEPT.has(status) || status < 200) {
      await idempotency.abandon(tenant, key, token);
      return;
    }
    const answer: StoredAnswer =
      streamed === undefined
        ? {
            status,
            headers: keptHeaders(c.res.headers),
            body: new Uint8Array(await c.res.clone().arrayBuffer()),
          }
        : {
            status,
            headers: { [STREAM_MARK]: streamed, location: `/v1/executions/${streamed}` },
            body: new Uint8Array(),
          };
    const outcome = await idempotency.complete(tenant, key, token, answer);
    if (outcome === "too_large") {
      deps.warn(
        `the answer for Idempotency-Key ${key} is too large to keep; a retry will run`,
        null,
      );
    }
  } catch (err) {
    deps.warn(`keeping the answer for Idempotency-Key ${key} failed; a retry will run`, err);
    await idempotency.abandon(tenant, key, token).catch(() => false);
  }
}

function keptHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = headers.get(name);
    if (value !== null) kept[name] = value;
  }
  return kept;
}

/** The kept answer, as the first request got it; a stream, as its execution's events. */
function answerAgain(c: Context<AuthEnv>, answer: StoredAnswer, executions: Executions): Response {
  const streamed = answer.headers[STREAM_MARK];
  if (streamed !== undefined) {
    const stream = new EventStream(c);
    const { tenant } = c.get("caller");
    const from = { after: 0, follow: true };
    return stream.respond(
      replay(executions, tenant, streamed, from, stream.queue, c.req.raw.signal),
      {
        location: `/v1/executions/${streamed}`,
        "idempotent-replayed": "true",
      },
    );
  }
  const headers = new Headers(answer.headers);
  headers.set("idempotent-replayed", "true");
  const requestId = c.get("requestId");
  if (requestId !== undefined) headers.set("x-request-id", requestId);
  return new Response(answer.body.byteLength === 0 ? null : answer.body, {
    status: answer.status,
    headers,
  });
}
