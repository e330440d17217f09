// The egress networks' keeper (executor/egress-network.ts) against recording
// fakes of the engine: a job's container shares a fresh holder's namespace,
// each network, relay and holder serve one job and are removed after it, spares are
// made ahead of demand, the CA comes as binds or as the gateway's volume, and
// expired networks are reaped. The proxy and the CA are the real ones (the
// proxy listens on loopback; openssl makes the CA in a temporary directory).
import { mkdtempSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EgressRules } from "../../core/egress.ts";
import type { ContainerClient, ContainerSpec, NetworkClient } from "../../executor/docker.ts";
import { EgressCa } from "../../executor/egress-ca.ts";
import { Egress } from "../../executor/egress-network.ts";
import { EgressProxy } from "../../executor/egress-proxy.ts";

const RULES: EgressRules = {
  networks: ["n"],
  check: () => ({ decision: "denied", reason: "unit" }) as ReturnType<EgressRules["check"]>,
  pinned: () => undefined,
} as unknown as EgressRules;

interface Engine {
  calls: string[];
  specs: ContainerSpec[];
  networks: Map<string, Record<string, string>>;
  containers: Map<string, Record<string, string>>;
}

function fakes(): { engine: Engine; client: ContainerClient; networks: NetworkClient } {
  const engine: Engine = { calls: [], specs: [], networks: new Map(), containers: new Map() };
  let n = 0;
  const client = {
    create: async (spec: ContainerSpec) => {
      const id = `c${n++}`;
      engine.specs.push(spec);
      engine.containers.set(id, (spec.Labels ?? {}) as Record<string, string>);
      engine.calls.push(`create ${spec.name}`);
      return id;
    },
    start: async (id: string) => void engine.calls.push(`start ${id}`),
    remove: async (id: string) => {
      engine.containers.delete(id);
      engine.calls.push(`remove ${id}`);
    },
    listContainers: async () =>
      [...engine.containers].map(([id, labels]) => ({ id, labels: { ...labels } })),
  } as unknown as ContainerClient;
  const networks: NetworkClient = {
    bridgeGateway: async () => "127.0.0.1",
    subnets: async () => ["127.0.0.0/8"],
    // Where the gateway finds a new relay listening (relayListening): a server of the test's.
    addressOn: async () => RELAY_HOST,
    createNetwork: async (name, subnet, labels) => {
      engine.networks.set(name, labels);
      engine.calls.push(`network ${name} ${subnet}`);
    },
    connect: async (_name, container, ip) => void engine.calls.push(`connect ${container} ${ip}`),
    disconnect: async (_name, container) => void engine.calls.push(`disconnect ${container}`),
    removeNetwork: async (name) => {
      engine.networks.delete(name);
      engine.calls.push(`rmnet ${name}`);
    },
    listNetworks: async () =>
      [...engine.networks].map(([name, labels]) => ({ name, labels: { ...labels } })),
  };
  return { engine, client, networks };
}

// A stand-in for the relays' listening socket, on an address of loopback's own.
const RELAY_HOST = "127.77.0.1";
let relayServer: Server;
beforeAll(async () => {
  relayServer = createServer((c) => c.destroy());
  await new Promise<void>((resolve) => relayServer.listen(3128, RELAY_HOST, resolve));
});
afterAll(() => new Promise<void>((resolve) => relayServer.close(() => resolve())));

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

async function keeper(extra: { caVolume?: string; relayNetwork?: string } = {}) {
  const { engine, client, networks } = fakes();
  const ca = await EgressCa.open(mkdtempSync(join(tmpdir(), "airlock-egress-unit-")));
  const proxy = new EgressProxy({ ca });
  const egress = new Egress({
    client,
    networks,
    proxy,
    ca,
    instanceId: "unit",
    relayImage: "airlock/node:1",
    jobMaxMs: 60_000,
    warn: () => {},
    ...extra,
  });
  opened.push(async () => {
    await egress.close();
    await proxy.close();
  });
  return { engine, egress };
}

const holders = (e: Engine) => e.specs.filter((s) => s.Labels?.["airlock.egress"] === "holder");

describe("Egress", () => {
  it("a job shares a fresh holder's namespace; its network and holder are removed after it", async () => {
    const { engine, egress } = await keeper();
    const net = await egress.lease("j1", RULES);
    expect(net.network).toMatch(/^container:airlock-egress-holder-/);
    const holder = holders(engine)[0];
    const name = net.network.slice("container:".length);
    expect(holder).toMatchObject({
      name,
      Cmd: ["sleep", "infinity"],
      Hostname: "sandbox",
      User: "65534:65534",
      HostConfig: { ReadonlyRootfs: true, CapDrop: ["ALL"] },
    });
    const network = holder?.HostConfig?.NetworkMode as string;
    expect(engine.networks.get(network)).toMatchObject({
      airlock: "unit",
      "airlock.egress": "network",
    });
    // The relay and the holder have fixed addresses of the network's /29, the proxy URL the relay's.
    const relayIp = /@([\d.]+):3128$/.exec(net.env["HTTP_PROXY"] ?? "")?.[1];
    const holderIp = holder?.NetworkingConfig?.EndpointsConfig?.[network]?.IPAMConfig?.IPv4Address;
    expect(engine.calls).toContain(`connect c0 ${relayIp}`);
    expect(Number(holderIp?.split(".")[3])).toBe(Number(relayIp?.split(".")[3]) + 1);
    expect(net.mounts.map((m) => m.Type)).toEqual(["bind", "bind"]);
    await net.release();
    expect(engine.networks.has(network)).toBe(false);
    // c0 is this job's relay, c1 its holder; both go with the job, the spares made since stay.
    expect(engine.calls).toEqual(expect.arrayContaining(["remove c0", "remove c1"]));
    expect(engine.containers.has("c0") || engine.containers.has("c1")).toBe(false);
  });

  it("spares are made ahead of demand, each handed to one job only", async () => {
    const { engine, egress } = await keeper();
    const first = await egress.lease("j1", RULES);
    await new Promise((r) => setTimeout(r, 50));
    // The first job's own network, and two spares: each with a relay and a holder of its own.
    expect(holders(engine)).toHaveLength(3);
    expect(engine.specs.filter((s) => s.Labels?.["airlock.egress"] === "relay")).toHaveLength(3);
    const second = await egress.lease("j2", RULES);
    const third = await egress.lease("j3", RULES);
    const used = new Set([first.network, second.network, third.network]);
    expect(used.size).toBe(3);
    await Promise.all([first.release(), second.release(), third.release()]);
  });

  it("the gateway in a container: the CA from its volume, the relay on its network", async () => {
    const { engine, egress } = await keeper({
      caVolume: "airlock-egress-ca-x",
      relayNetwork: "airlock-relay-x",
    });
    const net = await egress.lease("j1", RULES);
    expect(net.mounts).toEqual([
      { Type: "volume", Source: "airlock-egress-ca-x", Target: "/etc/airlock", ReadOnly: true },
    ]);
    const relay = engine.specs.find((s) => s.Labels?.["airlock.egress"] === "relay");
    expect(relay?.HostConfig?.NetworkMode).toBe("airlock-relay-x");
    await net.release();
  });

  it("reaps egress networks past their deadline, any gateway's, and no others", async () => {
    const { engine, egress } = await keeper();
    engine.networks.set("airlock-egress-old", {
      airlock: "other",
      "airlock.egress": "network",
      "airlock.deadline": "1",
    });
    engine.networks.set("airlock-egress-young", {
      airlock: "other",
      "airlock.egress": "network",
      "airlock.deadline": String(Date.now() + 60_000),
    });
    engine.networks.set("airlock-egress-undated", {
      airlock: "other",
      "airlock.egress": "network",
    });
    expect(await egress.reapExpired()).toBe(1);
    expect([...engine.networks.keys()].sort()).toEqual([
      "airlock-egress-undated",
      "airlock-egress-young",
    ]);
  });
});
