// Two projects: `unit` (no Docker, seconds) and `integration` (a real engine;
// its global setup builds any missing sandbox image first). No retries: a flaky
// container test is a bug to fix, not to hide.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    retry: 0,
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          // Files share one engine (2 cores here): a couple at a time keeps timings honest.
          maxWorkers: 2,
        },
      },
    ],
  },
});
