// GET /v1/profiles: what a caller may run, with default and maximum limits.
import { Hono } from "hono";
import type { LoadedProfile } from "../../core/profile.ts";
import type { AuthEnv } from "../auth.ts";
import { type Access, note } from "../guard.ts";

/** Lists only the profiles the caller's key may use (policies/access/scopes.ts). */
export function profileRoutes(profiles: ReadonlyMap<string, LoadedProfile>, access: Access) {
  const app = new Hono<AuthEnv>();
  app.get("/v1/profiles", (c) => {
    note(c, { op: "profiles.list" });
    const caller = c.get("caller");
    return c.json({
      profiles: [...profiles.values()]
        .filter((p) => access.mayUse(caller, p))
        .map((p) => ({
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
