// GET /v1/profiles: what a caller may run, with default and maximum limits.
import { Hono } from "hono";
import type { Admission } from "../admission/admit.ts";
import type { AuthEnv } from "../auth.ts";

/** Lists only the profiles the caller's key may use (policies/access/scopes.ts). */
export function profileRoutes(admission: Admission) {
  const app = new Hono<AuthEnv>();
  app.get("/v1/profiles", async (c) => {
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
      })),
    });
  });
  return app;
}
