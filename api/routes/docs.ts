// GET /openapi.json (the document the app's route declarations make, api/openapi.ts)
// and GET /docs (Scalar's reference page over it). Both open: they describe the
// API, they run nothing.
// The page's script is Scalar's standalone bundle from the installed
// @scalar/api-reference package, served by the gateway itself at
// /docs/scalar.js: by default Scalar loads it from a public CDN, which shows a
// blank page on a machine without internet access and runs third-party code
// in an operator's browser. The Content-Security-Policy lets the page load
// scripts, styles, fonts and data from this gateway only.
import { createReadStream } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { createRoute } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { NONCE, type SecureHeadersVariables, secureHeaders } from "hono/secure-headers";
import { OPEN, raw } from "../openapi.ts";
import { routesApp } from "../validate.ts";

const require = createRequire(import.meta.url);

/** The single-file (UMD) browser build: it loads no chunks of its own, so one route serves it. */
function bundlePath(): string {
  return join(dirname(require.resolve("@scalar/api-reference")), "browser", "standalone.js");
}

const BUNDLE_URL = "/docs/scalar.js";

const openapiJson = createRoute({
  method: "get",
  path: "/openapi.json",
  summary: "This document",
  tags: ["operations"],
  security: OPEN,
  responses: {
    200: { description: "OpenAPI 3.1", content: raw("application/json", "the document") },
  },
});

const docs = createRoute({
  method: "get",
  path: "/docs",
  summary: "The API reference for people",
  tags: ["operations"],
  security: OPEN,
  responses: { 200: { description: "HTML", content: raw("text/html", "docs page") } },
});

const bundle = createRoute({
  method: "get",
  path: BUNDLE_URL,
  summary: "The docs page's script (Scalar's browser bundle, from the installed package)",
  tags: ["operations"],
  security: OPEN,
  responses: { 200: { description: "JavaScript", content: raw("text/javascript", "the bundle") } },
});

/** `document` is called once all routes are registered (at the first request). */
export function docsRoutes(document: () => object) {
  const app = routesApp<{ Variables: SecureHeadersVariables }>();
  app.openapi(openapiJson, (c) => c.json(document()));
  const headers = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: [NONCE, "'self'"],
      // Scalar injects its stylesheet and element styles at run time.
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", "data:"],
      fontSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
    },
    referrerPolicy: "no-referrer",
    strictTransportSecurity: false,
  });
  const page = Scalar<{ Variables: SecureHeadersVariables }>((c) => ({
    url: "/openapi.json",
    pageTitle: "airlock API",
    cdn: BUNDLE_URL,
    nonce: c.get("secureHeadersNonce") ?? "",
    // Nothing of Scalar's services: no fonts from their servers, no telemetry,
    // no AI agent, no MCP or SDK generator, no developer tools.
    withDefaultFonts: false,
    telemetry: false,
    hideClientButton: true,
    showDeveloperTools: "never",
    agent: { disabled: true },
    mcp: { disabled: true },
  }));
  app.openapi({ ...docs, middleware: headers }, (c, next) => page(c, next) as Promise<Response>);
  app.openapi(bundle, (c) => {
    c.header("Content-Type", "text/javascript; charset=utf-8");
    // The bundle changes only with the installed package, i.e. with the gateway's version.
    c.header("Cache-Control", "public, max-age=86400");
    return c.body(Readable.toWeb(createReadStream(bundlePath())) as ReadableStream);
  });
  return app;
}
