// Where a job granted a network is plugged in. Each such job gets its own
// Docker network: internal (no route out) and with no address of the host's
// on it (com.docker.network.bridge.inhibit_ipv4), so nothing is reachable from
// it but the one other member, a relay container airlock keeps running. The
// relay only pipes TCP to the gateway's egress proxy (egress-proxy.ts), which
// decides every connection with the job's rules; the job is known to the proxy
// by a credential in its proxy URL. One network per job also keeps sandboxes
// apart from each other (no sibling on the same bridge). A network whose job
// has ended (its container removed) is kept for the next one, up to
// MAX_IDLE_NETWORKS: making one and connecting the relay costs more than the
// container's own start.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { EgressEntry, EgressRules } from "../core/egress.ts";
import type { LoadedProfile } from "../core/profile.ts";
import { LABEL_INSTANCE } from "./container-spec.ts";
import type { ContainerClient, NetworkClient } from "./docker.ts";
import { EgressCa } from "./egress-ca.ts";
import { EgressProxy } from "./egress-proxy.ts";
import {
  CA_BUNDLE_PATH,
  CA_CERT_PATH,
  LABEL_EGRESS,
  RELAY_PORT,
  RELAY_SCRIPT,
  RUNSC_NETWORK_RUNTIME,
} from "./egress-relay.ts";

export { CA_BUNDLE_PATH, CA_CERT_PATH, LABEL_EGRESS } from "./egress-relay.ts";

const MAX_IDLE_NETWORKS = 8;
/** Networks made ahead of demand, so that a job rarely waits for one. */
const SPARE_NETWORKS = 2;

export interface EgressOptions {
  client: ContainerClient;
  networks: NetworkClient;
  proxy: EgressProxy;
  ca: EgressCa;
  instanceId: string;
  /** An image with node in it, for the relay. */
  relayImage: string;
  /** The /16 (as "a.b") per-job /29 networks are cut from. */
  subnetPrefix?: string;
  warn: (message: string, err: unknown) => void;
}

/** What a job's container needs, and what it did, while it holds its network. */
export interface JobNetwork {
  network: string;
  env: Record<string, string>;
  mounts: { Type: "bind"; Source: string; Target: string; ReadOnly: true }[];
  runtime(profile: LoadedProfile): string;
  entries(): EgressEntry[];
  /** Once the job's container is gone (`reusable`: surely gone, so another job may have the network). */
  release(reusable: boolean): Promise<void>;
}

export class Egress {
  private readonly o: EgressOptions;
  private started: Promise<string> | undefined;
  private next = 0;
  /** Networks no job holds, the relay still on them. */
  private readonly idle: { name: string; relayIp: string }[] = [];
  /** Spare networks being made now (close waits for them). */
  private readonly filling = new Set<Promise<void>>();
  private closed = false;

  constructor(options: EgressOptions) {
    this.o = options;
  }

  /** Listens on the default bridge and starts the relay, once. */
  private start(): Promise<string> {
    this.started ??= (async () => {
      const gateway = await this.o.networks.bridgeGateway();
      const address = await this.o.proxy.listen(gateway);
      const id = await this.o.client.create({
        name: `airlock-egress-relay-${this.o.instanceId}`,
        Image: this.o.relayImage,
        Entrypoint: [],
        Cmd: ["node", "-e", RELAY_SCRIPT, gateway, String(address.port)],
        User: "65534:65534",
        Labels: { [LABEL_INSTANCE]: this.o.instanceId, [LABEL_EGRESS]: "relay" },
        HostConfig: {
          NetworkMode: "bridge",
          ReadonlyRootfs: true,
          CapDrop: ["ALL"],
          SecurityOpt: ["no-new-privileges:true"],
          Memory: 128 * 1024 * 1024,
          PidsLimit: 64,
          LogConfig: { Type: "none", Config: {} },
        },
      });
      await this.o.client.start(id);
      return id;
    })();
    this.started.catch(() => {
      this.started = undefined;
    });
    return this.started;
  }

  /** A network for one job under `rules`; release it when the job's container is gone. */
  async lease(jobId: string, rules: EgressRules): Promise<JobNetwork> {
    const relay = await this.start();
    const { name, relayIp } = this.idle.pop() ?? (await this.makeNetwork(relay, jobId));
    this.replenish(relay);
    const lease = this.o.proxy.open(rules);
    const proxyUrl = `http://airlock:${lease.token}@${relayIp}:${RELAY_PORT}`;
    return {
      network: name,
      env: proxyEnv(proxyUrl),
      mounts: [
        { Type: "bind", Source: this.o.ca.bundleFile, Target: CA_BUNDLE_PATH, ReadOnly: true },
        { Type: "bind", Source: this.o.ca.certFile, Target: CA_CERT_PATH, ReadOnly: true },
      ],
      runtime: (profile) => (profile.runtime === "runsc" ? RUNSC_NETWORK_RUNTIME : profile.runtime),
      entries: lease.entries,
      release: async (reusable) => {
        lease.close();
        if (reusable && this.idle.length < MAX_IDLE_NETWORKS) this.idle.push({ name, relayIp });
        else await this.removeNetwork(name, relay);
      },
    };
  }

  /** Tops the idle networks up to SPARE_NETWORKS in the background. */
  private replenish(relay: string): void {
    while (!this.closed && this.idle.length + this.filling.size < SPARE_NETWORKS) {
      const fill: Promise<void> = this.makeNetwork(relay, `spare-${randomUUID()}`)
        .then(async (made) => {
          if (this.closed) await this.removeNetwork(made.name, relay);
          else this.idle.push(made);
        })
        .catch((err: unknown) => this.o.warn("making a spare egress network", err))
        .finally(() => this.filling.delete(fill));
      this.filling.add(fill);
    }
  }

  private async makeNetwork(relay: string, jobId: string) {
    const name = `airlock-egress-${jobId}`;
    const labels = { [LABEL_INSTANCE]: this.o.instanceId, [LABEL_EGRESS]: "network" };
    const relayIp = await this.createNetwork(name, labels);
    try {
      await this.o.networks.connect(name, relay, relayIp);
    } catch (err) {
      await this.o.networks.removeNetwork(name).catch(() => undefined);
      throw err;
    }
    return { name, relayIp };
  }

  private async removeNetwork(name: string, relay: string): Promise<void> {
    await this.o.networks.disconnect(name, relay);
    await this.o.networks.removeNetwork(name);
  }

  /** Removes the idle networks (at shutdown: jobs are done). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.filling);
    const relay = await this.started?.catch(() => undefined);
    for (const { name } of this.idle.splice(0)) {
      await (relay === undefined
        ? this.o.networks.removeNetwork(name)
        : this.removeNetwork(name, relay)
      ).catch((err: unknown) => this.o.warn(`removing network ${name}`, err));
    }
  }

  /** A /29 of its own (returns the relay's address in it); one the engine already has is skipped. */
  private async createNetwork(name: string, labels: Record<string, string>): Promise<string> {
    const prefix = this.o.subnetPrefix ?? "10.213";
    for (let attempt = 0; ; attempt++) {
      const index = this.next++ % 8192;
      const third = Math.floor(index / 32);
      const fourth = (index % 32) * 8;
      try {
        await this.o.networks.createNetwork(name, `${prefix}.${third}.${fourth}/29`, labels);
        return `${prefix}.${third}.${fourth + 2}`;
      } catch (err) {
        if (attempt >= 8 || !/overlap|already/i.test((err as Error).message)) throw err;
      }
    }
  }

  /** Removes this instance's networks and relay left by a run that died. */
  async sweep(): Promise<void> {
    for (const n of await this.o.networks.listNetworks(LABEL_EGRESS)) {
      if (n.labels[LABEL_INSTANCE] === this.o.instanceId) {
        await this.o.networks
          .removeNetwork(n.name)
          .catch((err: unknown) => this.o.warn(`removing network ${n.name}`, err));
      }
    }
  }
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
  const proxy = new EgressProxy({ ca, upstreamCa: o.upstreamCa, onConnection: o.onConnection });
  const egress = new Egress({ ...o, proxy, ca });
  await egress.sweep();
  return {
    egress,
    close: async () => {
      await egress.close();
      await proxy.close();
    },
  };
}
