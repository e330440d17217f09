// TLS without a proxy: main.ts serves HTTPS with AIRLOCK_TLS_CERT and
// AIRLOCK_TLS_KEY. A throwaway self-signed certificate for 127.0.0.1 is made
// here with openssl; the client trusts exactly that certificate. A bad pair
// stops the server with a sentence naming the variable.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../api/config.ts";
import { type MainProcess, mainRefuses, spawnMain } from "../support/main-process.ts";

let dir: string;
let cert: string;
let key: string;
let otherKey: string;
let caPem: Buffer;
let main: MainProcess | undefined;

function selfSigned(name: string): { cert: string; key: string } {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { cert: certPath, key: keyPath };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "airlock-tls-"));
  const one = selfSigned("gateway");
  cert = one.cert;
  key = one.key;
  otherKey = selfSigned("other").key;
  caPem = readFileSync(cert);
});
afterAll(async () => {
  await main?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** An HTTPS request that trusts only `ca`; resolves with status and body. */
function httpsCall(
  port: number,
  path: string,
  options: { ca?: Buffer; method?: string; body?: unknown; key?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        headers: {
          ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

describe("configuration", () => {
  const base = { AIRLOCK_API_KEYS: "t:tls-test-key-0123456789" };
  it("accepts a matching pair", () => {
    const config = loadConfig({ ...base, AIRLOCK_TLS_CERT: cert, AIRLOCK_TLS_KEY: key });
    expect(config.tls?.cert.toString()).toContain("BEGIN CERTIFICATE");
  });
  it.each([
    [{ AIRLOCK_TLS_CERT: "CERT" }, "AIRLOCK_TLS_CERT is set but AIRLOCK_TLS_KEY is not"],
    [{ AIRLOCK_TLS_KEY: "KEY" }, "AIRLOCK_TLS_KEY is set but AIRLOCK_TLS_CERT is not"],
    [
      { AIRLOCK_TLS_CERT: "MISSING", AIRLOCK_TLS_KEY: "KEY" },
      "AIRLOCK_TLS_CERT=/nonexistent/airlock.crt cannot be read",
    ],
    [{ AIRLOCK_TLS_CERT: "KEY", AIRLOCK_TLS_KEY: "KEY" }, "is not a PEM certificate"],
    [
      { AIRLOCK_TLS_CERT: "CERT", AIRLOCK_TLS_KEY: "CERT" },
      "is not an unencrypted PEM private key",
    ],
    [{ AIRLOCK_TLS_CERT: "CERT", AIRLOCK_TLS_KEY: "OTHER" }, "does not belong to the certificate"],
  ])("refuses %j", (env, message) => {
    const paths: Record<string, string> = {
      CERT: cert,
      KEY: key,
      OTHER: otherKey,
      MISSING: "/nonexistent/airlock.crt",
    };
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, paths[v] ?? v]));
    expect(() => loadConfig({ ...base, ...resolved })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, ...resolved })).toThrow(message);
  });
});

it("main.ts refuses to start on a mismatched pair, naming the variable", async () => {
  const { code, output } = await mainRefuses({ AIRLOCK_TLS_CERT: cert, AIRLOCK_TLS_KEY: otherKey });
  expect(code).toBe(1);
  expect(output).toContain(
    `airlock: AIRLOCK_TLS_KEY=${otherKey} does not belong to the certificate`,
  );
});

it("serves HTTPS with the configured certificate, and only HTTPS", async () => {
  const gw = await spawnMain({
    env: { AIRLOCK_TLS_CERT: cert, AIRLOCK_TLS_KEY: key, AIRLOCK_POOL_MAX: "0" },
    ready: (port) =>
      httpsCall(port, "/healthz", { ca: caPem }).then(
        (r) => r.status === 200,
        () => false,
      ),
  });
  main = gw;
  const exec = await httpsCall(gw.port, "/v1/exec", {
    ca: caPem,
    method: "POST",
    key: gw.key,
    body: { profile: "shell", command: "echo over tls" },
  });
  expect(exec.status).toBe(200);
  expect(JSON.parse(exec.body)).toMatchObject({ status: "ok", stdout: "over tls\n" });
  // A client that does not trust the certificate stops at the handshake.
  await expect(httpsCall(gw.port, "/healthz")).rejects.toThrow(/self[- ]signed/i);
  // Plain HTTP on the same port gets no answer.
  await expect(fetch(`http://127.0.0.1:${gw.port}/healthz`)).rejects.toThrow();
  expect(gw.output()).toContain('"scheme":"https"');
  gw.child.kill("SIGTERM");
  expect(await gw.exited).toBe(0);
  expect(await gw.leftovers()).toEqual({ containers: [], volumes: [] });
});
