// GET /openapi.json (generated from api/openapi.ts) and GET /docs (Scalar's
// reference page over it). Both open: they describe the API, they run nothing.
import { Scalar } from "@scalar/hono-api-reference";
import { Hono } from "hono";
import { buildOpenApi, ROUTES } from "../openapi.ts";

export function docsRoutes(version: string) {
  const app = new Hono();
  // Built once: the document depends only on code.
  const document = buildOpenApi(ROUTES, version);
  app.get("/openapi.json", (c) => c.json(document));
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "airlock API" }));
  return app;
}
