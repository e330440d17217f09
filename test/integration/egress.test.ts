// Egress through named networks against a real engine (DESIGN.md, "Egress"):
// local upstreams only (test/support/egress-upstream.ts), named with `resolve`
// pins; every denial is against an address of this machine.
import { randomUUID } from "node:crypto";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { startUpstream, type Upstream } from "../support/egress-upstream.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";

const SECRET = `egress-secret-${randomUUID()}`;
const KEY = {
  gated: `gated-${randomUUID()}`,
  net: `net-${randomUUID()}`,
  plain: `plain-${randomUUID()}`,
  admin: `adm-${randomUUID()}`,
};
const suffix = randomUUID().slice(0, 8);
// An address of this host's that no always-denied range covers (eth0 here), if it has one.
const OWN = Object.values(networkInterfaces())
  .flatMap((list) => list ?? [])
  .find(
    (i) =>
      i.family === "IPv4" &&
      !i.internal &&
      !/^(10\.|127\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(
        i.address,
      ),
  )?.address;

let gw: TestGateway;
let up: Upstream;
let bridgeGateway: string;

beforeAll(async () => {
  up = await startUpstream(SECRET, `airlock-egress-upstream-${suffix}`);
  process.env["AIRLOCK_TEST_EGRESS_SECRET"] = SECRET;
  const pins = { "plain.test": up.ip, "secure.test": up.ip, "index.test": up.ip };
  const policy = {
    networks: {
      local: {
        allow: ["plain.test:8080", "secure.test:8443", "index.test:8080", "localhost:8080"],
        resolve: pins,
      },
      keyed: {
        allow: ["secure.test:8443"],
        resolve: pins,
        inject: [
          { host: "secure.test", header: "X-Api-Key", value: "env:AIRLOCK_TEST_EGRESS_SECRET" },
        ],
      },
      metadata: { allow: ["0.0.0.0/0"] },
      // A range holding the host's own address: the range does not name it, so it stays refused.
      ...(OWN === undefined ? {} : { own: { allow: [`${OWN}/31:8080`] } }),
    },
    tenants: {
      [`egress-gated-${suffix}`]: {
        requireApproval: { network: true },
        keys: [{ id: "gated", hash: keyHash(KEY.gated), scopes: ["exec"], networks: ["local"] }],
      },
      [`egress-${suffix}`]: {
        keys: [
          {
            id: "net",
            hash: keyHash(KEY.net),
            scopes: ["exec", "workspaces"],
            networks: ["local", "keyed", ...(OWN === undefined ? [] : ["own"])],
          },
          { id: "plain", hash: keyHash(KEY.plain), scopes: ["exec"] },
          { id: "adm", hash: keyHash(KEY.admin), scopes: ["admin"] },
        ],
      },
    },
  };
  gw = await startGateway({
    policy,
    egress: { upstreamCa: up.caPem },
    metrics: true,
    profilesDir: join(import.meta.dirname, "../../policies/gvisor"),
  });
  const bridge = await new Dockerode().getNetwork("bridge").inspect();
  bridgeGateway = bridge.IPAM?.Config?.[0]?.Gateway ?? "";
});
afterAll(async () => {
  await gw?.close();
  await up?.stop();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  const nets = await new Dockerode().listNetworks({
    filters: { label: [`airlock=${gw.instanceId}`] },
  });
  expect(nets).toEqual([]);
});

async function run(key: string, body: Record<string, unknown>): Promise<ExecResult> {
  const res = await gw.call(key, "POST", "/v1/exec", body);
  const json = (await res.json()) as ExecResult;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
}
const shell = (command: string, networks: string[]) =>
  run(KEY.net, { profile: "shell", command: ["bash", "-c", command], networks });

describe("allowed", () => {
  it("HTTP and an HTTPS tunnel through the proxy, each listed with its bytes", async () => {
    const r = await shell("curl -sS http://plain.test:8080/hi", ["local"]);
    const again = await run(KEY.net, {
      profile: "shell",
      command: [
        "bash",
        "-c",
        `printf '%s\\n' "$CA" > /tmp/ca.pem && curl -sS --cacert /tmp/ca.pem https://secure.test:8443/hi`,
      ],
      env: { CA: up.caPem },
      networks: ["local"],
    });
    expect(r.stdout).toBe("hello from upstream\n");
    expect(again.stdout).toBe("hello from upstream\n");
    expect(again.egress).toEqual([
      expect.objectContaining({
        host: "secure.test",
        port: 8443,
        decision: "allowed",
        network: "local",
      }),
    ]);
    const entry = again.egress?.[0];
    expect(entry?.bytesOut).toBeGreaterThan(100);
    expect(entry?.bytesIn).toBeGreaterThan(100);
    expect(r.egress?.[0]).toMatchObject({ host: "plain.test", port: 8080, decision: "allowed" });
  });

  it("pip installs a wheel from a local index through the proxy", async () => {
    const r = await run(KEY.net, {
      profile: "python",
      command: [
        "bash",
        "-c",
        "python3 -m venv /tmp/v && /tmp/v/bin/python -m pip install -q --no-cache-dir --disable-pip-version-check " +
          "--trusted-host index.test --index-url http://index.test:8080/simple/ egress-demo && " +
          "/tmp/v/bin/python -c 'import egress_demo; print(egress_demo.VALUE)'",
      ],
      networks: ["local"],
      limits: { timeoutMs: 60_000 },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("installed through the proxy\n");
    expect(r.egress?.every((e) => e.host === "index.test" && e.decision === "allowed")).toBe(true);
  });
});

describe("workspaces, SSE and the audit line", () => {
  it("a workspace made with networks gives them to its jobs; one not granted is 403", async () => {
    const refused = await gw.call(KEY.plain, "POST", "/v1/workspaces", { networks: ["local"] });
    expect(refused.status).toBe(403);
    const res = await gw.call(KEY.net, "POST", "/v1/workspaces", {
      profile: "shell",
      networks: ["local"],
    });
    expect(res.status).toBe(201);
    const ws = (await res.json()) as { id: string; networks?: string[] };
    expect(ws.networks).toEqual(["local"]);
    try {
      const exec = await gw.call(KEY.net, "POST", `/v1/workspaces/${ws.id}/exec`, {
        command: ["bash", "-c", "curl -sS http://plain.test:8080/ws > got.txt; cat got.txt"],
        // Not the 10 s default: on a loaded CI machine this job once ran out of it.
        limits: { timeoutMs: 60_000 },
      });
      const r = (await exec.json()) as ExecResult;
      expect(r.stdout).toBe("hello from upstream\n");
      expect(r.egress?.[0]).toMatchObject({ host: "plain.test", decision: "allowed" });
      const audit = await gw.access.deps.audit.query({ op: "workspace.exec" });
      expect(audit[0]?.egress).toMatchObject({ allowed: 1, denied: 0 });
      expect(audit[0]?.egress?.bytesIn).toBeGreaterThan(0);
    } finally {
      await gw.call(KEY.net, "DELETE", `/v1/workspaces/${ws.id}`);
    }
  });

  it("the SSE result event carries the egress list", async () => {
    const res = await gw.call(
      KEY.net,
      "POST",
      "/v1/exec",
      {
        profile: "shell",
        command: ["curl", "-sS", "http://plain.test:8080/sse"],
        networks: ["local"],
      },
      { accept: "text/event-stream" },
    );
    const text = await res.text();
    const data = /event: result\ndata: (.*)\n/.exec(text)?.[1] ?? "{}";
    const result = JSON.parse(data) as ExecResult;
    expect(result.egress).toEqual([
      expect.objectContaining({ host: "plain.test", port: 8080, decision: "allowed" }),
    ]);
  });
});

describe("approval", () => {
  it("requireApproval.network holds a job that asks for a network; approved, it runs with it", async () => {
    const res = await gw.call(KEY.gated, "POST", "/v1/exec", {
      profile: "shell",
      command: ["curl", "-sS", "http://plain.test:8080/held"],
      networks: ["local"],
    });
    expect(res.status).toBe(202);
    const { approvalId, reasons } = (await res.json()) as { approvalId: string; reasons: string[] };
    expect(reasons).toEqual(["network"]);
    const waiting = gw.call(KEY.gated, "GET", `/v1/approvals/${approvalId}?wait=30`);
    expect((await gw.call(KEY.admin, "POST", `/v1/approvals/${approvalId}/approve`)).status).toBe(
      200,
    );
    const done = (await (await waiting).json()) as { result: ExecResult };
    expect(done.result).toMatchObject({
      status: "ok",
      stdout: "hello from upstream\n",
      egress: [{ host: "plain.test", port: 8080, decision: "allowed", network: "local" }],
    });
  });
});

describe("under gVisor (runsc-net)", () => {
  it("the same proxy, the same list; a direct connection still fails", async () => {
    const r = await run(KEY.net, {
      profile: "shell-gvisor",
      command: [
        "bash",
        "-c",
        `curl -sS http://plain.test:8080/g; curl -s -m 3 --noproxy '*' http://${up.ip}:8080/ || echo direct-failed`,
      ],
      networks: ["local"],
    });
    expect(r.stdout).toBe("hello from upstream\ndirect-failed\n");
    expect(r.egress).toEqual([
      expect.objectContaining({ host: "plain.test", port: 8080, decision: "allowed" }),
    ]);
  });
});

describe("denied", () => {
  it("a port, a name, loopback, the host, a sibling by address, and direct connections", async () => {
    const cmd = [
      "curl -s -m 10 -o /dev/null -w '%{http_code}\\n' http://plain.test:9090/",
      "curl -s -m 10 -o /dev/null -w '%{http_code}\\n' http://elsewhere.test:8080/",
      'curl -s -m 10 -o /dev/null -w \'%{http_code}\\n\' -x "$HTTP_PROXY" --noproxy "" http://localhost:8080/',
      `curl -s -m 10 -o /dev/null -w '%{http_code}\\n' http://${bridgeGateway}:8080/`,
      `curl -s -m 10 -o /dev/null -w '%{http_code}\\n' http://${up.ip}:8080/`,
      `curl -s -m 3 --noproxy '*' http://${up.ip}:8080/ || echo direct-failed`,
      `curl -s -m 3 --noproxy '*' http://${bridgeGateway}:8080/ || echo host-failed`,
    ].join("; ");
    // Seven probes, two of them waiting out a 3 s connect: the default 10 s limit is too
    // tight for a loaded CI machine, and a job cut short would hide which probe hung.
    const r = await run(KEY.net, {
      profile: "shell",
      command: ["bash", "-c", cmd],
      networks: ["local"],
      limits: { timeoutMs: 60_000 },
    });
    expect(r.status, JSON.stringify(r)).toBe("ok");
    expect(r.stdout.split("\n").filter(Boolean)).toEqual([
      "403",
      "403",
      "403",
      "403",
      "403",
      "direct-failed",
      "host-failed",
    ]);
    const reasons = (r.egress ?? []).map((e) => [e.host, e.decision, e.reason]);
    expect(reasons).toEqual([
      ["plain.test", "denied", "network local allows plain.test on port 8080, not 9090"],
      ["elsewhere.test", "denied", "network local does not allow elsewhere.test"],
      ["localhost", "denied", "loopback address 127.0.0.1 is always denied"],
      [bridgeGateway, "denied", `network local does not allow ${bridgeGateway}`],
      [up.ip, "denied", `network local does not allow ${up.ip}`],
    ]);
  });

  it.skipIf(OWN === undefined)("the host's own address, though a CIDR entry holds it", async () => {
    const r = await shell(`curl -s -o /dev/null -w '%{http_code}\\n' http://${OWN}:8080/`, ["own"]);
    expect(r.stdout).toBe("403\n");
    expect(r.egress).toEqual([
      expect.objectContaining({
        host: OWN,
        decision: "denied",
        reason: `${OWN} is the gateway host's own address and always denied`,
      }),
    ]);
  });

  it("a network the key lacks is 403 naming it; none asked, no network at all", async () => {
    const res = await gw.call(KEY.plain, "POST", "/v1/exec", {
      profile: "shell",
      command: ["true"],
      networks: ["local"],
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      error: { code: "forbidden", details: { network: "local" } },
    });
    const r = await run(KEY.net, {
      profile: "shell",
      command: [
        "bash",
        "-c",
        'echo "HTTP_PROXY=$HTTP_PROXY"; curl -s -m 2 http://plain.test:8080/ || echo failed',
      ],
    });
    expect(r.stdout).toBe("HTTP_PROXY=\nfailed\n");
    expect(r.egress).toBeUndefined();
  });
});

describe("inject", () => {
  it("the secret reaches the upstream and is nowhere in the sandbox", async () => {
    const r = await shell(
      "curl -sS https://secure.test:8443/headers; echo; env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n'; " +
        "cat /etc/airlock/* 2>/dev/null; grep -rs . /tmp /workspace 2>/dev/null",
      ["keyed"],
    );
    expect(r.stdout).toContain('{"apiKeyOk": true, "apiKeySent": true}');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.egress).toEqual([
      expect.objectContaining({
        host: "secure.test",
        port: 8443,
        decision: "allowed",
        network: "keyed",
      }),
    ]);
  });
});

describe("clients as they come", () => {
  it("Node's fetch and Python's urllib use the proxy and trust airlock's CA unchanged", async () => {
    const node = await run(KEY.net, {
      profile: "node",
      code: "const r = await fetch('https://secure.test:8443/headers'); console.log(await r.text());",
      networks: ["keyed"],
    });
    expect(node.stdout).toBe('{"apiKeyOk": true, "apiKeySent": true}\n');
    const python = await run(KEY.net, {
      profile: "python",
      code: "import urllib.request\nprint(urllib.request.urlopen('https://secure.test:8443/headers').read().decode())",
      networks: ["keyed"],
    });
    expect(python.stdout).toBe('{"apiKeyOk": true, "apiKeySent": true}\n');
  });
});

describe("operators", () => {
  it("egress/check decides without connecting, metadata and public addresses included", async () => {
    const check = async (body: unknown) => {
      const res = await gw.call(KEY.admin, "POST", "/v1/admin/egress/check", body);
      return { status: res.status, body: await res.json() };
    };
    expect(await check({ network: "metadata", host: "169.254.169.254", port: 80 })).toEqual({
      status: 200,
      body: {
        decision: "denied",
        reason: "link-local (cloud metadata) address 169.254.169.254 is always denied",
      },
    });
    expect((await check({ network: "metadata", host: "8.8.8.8", port: 53 })).body).toMatchObject({
      decision: "allowed",
    });
    expect((await check({ network: "local", host: "plain.test", port: 8080 })).body).toMatchObject({
      decision: "allowed",
    });
    expect((await check({ network: "nope", host: "a", port: 1 })).status).toBe(404);
  });

  it("metrics count connections by network and decision", async () => {
    const metrics = (await gw.metrics?.registry.metrics()) ?? "";
    expect(metrics).toMatch(
      /airlock_egress_connections_total\{network="local",decision="allowed"\} \d+/,
    );
    expect(metrics).toMatch(
      /airlock_egress_connections_total\{network="-",decision="denied"\} \d+/,
    );
    expect(metrics).toMatch(/airlock_egress_bytes_total\{network="local",direction="in"\} \d+/);
  });
});
