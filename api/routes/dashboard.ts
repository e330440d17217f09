// GET /dashboard: the operators' page (api/dashboard.html). Served without a
// key because it holds no data: the operator pastes an admin key into it and
// the page calls the admin routes with it, like any other client. Its
// Content-Security-Policy lets only the page's own inline script and style
// (a per-response nonce) run, and lets it talk only to this gateway.
import { readFileSync } from "node:fs";
import { Hono } from "hono";
import { NONCE, type SecureHeadersVariables, secureHeaders } from "hono/secure-headers";

const PAGE = readFileSync(new URL("../dashboard.html", import.meta.url), "utf8");

export function dashboardRoutes() {
  const app = new Hono<{ Variables: SecureHeadersVariables }>();
  app.get(
    "/dashboard",
    secureHeaders({
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
    (c) => {
      const nonce = c.get("secureHeadersNonce") ?? "";
      c.header("Cache-Control", "no-store");
      return c.html(PAGE.replaceAll("{{nonce}}", nonce));
    },
  );
  return app;
}
