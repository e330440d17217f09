// GET /dashboard: the operators' page (api/dashboard.html). Served without a
// key because it holds no data: the operator pastes an admin key into it and
// the page calls the admin routes with it, like any other client. Its
// Content-Security-Policy lets only the page's own inline script and style
// (a per-response nonce) run, and lets it talk only to this gateway.
import { readFileSync } from "node:fs";
import { createRoute } from "@hono/zod-openapi";
import { NONCE, type SecureHeadersVariables, secureHeaders } from "hono/secure-headers";
import { OPEN, raw } from "../openapi.ts";
import { routesApp } from "../validate.ts";

const PAGE = readFileSync(new URL("../dashboard.html", import.meta.url), "utf8");

const dashboard = createRoute({
  method: "get",
  path: "/dashboard",
  summary:
    "The operators' dashboard: a page that logs in with an admin key and polls the admin routes",
  tags: ["operations"],
  security: OPEN,
  middleware: secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: [NONCE],
      styleSrc: [NONCE],
      connectSrc: ["'self'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    // Gateways often listen on plain HTTP on a private address; HSTS is the proxy's call.
    strictTransportSecurity: false,
  }),
  responses: {
    200: {
      description: "HTML",
      content: raw("text/html", "dashboard page (holds no data itself)"),
    },
  },
});

export function dashboardRoutes() {
  const app = routesApp<{ Variables: SecureHeadersVariables }>();
  app.openapi(dashboard, (c) => {
    const nonce = c.get("secureHeadersNonce") ?? "";
    c.header("Cache-Control", "no-store");
    return c.html(PAGE.replaceAll("{{nonce}}", nonce));
  });
  return app;
}
