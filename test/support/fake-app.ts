// A whole app over the fake executor, with metrics as main.ts builds it, for unit
// tests that go through HTTP without Docker (the workspace store is absent: its
// routes are not exercised).
import { pino } from "pino";
import { Registry } from "prom-client";
import { createApp } from "../../api/app.ts";
import { hashKey } from "../../api/config.ts";
import { createMetrics } from "../../api/metrics.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { loadProfiles } from "../../policies/load.ts";
import { FakeExecutor } from "./fake-executor.ts";

export const FAKE_KEY = "key-for-tenant-a-0123456789";

export function fakeApp() {
  const executor = new FakeExecutor();
  const app = createApp({
    executor,
    client: { ping: async () => {}, imagePresent: async () => true } as unknown as ContainerClient,
    profiles: loadProfiles(),
    keys: [{ tenant: "a", hash: hashKey(FAKE_KEY) }],
    maxBodyBytes: 64 * 1024,
    // As in production (main.ts), so /metrics is registered and documented.
    metrics: createMetrics(new Registry()),
    logger: pino({ level: "silent" }),
    workspaces: {
      store: {} as WorkspaceStore,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
  });
  return { app, executor };
}
