// Liveness and readiness. /healthz says the process answers; /readyz says jobs
// can run: the engine answers, every profile's image is present, and the
// engine still enforces what the hardening checks require.
import { createRoute } from "@hono/zod-openapi";
import type { LoadedProfile } from "../../core/profile.ts";
import { Health, Readiness } from "../../core/schemas.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { Check } from "../../executor/hardening.ts";
import { json, OPEN } from "../openapi.ts";
import { routesApp } from "../validate.ts";

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  summary: "The process answers",
  tags: ["operations"],
  security: OPEN,
  responses: { 200: json(Health, "up") },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  summary: "Docker reachable, images present, hardening holds",
  tags: ["operations"],
  security: OPEN,
  responses: {
    200: json(Readiness, "ready"),
    503: json(Readiness, "not ready: the failing checks say why"),
  },
});

export function healthRoutes(
  client: ContainerClient,
  profiles: ReadonlyMap<string, LoadedProfile>,
  hardening?: () => Promise<Check[]>,
) {
  const app = routesApp();
  app.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(readyz, async (c) => {
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
    return ready
      ? c.json({ status: "ready" as const, checks }, 200)
      : c.json({ status: "not_ready" as const, checks }, 503);
  });
  return app;
}
