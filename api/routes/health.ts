// Liveness and readiness. /healthz says the process answers; /readyz says jobs
// can run: the engine answers, every profile's image is present, and the
// engine still enforces what the hardening checks require.
import { Hono } from "hono";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { Check } from "../../executor/hardening.ts";

export function healthRoutes(
  client: ContainerClient,
  profiles: ReadonlyMap<string, LoadedProfile>,
  hardening?: () => Promise<Check[]>,
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
      for (const check of hardening === undefined
        ? []
        : await hardening().catch((err: unknown) => [
            { name: "hardening checks", ok: false, detail: (err as Error).message },
          ])) {
        checks[check.name] = check.ok ? "ok" : check.detail;
        if (!check.ok) ready = false;
      }
    }
    return c.json({ status: ready ? "ready" : "not_ready", checks }, ready ? 200 : 503);
  });
  return app;
}
