// Liveness and readiness. /healthz says the process answers; /readyz says jobs
// can run: the engine answers and every profile's image is present.
import { Hono } from "hono";
import type { ContainerClient } from "../../executor/docker.ts";
import type { LoadedProfile } from "../../policies/profile.ts";

export function healthRoutes(
  client: ContainerClient,
  profiles: ReadonlyMap<string, LoadedProfile>,
) {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    const checks: Record<string, string> = {};
    let ready = true;
    try {
      await client.ping();
      checks["docker"] = "ok";
    } catch (err) {
      ready = false;
      checks["docker"] = `unreachable: ${(err as Error).message}`;
    }
    if (ready) {
      const images = [...new Set([...profiles.values()].map((p) => p.image))];
      const present = await Promise.all(
        images.map((tag) => client.imagePresent(tag).catch(() => false)),
      );
      images.forEach((tag, i) => {
        checks[`image ${tag}`] = present[i] ? "ok" : "missing";
        if (!present[i]) ready = false;
      });
    }
    return c.json({ status: ready ? "ready" : "not_ready", checks }, ready ? 200 : 503);
  });
  return app;
}
