// POST /v1/admin/egress/check: what the egress proxy would decide for a
// connection from a job on a named network, without connecting (DESIGN.md,
// "Egress"). A name the network does not pin is decided on the name; its
// address is checked when a job dials it (give `address` to check one).
import { createRoute } from "@hono/zod-openapi";
import { EgressCheckRequest, EgressCheckResult } from "../../core/schemas.ts";
import type { Admission } from "../admission/admit.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, errorResponses, json, V1_ERRORS } from "../openapi.ts";
import { jsonBody, routesApp } from "../validate.ts";

const check = createRoute({
  method: "post",
  path: "/v1/admin/egress/check",
  summary: "Decide a connection on a named network without making it",
  tags: ["admin"],
  security: BEARER,
  middleware: jsonBody,
  request: {
    body: { required: true, content: { "application/json": { schema: EgressCheckRequest } } },
  },
  responses: { 200: json(EgressCheckResult, "the decision and why"), ...errorResponses(V1_ERRORS) },
});

export function egressRoutes(admission: Admission) {
  const app = routesApp<AuthEnv>();
  app.openapi(check, async (c) => {
    await admission.admit(c, { op: "admin.egress.check", scopes: ["admin"] });
    const { network, host, port, address } = c.req.valid("json");
    return c.json(admission.access.egressCheck(network, host, port, address));
  });
  return app;
}
