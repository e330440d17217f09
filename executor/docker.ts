// Docker behind one small interface (as testcontainers' ContainerClient): the
// executor talks only to ContainerClient, so unit tests use a fake that records
// calls, and the real implementation is the only place that knows dockerode.
import type { Duplex, Readable } from "node:stream";
import Dockerode from "dockerode";
import { translateEngineErrors } from "./engine-errors.ts";

export type ContainerSpec = Dockerode.ContainerCreateOptions;

export interface ExitState {
  exitCode: number;
  oomKilled: boolean;
}

export interface Usage {
  cpuMs: number | null;
  memoryPeakBytes: number | null;
}

export interface LabelledObject {
  id: string;
  labels: Record<string, string>;
}

/** What the engine's archive HEAD reports of a path inside a container. */
export interface PathStat {
  name: string;
  size: number;
  /** Go os.FileMode bits: directory 1<<31, symlink 1<<27, plus permission bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export const MODE_DIR = 2 ** 31;
export const MODE_SYMLINK = 2 ** 27;

export interface ContainerClient {
  ping(): Promise<void>;
  imagePresent(tag: string): Promise<boolean>;
  create(spec: ContainerSpec): Promise<string>;
  /** Extracts a tar stream at `path` inside the container (created or running). */
  putArchive(id: string, path: string, tar: Readable): Promise<void>;
  /** Hijacked stdin/stdout/stderr; output is Docker's multiplexed frame stream. */
  attach(id: string): Promise<Duplex>;
  start(id: string): Promise<void>;
  /** Changes a started container's limits (memory, swap, CPU, pids). */
  update(id: string, settings: Record<string, number>): Promise<void>;
  wait(id: string): Promise<number>;
  inspectExit(id: string): Promise<ExitState>;
  /** One sample of the cgroup counters of a running container. */
  usage(id: string): Promise<Usage>;
  kill(id: string): Promise<void>;
  getArchive(id: string, path: string): Promise<Readable>;
  remove(id: string): Promise<void>;
  createVolume(name: string, labels: Record<string, string>): Promise<void>;
  /** The volume's labels, or undefined when it does not exist. */
  volumeLabels(name: string): Promise<Record<string, string> | undefined>;
  removeVolume(name: string): Promise<void>;
  /** Stat of a path in a (created or running) container, without following a final symlink; undefined if absent. */
  statPath(id: string, path: string): Promise<PathStat | undefined>;
  listContainers(label: string): Promise<LabelledObject[]>;
  listVolumes(label: string): Promise<LabelledObject[]>;
}

/**
 * Engine answers that mean "nothing left to do": gone (404), already stopped
 * (304), a container already being removed or not running (409).
 */
async function ignoreStatus(op: Promise<unknown>, statuses: readonly number[]): Promise<void> {
  try {
    await op;
  } catch (err) {
    const status = (err as { statusCode?: unknown } | null)?.statusCode;
    if (typeof status !== "number" || !statuses.includes(status)) throw err;
  }
}
const CONTAINER_DONE = [404, 409, 304];
// 409 for a volume means "in use": a real failure, never taken for success.
const VOLUME_GONE = [404];

/**
 * The engine named by DOCKER_HOST (or the local socket): dockerode itself for
 * the image builder and the engine checks, and the ContainerClient over it,
 * whose engine failures answer docker_unavailable.
 * Callers above the engine never import dockerode.
 */
export function connectEngine(): { docker: Dockerode; client: ContainerClient } {
  const docker = new Dockerode();
  return { docker, client: translateEngineErrors(new DockerodeClient(docker)) };
}

export class DockerodeClient implements ContainerClient {
  readonly docker: Dockerode;

  constructor(docker: Dockerode = new Dockerode()) {
    this.docker = docker;
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async imagePresent(tag: string): Promise<boolean> {
    try {
      await this.docker.getImage(tag).inspect();
      return true;
    } catch (err) {
      if ((err as { statusCode?: unknown }).statusCode === 404) return false;
      throw err;
    }
  }

  async create(spec: ContainerSpec): Promise<string> {
    const container = await this.docker.createContainer(spec);
    return container.id;
  }

  async putArchive(id: string, path: string, tar: Readable): Promise<void> {
    await this.docker.getContainer(id).putArchive(tar, { path });
  }

  async attach(id: string): Promise<Duplex> {
    const stream = await this.docker.getContainer(id).attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    });
    return stream as Duplex;
  }

  async start(id: string): Promise<void> {
    await this.docker.getContainer(id).start();
  }

  async update(id: string, settings: Record<string, number>): Promise<void> {
    await this.docker.getContainer(id).update(settings);
  }

  async wait(id: string): Promise<number> {
    const result = (await this.docker.getContainer(id).wait()) as { StatusCode: number };
    return result.StatusCode;
  }

  async inspectExit(id: string): Promise<ExitState> {
    const info = await this.docker.getContainer(id).inspect();
    return { exitCode: info.State.ExitCode, oomKilled: info.State.OOMKilled };
  }

  async usage(id: string): Promise<Usage> {
    const stats = await this.docker.getContainer(id).stats({ stream: false, "one-shot": true });
    const cpuNs = stats.cpu_stats?.cpu_usage?.total_usage;
    // cgroup v1 reports max_usage; v2 has no peak here, so current usage is the best sample.
    const peak = stats.memory_stats?.max_usage ?? stats.memory_stats?.usage;
    return {
      cpuMs: typeof cpuNs === "number" && cpuNs > 0 ? Math.round(cpuNs / 1e6) : null,
      memoryPeakBytes: typeof peak === "number" && peak > 0 ? peak : null,
    };
  }

  async kill(id: string): Promise<void> {
    await ignoreStatus(this.docker.getContainer(id).kill({ signal: "SIGKILL" }), CONTAINER_DONE);
  }

  async getArchive(id: string, path: string): Promise<Readable> {
    return (await this.docker.getContainer(id).getArchive({ path })) as Readable;
  }

  async remove(id: string): Promise<void> {
    await ignoreStatus(
      this.docker.getContainer(id).remove({ force: true, v: true }),
      CONTAINER_DONE,
    );
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.docker.createVolume({ Name: name, Labels: labels });
  }

  async volumeLabels(name: string): Promise<Record<string, string> | undefined> {
    try {
      const info = await this.docker.getVolume(name).inspect();
      return info.Labels ?? {};
    } catch (err) {
      if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async statPath(id: string, path: string): Promise<PathStat | undefined> {
    try {
      const res = (await this.docker.getContainer(id).infoArchive({ path })) as {
        headers?: Record<string, string | undefined>;
      };
      const header = res.headers?.["x-docker-container-path-stat"];
      if (header === undefined) throw new Error(`the engine sent no path stat for ${path}`);
      return JSON.parse(Buffer.from(header, "base64").toString("utf8")) as PathStat;
    } catch (err) {
      if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async removeVolume(name: string): Promise<void> {
    await ignoreStatus(this.docker.getVolume(name).remove({ force: true }), VOLUME_GONE);
  }

  async listContainers(label: string): Promise<LabelledObject[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    return list.map((c) => ({ id: c.Id, labels: c.Labels ?? {} }));
  }

  async listVolumes(label: string): Promise<LabelledObject[]> {
    const list = await this.docker.listVolumes({ filters: { label: [label] } });
    return (list.Volumes ?? []).map((v) => ({ id: v.Name, labels: v.Labels ?? {} }));
  }
}

/** The engine's networks, as the egress side needs them (egress-network.ts). */
export interface NetworkClient {
  /** The host's address on the engine's default bridge (docker0). */
  bridgeGateway(): Promise<string>;
  /** The IPv4 subnets of a network (the gateway in a container finds its own address by them). */
  subnets(name: string): Promise<string[]>;
  /** A container's IPv4 address on `network`, if it has one. */
  addressOn(container: string, network: string): Promise<string | undefined>;
  createNetwork(name: string, subnet: string, labels: Record<string, string>): Promise<void>;
  connect(network: string, container: string, ipv4: string): Promise<void>;
  disconnect(network: string, container: string): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  /** Names of the networks carrying `label`, with its value. */
  listNetworks(label: string): Promise<{ name: string; labels: Record<string, string> }[]>;
}

export class DockerodeNetworks implements NetworkClient {
  private readonly docker: Dockerode;

  constructor(docker: Dockerode = new Dockerode()) {
    this.docker = docker;
  }

  async bridgeGateway(): Promise<string> {
    const info = await this.docker.getNetwork("bridge").inspect();
    const gateway = (info as { IPAM?: { Config?: { Gateway?: string }[] } }).IPAM?.Config?.[0]
      ?.Gateway;
    if (gateway === undefined)
      throw new Error("the engine's default bridge has no gateway address");
    return gateway;
  }

  async subnets(name: string): Promise<string[]> {
    const info = await this.docker.getNetwork(name).inspect();
    const config = (info as { IPAM?: { Config?: { Subnet?: string }[] } }).IPAM?.Config ?? [];
    return config.flatMap((c) => (c.Subnet === undefined ? [] : [c.Subnet]));
  }

  async addressOn(container: string, network: string): Promise<string | undefined> {
    const info = await this.docker.getContainer(container).inspect();
    const address = info.NetworkSettings?.Networks?.[network]?.IPAddress;
    return address === undefined || address === "" ? undefined : address;
  }

  async createNetwork(name: string, subnet: string, labels: Record<string, string>) {
    await this.docker.createNetwork({
      Name: name,
      Driver: "bridge",
      // No route out, and no address of the host on it (so no service of the
      // host's is reachable from it): only the relay, and through it the proxy.
      Internal: true,
      CheckDuplicate: true,
      IPAM: { Driver: "default", Config: [{ Subnet: subnet }] },
      Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
      Labels: labels,
    });
  }

  async connect(network: string, container: string, ipv4: string) {
    await this.docker
      .getNetwork(network)
      .connect({ Container: container, EndpointConfig: { IPAMConfig: { IPv4Address: ipv4 } } });
  }

  async disconnect(network: string, container: string) {
    await ignoreStatus(
      this.docker.getNetwork(network).disconnect({ Container: container, Force: true }),
      [404],
    );
  }

  async removeNetwork(name: string) {
    await ignoreStatus(this.docker.getNetwork(name).remove(), [404]);
  }

  async listNetworks(label: string) {
    const list = await this.docker.listNetworks({ filters: { label: [label] } });
    return list.map((n) => ({ name: n.Name, labels: n.Labels ?? {} }));
  }
}
