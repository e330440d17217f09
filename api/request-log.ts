// Structured logs with the request id on every line. Each request gets a pino
// child logger bound to its id (hono's requestId middleware sets it; a client
// may send its own X-Request-Id), available to handlers as c.get("log"), and
// one access line when it ends (a streamed job's, when the job ends). The request's async context carries the id as
// well, so lines logged deeper down with the root logger (the executor's
// warnings, a container's removal) carry it too: see requestIdMixin. The audit
// log records the same id, which is how the two are joined.
import { AsyncLocalStorage } from "node:async_hooks";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import { type AuthEnv, whenRequestEnds } from "./auth.ts";
import type { Metrics } from "./metrics.ts";

export type LogEnv = { Variables: { log: Logger } };

/** The request id of the request being served, across awaits. */
export type RequestScope = AsyncLocalStorage<string>;

export function createRequestScope(): RequestScope {
  return new AsyncLocalStorage<string>();
}

/**
 * A pino `mixin` that adds the current request's id to lines logged outside
 * the request's own child logger (which already carries it).
 */
export function requestIdMixin(scope: RequestScope) {
  return (_merge: object, _level: number, logger: Logger): object => {
    const requestId = scope.getStore();
    if (requestId === undefined || "requestId" in logger.bindings()) return {};
    return { requestId };
  };
}

export function requestLog(
  logger: Logger,
  options: { scope?: RequestScope | undefined; metrics?: Metrics | undefined } = {},
): MiddlewareHandler<AuthEnv & LogEnv> {
  return async (c, next) => {
    const requestId = c.get("requestId");
    const log = logger.child({ requestId });
    c.set("log", log);
    const t0 = performance.now();
    try {
      await (options.scope === undefined ? next() : options.scope.run(requestId, next));
    } finally {
      // A streamed job is still running when its handler returns: its line
      // is written when it ends, so durationMs covers the whole stream.
      whenRequestEnds(c, accessLine);
    }
    function accessLine() {
      const status = c.res.status;
      options.metrics?.requests.inc({ method: c.req.method, status: String(status) });
      const caller = c.get("caller") as AuthEnv["Variables"]["caller"] | undefined;
      log.info(
        {
          method: c.req.method,
          path: c.req.path,
          status,
          durationMs: Math.round(performance.now() - t0),
          ...(caller === undefined ? {} : { tenant: caller.tenant, keyId: caller.keyId }),
        },
        "request",
      );
    }
  };
}
