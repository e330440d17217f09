// What keeps the gateway's modules from costing memory it never uses. It defers
// dockerode's BuildKit (gRPC) and ssh modules and prom-client's OpenTelemetry
// API: they must not load with their packages, and must still load, whole, on
// first use. Each case runs in a fresh node process, so the module cache
// starts empty.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

function run(script: string): string {
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: root,
    encoding: "utf8",
  }).trim();
}

const prelude = `
  await import(${JSON.stringify(join(root, "lazy-modules.ts"))});
  const { createRequire } = await import("node:module");
  const req = createRequire(${JSON.stringify(join(root, "package.json"))});
`;

describe("deferred modules", () => {
  it("dockerode loads without gRPC or ssh2, prom-client's default metrics without OpenTelemetry", () => {
    const out = run(`${prelude}
      await import("dockerode");
      const { collectDefaultMetrics, Registry } = await import("prom-client");
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      await registry.metrics();
      const names = Object.keys(req.cache);
      console.log(JSON.stringify({
        grpcFiles: names.filter((k) => k.includes("/@grpc/grpc-js/") && !k.endsWith("build/src/index.js")).length,
        ssh2: names.some((k) => k.includes("/node_modules/ssh2/")),
        // One bundled file: still the stand-in (a function; the real module exports an object).
        otel: typeof req.cache[createRequire(req.resolve("prom-client")).resolve("@opentelemetry/api")]?.exports,
      }));`);
    expect(JSON.parse(out)).toEqual({ grpcFiles: 0, ssh2: false, otel: "function" });
  });

  it("the real modules load on first use", () => {
    const out = run(`${prelude}
      await import("dockerode");
      const sessionRequire = createRequire(req.resolve("dockerode/lib/session.js"));
      const grpc = sessionRequire("@grpc/grpc-js");
      const modemRequire = createRequire(req.resolve("docker-modem/lib/modem.js"));
      const ssh = modemRequire("./ssh");
      const otel = createRequire(req.resolve("prom-client"))("@opentelemetry/api");
      console.log(JSON.stringify({ server: typeof grpc.Server, ssh: typeof ssh, span: typeof otel.trace.getSpan }));`);
    expect(JSON.parse(out)).toEqual({ server: "function", ssh: "function", span: "function" });
  });
});

// compile-cache.ts fills Node's compile cache so the gateway never loads the
// type stripper (~20 MB resident for the life of the process).
describe("the compile cache", () => {
  it("once filled, the gateway's modules load without Node's type stripper", () => {
    const cache = mkdtempSync(join(tmpdir(), "airlock-compile-cache-"));
    try {
      const env = { ...process.env, NODE_COMPILE_CACHE: cache };
      const strips = () =>
        JSON.parse(
          execFileSync(
            process.execPath,
            [
              "--input-type=module",
              "-e",
              `await import(${JSON.stringify(join(root, "main.ts"))});
               await import(${JSON.stringify(join(root, "api/mcp/server.ts"))});
               console.log(process.moduleLoadList.some((m) => m.includes("amaro")));`,
            ],
            { cwd: root, encoding: "utf8", env },
          ),
        ) as boolean;
      expect(strips()).toBe(true);
      execFileSync(process.execPath, ["compile-cache.ts"], { cwd: root, env });
      expect(strips()).toBe(false);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
    // Three Node processes that each load the whole gateway: seconds on a busy machine.
  }, 30_000);
});
