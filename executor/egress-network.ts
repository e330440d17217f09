// Where a job granted a network is plugged in. Each such job gets its own
// Docker network: internal (no route out) and with no address of the host's
// on it (com.docker.network.bridge.inhibit_ipv4), so nothing is reachable from
// it but the network's own relay, a container that only pipes TCP to the
// gateway's egress proxy (egress-proxy.ts), which decides every connection
// with the job's rules; the job is known to the proxy by a credential in its
// proxy URL. One network (and one relay) per job keeps sandboxes apart.
//
// The job's container does not join the network itself: it shares the network
// namespace of a "holder" (a sleeping container on that network, made with it).
// The engine starts a container on a user-defined network ~300 ms slower than
// one with none (veth, embedded DNS set up in its namespace); joining a
// holder's namespace is faster than either. So a network, its relay and its
// holder are made ahead of demand (SPARE_NETWORKS, refilled in the
// background), handed to one job and removed after it — never reused, never
// shared — and none of it is on the answer's critical path but the proxy lease.
import { randomUUID } from "node:crypto";
import { BlockList, connect, isIPv4 } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { EgressEntry, EgressRules } from "../core/egress.ts";
import type { LoadedProfile } from "../core/profile.ts";
import { LABEL_DEADLINE, LABEL_INSTANCE } from "./container-spec.ts";
import type { ContainerClient, ContainerSpec, NetworkClient } from "./docker.ts";
import { EgressCa } from "./egress-ca.ts";
import { EgressProxy } from "./egress-proxy.ts";
import {
  CA_BUNDLE_PATH,
  CA_CERT_PATH,
  CA_DIR_PATH,
  HOLDER_CMD,
  HOLDER_PREFIX,
  LABEL_EGRESS,
  RELAY_PORT,
  RELAY_SCRIPT,
  RUNSC_NETWORK_RUNTIME,
} from "./egress-relay.ts";

export { CA_BUNDLE_PATH, CA_CERT_PATH, LABEL_EGRESS } from "./egress-relay.ts";

/** Networks (with their holders) made ahead of demand, so that a job rarely waits for one. */
const SPARE_NETWORKS = 2;
/** A spare older than this is replaced, not handed out (its holder's deadline must hold for the job). */
const SPARE_MAX_AGE_MS = 10 * 60_000;
/** How long past its making a holder may be needed, by default: the longest job and then some. */
const DEFAULT_JOB_MAX_MS = 60 * 60_000;
/** How long a new relay may take to listen. */
const RELAY_READY_MS = 10_000;
/** The hardening the relays and the holders share (they run nothing of a job's). */
const SMALL = {
  ReadonlyRootfs: true,
  CapDrop: ["ALL"],
  SecurityOpt: ["no-new-privileges:true"],
  LogConfig: { Type: "none", Config: {} },
};

export interface EgressOptions {
  client: ContainerClient;
  networks: NetworkClient;
  proxy: EgressProxy;
  ca: EgressCa;
  instanceId: string;
  /** An image with node in it, for the relay (and the holders). */
  relayImage: string;
  /** The /16 (as "a.b") per-job /29 networks are cut from. */
  subnetPrefix?: string;
  /** The longest a job may hold a network (its timeouts and the orphan grace): the holders' deadline. */
  jobMaxMs?: number | undefined;
  /** The gateway in a container: the network (it is on) where the relay reaches it; default the engine's bridge. */
  relayNetwork?: string | undefined;
  /** The gateway in a container: the volume with the CA's public certificates (EgressCa.publishTo). */
  caVolume?: string | undefined;
  warn: (message: string, err: unknown) => void;
}

/** What a job's container needs, and what it did, while it holds its network. */
export interface JobNetwork {
  /** The container's NetworkMode: `container:<holder>`, the holder's namespace on the job's network. */
  network: string;
  env: Record<string, string>;
  mounts: EgressMount[];
  runtime(profile: LoadedProfile): string;
  entries(): EgressEntry[];
  /** Once the job's container is gone: removes the holder and the network. */
  release(): Promise<void>;
}

/** The CA, read-only: files of the gateway's host, or a volume of the gateway's own. */
export type EgressMount = {
  Type: "bind" | "volume";
  Source: string;
  Target: string;
  ReadOnly: true;
};

/** A network with its own relay and holder started on it, for one job. */
interface Made {
  name: string;
  holder: string;
  relayIp: string;
  madeAt: number;
  /** The holder's and the relay's ids, once the engine gave them. */
  ids: string[];
}

/** Where the relays reach the proxy: an address of the gateway's, on `network`. */
interface Listening {
  host: string;
  port: number;
  network: string;
}

export class Egress {
  private readonly o: EgressOptions;
  private started: Promise<Listening> | undefined;
  private next = 0;
  /** Spare networks no job has had. */
  private readonly spare: Made[] = [];
  /** Spares being made, and networks being removed (close waits for them). */
  private readonly work = new Set<Promise<void>>();
  private filling = 0;
  private closed = false;

  constructor(options: EgressOptions) {
    this.o = options;
  }

  /** Listens where the relays can reach the proxy, once. */
  private start(): Promise<Listening> {
    this.started ??= (async () => {
      const { relayNetwork } = this.o;
      const host =
        relayNetwork === undefined
          ? await this.o.networks.bridgeGateway()
          : ownAddressIn(relayNetwork, await this.o.networks.subnets(relayNetwork));
      const address = await this.o.proxy.listen(host);
      return { host, port: address.port, network: relayNetwork ?? "bridge" };
    })();
    this.started.catch(() => {
      this.started = undefined;
    });
    return this.started;
  }

  /** A network for one job under `rules`; release it when the job's container is gone. */
  async lease(_jobId: string, rules: EgressRules): Promise<JobNetwork> {
    const at = await this.start();
    const made = this.takeSpare() ?? (await this.make(at));
    // The spares are topped up after the job, not beside its own start (both
    // are the engine's work), unless none is left: a burst then makes its next.
    if (this.spare.length === 0) this.replenish(at);
    const lease = this.o.proxy.open(rules);
    const proxyUrl = `http://airlock:${lease.token}@${made.relayIp}:${RELAY_PORT}`;
    return {
      network: `container:${made.holder}`,
      env: proxyEnv(proxyUrl),
      mounts:
        this.o.caVolume === undefined
          ? [
              {
                Type: "bind",
                Source: this.o.ca.bundleFile,
                Target: CA_BUNDLE_PATH,
                ReadOnly: true,
              },
              { Type: "bind", Source: this.o.ca.certFile, Target: CA_CERT_PATH, ReadOnly: true },
            ]
          : [{ Type: "volume", Source: this.o.caVolume, Target: CA_DIR_PATH, ReadOnly: true }],
      runtime: (profile) => (profile.runtime === "runsc" ? RUNSC_NETWORK_RUNTIME : profile.runtime),
      entries: lease.entries,
      release: async () => {
        lease.close();
        await this.track(this.remove(made));
        this.replenish(at);
      },
    };
  }

  /** The oldest spare still young enough; older ones are removed. */
  private takeSpare(): Made | undefined {
    for (let made = this.spare.shift(); made !== undefined; made = this.spare.shift()) {
      if (Date.now() - made.madeAt <= SPARE_MAX_AGE_MS) return made;
      void this.track(this.remove(made));
    }
    return undefined;
  }

  /** Tops the spares up to SPARE_NETWORKS in the background. */
  private replenish(at: Listening): void {
    while (!this.closed && this.spare.length + this.filling < SPARE_NETWORKS) {
      this.filling++;
      void this.track(
        this.make(at)
          .then(async (made) => {
            if (this.closed) await this.remove(made);
            else this.spare.push(made);
          })
          .catch((err: unknown) => this.o.warn("making a spare egress network", err))
          .finally(() => {
            this.filling--;
          }),
      );
    }
  }

  private track(work: Promise<void>): Promise<void> {
    this.work.add(work);
    return work.finally(() => this.work.delete(work));
  }

  /**
   * A fresh network with a relay and a holder of its own, neither shared with
   * any other job: the relay joins it while the holder starts on it (fixed
   * addresses, no race).
   */
  private async make(at: Listening): Promise<Made> {
    const id = randomUUID();
    const name = `airlock-egress-${id}`;
    const holder = `${HOLDER_PREFIX}${id}`;
    const deadline = String(this.deadline());
    const labels = (kind: string) => ({
      [LABEL_INSTANCE]: this.o.instanceId,
      [LABEL_EGRESS]: kind,
      // Past it, any gateway's reaper may remove them (reap.ts; reapExpired for the network).
      [LABEL_DEADLINE]: deadline,
    });
    const { relayIp, holderIp } = await this.createNetwork(name, labels("network"));
    const made: Made = { name, holder, relayIp, madeAt: Date.now(), ids: [] };
    let relayId: string | undefined;
    const run = async (spec: ContainerSpec, joins?: string) => {
      const cid = await this.o.client.create(spec);
      made.ids.push(cid);
      if (joins !== undefined) {
        relayId = cid;
        await this.o.networks.connect(name, cid, joins);
      }
      await this.o.client.start(cid);
    };
    const relay: ContainerSpec = {
      name: `airlock-egress-relay-${id}`,
      Image: this.o.relayImage,
      Entrypoint: [],
      Cmd: ["node", "-e", RELAY_SCRIPT, at.host, String(at.port)],
      User: "65534:65534",
      Labels: labels("relay"),
      HostConfig: { NetworkMode: at.network, ...SMALL, Memory: 64 * 1024 * 1024, PidsLimit: 32 },
    };
    const held = await Promise.allSettled([
      run(relay, relayIp),
      run(this.holderSpec(name, holder, holderIp, labels("holder"))),
    ]);
    const failed = held.find((r) => r.status === "rejected");
    try {
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      await this.relayListening(relayId as string, at.network);
    } catch (err) {
      await this.remove(made).catch(() => undefined);
      throw err;
    }
    return made;
  }

  /**
   * Waits until the relay's node has started listening (a job's first
   * connection must not find it still starting): the gateway reaches it on
   * the relays' network, and the connection, which carries nothing, is closed.
   */
  private async relayListening(relay: string, network: string): Promise<void> {
    const host = await this.o.networks.addressOn(relay, network);
    if (host === undefined)
      throw new Error(`the egress relay ${relay} has no address on ${network}`);
    const until = Date.now() + RELAY_READY_MS;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const probe = connect({ host, port: RELAY_PORT, timeout: 1000 });
        const done = (listening: boolean) => {
          probe.destroy();
          resolve(listening);
        };
        probe.once("connect", () => done(true));
        probe.once("error", () => done(false));
        probe.once("timeout", () => done(false));
      });
      if (ok) return;
      if (Date.now() > until) throw new Error(`the egress relay ${relay} did not start listening`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Past this, a network made now, its relay and its holder are surely no job's. */
  private deadline(): number {
    return Date.now() + SPARE_MAX_AGE_MS + (this.o.jobMaxMs ?? DEFAULT_JOB_MAX_MS);
  }

  /** A container that only sleeps in the network's namespace, for the job's container to share. */
  private holderSpec(
    network: string,
    name: string,
    ip: string,
    labels: Record<string, string>,
  ): ContainerSpec {
    return {
      name,
      Image: this.o.relayImage,
      Entrypoint: [],
      Cmd: [...HOLDER_CMD],
      User: "65534:65534",
      // The job's container cannot set its own host name in a shared namespace.
      Hostname: "sandbox",
      Labels: labels,
      NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: ip } } } },
      HostConfig: { NetworkMode: network, ...SMALL, Memory: 32 * 1024 * 1024, PidsLimit: 8 },
    };
  }

  /** The holder and the relay (their endpoints go with them), then the network. */
  private async remove(made: Made, alive?: Set<string>): Promise<void> {
    for (const cid of made.ids) {
      if (alive === undefined || alive.has(cid)) await this.o.client.remove(cid);
    }
    await this.o.networks.removeNetwork(made.name);
  }

  /** Removes the spares and waits for removals under way (at shutdown: jobs are done). */
  async close(): Promise<void> {
    this.closed = true;
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
    const spares = this.spare.splice(0);
    if (spares.length === 0) return;
    // The executor's last reap may have removed the holders and relays already.
    const alive = new Set(
      (await this.o.client.listContainers(LABEL_EGRESS).catch(() => [])).map((c) => c.id),
    );
    for (const made of spares) {
      await this.remove(made, alive).catch((err: unknown) =>
        this.o.warn(`removing network ${made.name}`, err),
      );
    }
  }

  /** A /29 of its own (returns the relay's and the holder's addresses in it); one the engine already has is skipped. */
  private async createNetwork(name: string, labels: Record<string, string>) {
    const prefix = this.o.subnetPrefix ?? "10.213";
    for (let attempt = 0; ; attempt++) {
      const index = this.next++ % 8192;
      const third = Math.floor(index / 32);
      const fourth = (index % 32) * 8;
      try {
        await this.o.networks.createNetwork(name, `${prefix}.${third}.${fourth}/29`, labels);
        const at = (n: number) => `${prefix}.${third}.${fourth + n}`;
        return { relayIp: at(2), holderIp: at(3) };
      } catch (err) {
        if (attempt >= 8 || !/overlap|already/i.test((err as Error).message)) throw err;
      }
    }
  }

  /**
   * Removes egress networks past their deadline, any gateway's (the reaper's
   * round, after the containers: their relays and holders carry the same
   * deadline and are gone by then).
   */
  async reapExpired(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const n of await this.o.networks.listNetworks(LABEL_EGRESS)) {
      const deadline = Number(n.labels[LABEL_DEADLINE]);
      if (!Number.isFinite(deadline) || deadline >= now) continue;
      await this.o.networks.removeNetwork(n.name).then(
        () => removed++,
        // Still in use: the next round tries again.
        () => undefined,
      );
    }
    return removed;
  }

  /** Removes this instance's holders, relays and networks left by a run that died. */
  async sweep(): Promise<void> {
    const own = (labels: Record<string, string>) => labels[LABEL_INSTANCE] === this.o.instanceId;
    for (const c of await this.o.client.listContainers(LABEL_EGRESS)) {
      if (own(c.labels)) {
        await this.o.client
          .remove(c.id)
          .catch((err: unknown) => this.o.warn(`removing container ${c.id}`, err));
      }
    }
    for (const n of await this.o.networks.listNetworks(LABEL_EGRESS)) {
      if (own(n.labels)) {
        await this.o.networks
          .removeNetwork(n.name)
          .catch((err: unknown) => this.o.warn(`removing network ${n.name}`, err));
      }
    }
  }
}

/** This gateway's address on `network` (its `subnets`): it must be on it (the gateway in a container). */
function ownAddressIn(network: string, subnets: string[]): string {
  const list = new BlockList();
  for (const subnet of subnets) {
    const [ip, bits] = subnet.split("/");
    if (ip !== undefined && isIPv4(ip)) list.addSubnet(ip, Number(bits), "ipv4");
  }
  const own = Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .find((i) => i.family === "IPv4" && list.check(i.address, "ipv4"));
  if (own === undefined) {
    throw new Error(
      `AIRLOCK_EGRESS_RELAY_NETWORK=${network}: the gateway has no address on it (${subnets.join(", ") || "no subnet"}); attach its container to that network`,
    );
  }
  return own.address;
}

/** The variables that make proxy-aware tools use the proxy and trust the CA. */
function proxyEnv(url: string): Record<string, string> {
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    npm_config_proxy: url,
    npm_config_https_proxy: url,
    NO_PROXY: "localhost,127.0.0.1,::1",
    no_proxy: "localhost,127.0.0.1,::1",
    NODE_USE_ENV_PROXY: "1",
    SSL_CERT_FILE: CA_BUNDLE_PATH,
    REQUESTS_CA_BUNDLE: CA_BUNDLE_PATH,
    CURL_CA_BUNDLE: CA_BUNDLE_PATH,
    GIT_SSL_CAINFO: CA_BUNDLE_PATH,
    PIP_CERT: CA_BUNDLE_PATH,
    NODE_EXTRA_CA_CERTS: CA_CERT_PATH,
  };
}

export interface OpenEgressOptions {
  client: ContainerClient;
  networks: NetworkClient;
  /** The CA is kept in `<dataDir>/egress`. */
  dataDir: string;
  instanceId: string;
  relayImage: string;
  /** The longest a job may hold a network: its holder's deadline (default an hour). */
  jobMaxMs?: number | undefined;
  /** The gateway in a container: the network the relay reaches it on (AIRLOCK_EGRESS_RELAY_NETWORK). */
  relayNetwork?: string | undefined;
  /** The gateway in a container: the CA's volume, and where the gateway mounts it (AIRLOCK_EGRESS_CA_VOLUME). */
  caVolume?: { name: string; path: string } | undefined;
  /** PEM of extra roots for upstreams whose TLS the proxy terminates. */
  upstreamCa?: string | undefined;
  onConnection?: ((entry: EgressEntry) => void) | undefined;
  warn: (message: string, err: unknown) => void;
}

/** The CA, the proxy (listening from the first job with a network on) and the networks' keeper. */
export async function openEgress(
  o: OpenEgressOptions,
): Promise<{ egress: Egress; close(): Promise<void> }> {
  const ca = await EgressCa.open(join(o.dataDir, "egress"));
  if (o.caVolume !== undefined) ca.publishTo(o.caVolume.path);
  const proxy = new EgressProxy({ ca, upstreamCa: o.upstreamCa, onConnection: o.onConnection });
  const egress = new Egress({ ...o, caVolume: o.caVolume?.name, proxy, ca });
  await egress.sweep();
  return {
    egress,
    close: async () => {
      await egress.close();
      await proxy.close();
    },
  };
}
