// GET /metrics: Prometheus' text format, from the registry of api/metrics.ts.
// Any valid key may read it, whatever its scopes (README, Metrics), unless the
// operator made it public for a scraper on a private network.
import { createRoute } from "@hono/zod-openapi";
import type { Metrics } from "../metrics.ts";
import { BEARER, errorResponses, OPEN, raw } from "../openapi.ts";
import { routesApp } from "../validate.ts";

export function metricsRoutes(metrics: Metrics, isPublic: boolean) {
  const app = routesApp();
  const route = createRoute({
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics: jobs, queue, containers, request and error counts",
    tags: ["operations"],
    security: isPublic ? OPEN : BEARER,
    responses: {
      200: {
        description: "the Prometheus text exposition format",
        content: raw("text/plain", "metrics"),
      },
      ...errorResponses(isPublic ? [500] : [401, 500]),
    },
  });
  app.openapi(route, async (c) =>
    c.body(await metrics.registry.metrics(), 200, {
      "content-type": metrics.registry.contentType,
    }),
  );
  return app;
}
