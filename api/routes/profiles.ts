// GET /v1/profiles: what a caller may run, with default and maximum limits.
import { createRoute } from "@hono/zod-openapi";
import { compiles } from "../../core/profile.ts";
import { ProfileList } from "../../core/schemas.ts";
import type { Admission } from "../admission/admit.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, errorResponses, json, V1_ERRORS } from "../openapi.ts";
import { routesApp } from "../validate.ts";

const list = createRoute({
  method: "get",
  path: "/v1/profiles",
  summary: "The profiles a caller may use, with default and maximum limits",
  tags: ["exec"],
  security: BEARER,
  responses: { 200: json(ProfileList, "profiles"), ...errorResponses(V1_ERRORS) },
});

/** Lists only the profiles the caller's key may use (policies/access/scopes.ts). */
export function profileRoutes(admission: Admission) {
  const app = routesApp<AuthEnv>();
  app.openapi(list, async (c) => {
    // Needs no scope: any key may see what it may use, during a stop too.
    const { caller } = await admission.admit(c, { op: "profiles.list", scopes: [] });
    return c.json({
      profiles: admission.usable(caller).map((p) => ({
        name: p.name,
        description: p.description,
        image: p.image,
        runtime: p.runtime,
        network: p.network,
        languages: Object.keys(p.languages),
        defaultLanguage: p.defaultLanguage ?? Object.keys(p.languages)[0] ?? null,
        limits: p.limits,
        ...(compiles(p) ? { compileLimits: p.compileLimits } : {}),
        ...(p.versions === undefined ? {} : { versions: { ...p.versions } }),
      })),
    });
  });
  return app;
}
