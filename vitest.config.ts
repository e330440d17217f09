// Four projects: `unit` (no Docker, seconds), `integration` (a real engine;
// its global setup builds any missing sandbox image first), `chaos` (engine
// restarts, killed gateways, full disks and cut connections, on a private
// engine of its own) and `disruptive` (restarts the machine's engine, so it
// runs alone, last). No retries: a flaky container test is a bug to fix, not to hide.
import { defineConfig } from "vitest/config";

// The disruptive project stops the Docker daemon under everyone's feet, so it
// exists only when asked for: npm test runs it alone, after the others.
const disruptive = process.env["AIRLOCK_DISRUPTIVE"] === "1";
const DISRUPTIVE = {
  test: {
    name: "disruptive",
    include: ["test/disruptive/**/*.test.ts"],
    environment: "node",
    globalSetup: ["test/integration/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
  },
};

// The chaos project starts a second dockerd (as root) for itself and takes a
// few minutes: only when asked for (npm test does, after integration).
const chaos = process.env["AIRLOCK_CHAOS"] === "1";
const CHAOS = {
  test: {
    name: "chaos",
    include: ["test/chaos/**/*.test.ts"],
    environment: "node",
    globalSetup: ["test/chaos/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One file at a time: a file restarts the engine the others would use.
    maxWorkers: 1,
  },
};

// In CI each run also writes a JSON report, which .ci/run sums into one line.
const ci = process.env["CI"] === "true";

export default defineConfig({
  test: {
    retry: 0,
    ...(ci
      ? {
          reporters: ["default", "json"],
          outputFile: { json: `test/artifacts/vitest-${process.pid}-${Date.now()}.json` },
        }
      : {}),
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
      ...(chaos ? [CHAOS] : []),
      // Stops and restarts the Docker daemon: only when asked for (npm test does, last, alone).
      ...(disruptive ? [DISRUPTIVE] : []),
    ],
  },
});
