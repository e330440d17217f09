// The egress proxy (executor/egress-proxy.ts) without Docker: an upstream on
// loopback, named by a resolve pin (the one way a network may name loopback),
// reached with plain HTTP and CONNECT; a job's credential, the decisions on
// name and dialled address, the counts, and TLS terminated for inject hosts.
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EgressEntry } from "../../core/egress.ts";
import { EgressCa } from "../../executor/egress-ca.ts";
import { EgressProxy } from "../../executor/egress-proxy.ts";
import { compileNetwork, egressRules } from "../../policies/egress.ts";

const dir = mkdtempSync(join(tmpdir(), "airlock-egress-unit-"));
const ended: EgressEntry[] = [];
let proxy: EgressProxy;
let proxyPort: number;
let upstreamPort: number;
let ca: EgressCa;
const upstream = createServer((req, res) => {
  res.end(JSON.stringify({ path: req.url, key: req.headers["x-key"] ?? null }));
});

beforeAll(async () => {
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  upstreamPort = (upstream.address() as AddressInfo).port;
  ca = await EgressCa.open(dir);
  proxy = new EgressProxy({ ca, onConnection: (e) => ended.push({ ...e }) });
  proxyPort = (await proxy.listen("127.0.0.1")).port;
});
afterAll(async () => {
  await proxy.close();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const rules = (inject = false) =>
  egressRules([
    compileNetwork(
      "up",
      {
        allow: [`up.test:${upstreamPort}`, "closed.test:1"],
        // Both on loopback: nothing here dials anywhere but this machine.
        resolve: { "up.test": "127.0.0.1", "closed.test": "127.0.0.1" },
        inject: inject ? [{ host: "up.test", header: "X-Key", value: "env:K" }] : [],
      },
      { K: "the-secret" },
    ),
  ]);

/** A plain-HTTP request through the proxy with `token` (none: no credential). */
function get(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const auth =
      token === undefined
        ? {}
        : { "proxy-authorization": `Basic ${Buffer.from(`airlock:${token}`).toString("base64")}` };
    const req = request({ host: "127.0.0.1", port: proxyPort, path: url, headers: auth }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** CONNECT through the proxy; the status line, and the socket when it was let through. */
async function tunnel(target: string, token: string) {
  const socket = connect(proxyPort, "127.0.0.1");
  await once(socket, "connect");
  const auth = Buffer.from(`airlock:${token}`).toString("base64");
  socket.write(
    `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`,
  );
  const [head] = (await once(socket, "data")) as [Buffer];
  return { status: head.toString().split("\r\n")[0] ?? "", socket };
}

describe("the egress proxy", () => {
  it("needs the job's credential, and forgets it when the lease closes", async () => {
    const lease = proxy.open(rules());
    const url = `http://up.test:${upstreamPort}/a`;
    expect((await get(url)).status).toBe(407);
    expect((await get(url, "guess")).status).toBe(407);
    expect(await get(url, lease.token)).toEqual({ status: 200, body: '{"path":"/a","key":null}' });
    lease.close();
    expect((await get(url, lease.token)).status).toBe(407);
  });

  it("decides on the name, then on the dialled address; every attempt is listed", async () => {
    const lease = proxy.open(rules());
    const denied = [
      await get("http://other.test/", lease.token),
      await get(`http://up.test:${upstreamPort + 1}/`, lease.token),
      await get("http://closed.test:1/", lease.token),
      await get(`http://127.0.0.1:${upstreamPort}/`, lease.token),
    ];
    expect(denied.map((r) => r.status)).toEqual(
      [403, 403, 200, 403].map((s, i) => (i === 2 ? 502 : s)),
    );
    expect(lease.entries().map((e) => [e.host, e.decision, e.reason])).toEqual([
      ["other.test", "denied", "network up does not allow other.test"],
      [
        "up.test",
        "denied",
        `network up allows up.test on port ${upstreamPort}, not ${upstreamPort + 1}`,
      ],
      // Pinned, so allowed: nothing listens on port 1, hence the 502.
      ["closed.test", "allowed", expect.stringContaining("upstream:")],
      ["127.0.0.1", "denied", "network up does not allow 127.0.0.1"],
    ]);
    lease.close();
  });

  it("a name that does not resolve is refused and listed (no name server asked here)", async () => {
    const local = new EgressProxy({
      ca,
      resolve: async (host) => {
        throw new Error(`NXDOMAIN ${host}`);
      },
    });
    const port = (await local.listen("127.0.0.1")).port;
    const lease = local.open(
      egressRules([compileNetwork("n", { allow: ["gone.test"], resolve: {}, inject: [] }, {})]),
    );
    const auth = `Basic ${Buffer.from(`airlock:${lease.token}`).toString("base64")}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "http://gone.test/",
          headers: { "proxy-authorization": auth },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(403);
    expect(lease.entries()).toEqual([
      expect.objectContaining({
        host: "gone.test",
        decision: "denied",
        reason: "gone.test does not resolve (NXDOMAIN gone.test)",
      }),
    ]);
    await local.close();
  });

  it("tunnels CONNECT byte for byte and counts both ways", async () => {
    const lease = proxy.open(rules());
    const { status, socket } = await tunnel(`up.test:${upstreamPort}`, lease.token);
    expect(status).toBe("HTTP/1.1 200 Connection Established");
    socket.write("GET /t HTTP/1.1\r\nHost: up.test\r\nConnection: close\r\n\r\n");
    let text = "";
    socket.on("data", (c: Buffer) => (text += c.toString()));
    await once(socket, "close");
    expect(text).toContain('{"path":"/t","key":null}');
    const [entry] = lease.entries();
    expect(entry).toMatchObject({ host: "up.test", decision: "allowed", network: "up" });
    expect(entry?.bytesOut).toBeGreaterThan(40);
    expect(entry?.bytesIn).toBeGreaterThan(entry?.bytesOut ?? 0);
    lease.close();
  });

  it("refuses a CONNECT the rules deny, with the reason", async () => {
    const lease = proxy.open(rules());
    const { status, socket } = await tunnel("other.test:443", lease.token);
    expect(status).toBe("HTTP/1.1 403 Forbidden");
    socket.destroy();
    lease.close();
  });

  it("an inject host: TLS terminated with airlock's CA, the header added on the way out", async () => {
    const plainUpstream = rules(true);
    const lease = proxy.open(plainUpstream);
    // Plain HTTP to an inject host gets the header too (the upstream here speaks HTTP only).
    expect(await get(`http://up.test:${upstreamPort}/p`, lease.token)).toEqual({
      status: 200,
      body: '{"path":"/p","key":"the-secret"}',
    });
    // CONNECT to it is answered by the proxy's own TLS, signed by airlock's CA.
    const { socket } = await tunnel(`up.test:${upstreamPort}`, lease.token);
    const tls = tlsConnect({
      socket,
      servername: "up.test",
      ca: await import("node:fs").then((fs) => fs.readFileSync(ca.certFile)),
    });
    await once(tls, "secureConnect");
    expect(tls.authorized).toBe(true);
    expect(tls.getPeerCertificate().subject.CN).toBe("up.test");
    tls.destroy();
    lease.close();
  });
});
