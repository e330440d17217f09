// GET /v1/profiles: what a caller may run, with default and maximum limits.
import { Hono } from "hono";
import type { LoadedProfile } from "../../policies/profile.ts";
import type { AuthEnv } from "../auth.ts";

export function profileRoutes(profiles: ReadonlyMap<string, LoadedProfile>) {
  const app = new Hono<AuthEnv>();
  app.get("/v1/profiles", (c) =>
    c.json({
      profiles: [...profiles.values()].map((p) => ({
        name: p.name,
        description: p.description,
        image: p.image,
        runtime: p.runtime,
        network: p.network,
        languages: Object.keys(p.languages),
        defaultLanguage: p.defaultLanguage ?? Object.keys(p.languages)[0] ?? null,
        limits: p.limits,
      })),
    }),
  );
  return app;
}
