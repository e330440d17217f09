// GET /openapi.json (generated from api/openapi.ts) and GET /docs (Scalar's
// reference page over it). Both open: they describe the API, they run nothing.
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
import { Scalar } from "@scalar/hono-api-reference";
import { Hono } from "hono";
import { NONCE, type SecureHeadersVariables, secureHeaders } from "hono/secure-headers";
import { buildOpenApi, ROUTES } from "../openapi.ts";

const require = createRequire(import.meta.url);

/** The single-file (UMD) browser build: it loads no chunks of its own, so one route serves it. */
function bundlePath(): string {
  return join(dirname(require.resolve("@scalar/api-reference")), "browser", "standalone.js");
}

const BUNDLE_URL = "/docs/scalar.js";

export function docsRoutes(version: string) {
  const app = new Hono<{ Variables: SecureHeadersVariables }>();
  // Built once: the document depends only on code.
  const document = buildOpenApi(ROUTES, version);
  app.get("/openapi.json", (c) => c.json(document));
  app.get(
    "/docs",
    secureHeaders({
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
    }),
    Scalar((c) => ({
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
    })),
  );
  app.get(BUNDLE_URL, (c) => {
    c.header("Content-Type", "text/javascript; charset=utf-8");
    // The bundle changes only with the installed package, i.e. with the gateway's version.
    c.header("Cache-Control", "public, max-age=86400");
    return c.body(Readable.toWeb(createReadStream(bundlePath())) as ReadableStream);
  });
  return app;
}
