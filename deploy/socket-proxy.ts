// A filtering proxy in front of the Docker engine's socket, for the
// socket-proxy deployment (deploy/docker-compose.socket-proxy.yml): the
// gateway gets DOCKER_HOST=tcp://socket-proxy:2375 instead of the socket, and
// this process forwards only the calls airlock makes, shaped as airlock makes
// them (deploy/docker-api-rules.ts), answering 403 to anything else. What it
// forwards is what it checked: a JSON body re-serialised from its parsed form,
// a create's query cut down to the container's name, no body at all on calls
// whose body airlock never relies on (an old API version would read a whole
// HostConfig from a start body).
//
// Hand-written rather than an off-the-shelf socket proxy (tecnativa's
// docker-socket-proxy and the like) because no image can be pulled where
// airlock runs, and because those filter by API section only: they cannot
// refuse a privileged container or a bind mount of / in a create body, which
// is the attack that matters. It runs from the gateway's own image (Node, no
// extra dependency besides zod).
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { z } from "zod";
import {
  CA_DIR_PATH,
  CA_VOLUME_LABEL,
  EGRESS_HOLDER,
  EGRESS_NETWORK,
  LABEL_EGRESS,
} from "../executor/egress-relay.ts";
import { relayAttach } from "./attach-relay.ts";
import {
  CONTAINER_NAME,
  ContainerUpdateBody,
  checkBody,
  containerCreateBody,
  egressRoleOf,
  HolderCreateBody,
  holderOf,
  isAirlockContainer,
  isAirlockVolume,
  isMountableVolume,
  type Mount,
  NetworkCreateBody,
  NetworkEndpointBody,
  RelayCreateBody,
  type Rule,
  ruleFor,
  VolumeCreateBody,
} from "./docker-api-rules.ts";
import {
  loadSeccompProfiles,
  SHIPPED_SECCOMP_DIR,
  type ShippedSeccomp,
} from "./seccomp-profiles.ts";

const Env = z.object({
  SOCKET_PROXY_PORT: z.coerce.number().int().min(1).max(65535).default(2375),
  SOCKET_PROXY_HOST: z.string().min(1).default("0.0.0.0"),
  SOCKET_PROXY_UPSTREAM: z.string().min(1).default("/var/run/docker.sock"),
  /** The operator's own seccomp directories (AIRLOCK_PROFILES_DIR/seccomp), comma-separated. */
  SOCKET_PROXY_SECCOMP_DIRS: z
    .string()
    .default("")
    .transform((s) => s.split(",").filter((d) => d !== "")),
});

/** Create bodies carry the seccomp profile (tens of KB); anything far past that is refused. */
const MAX_BODY = 4 * 1024 * 1024;

export interface ProxyOptions {
  /** The engine's unix socket. */
  upstream: string;
  /** The seccomp profiles a container may be created with; by default policies/seccomp/*.json. */
  seccomp?: readonly ShippedSeccomp[];
  log?: (line: string) => void;
}

interface Verdict {
  status: number;
  message: string;
}
/** What goes on to the engine: the path with its query, and the body (or the caller's stream). */
interface Outgoing {
  path: string;
  body: Buffer | "stream";
}

const refused = (message: string): Verdict => ({ status: 403, message });

/** The create's query as the engine reads it: only `name` (dockerode repeats the whole body there). */
function createQuery(query: string, pattern = CONTAINER_NAME): string | Verdict {
  const names = new URLSearchParams(query).getAll("name");
  if (names.length === 0) return "";
  const [name] = names;
  if (names.length > 1 || name === undefined || !pattern.test(name)) {
    return refused(
      `name: the container's name must be one ${pattern === CONTAINER_NAME ? "airlock-<job id>" : "airlock-egress-holder-<id>"}`,
    );
  }
  return `?name=${encodeURIComponent(name)}`;
}

export function createSocketProxy(options: ProxyOptions) {
  const { upstream } = options;
  const log = options.log ?? (() => {});
  const createBody = containerCreateBody(
    options.seccomp ?? loadSeccompProfiles([SHIPPED_SECCOMP_DIR]),
  );
  // Ids known to be airlock's: labels never change, so one inspect per container is enough.
  const known = new Set<string>();

  const ask = (method: string, path: string) =>
    new Promise<{ status: number; json: unknown }>((resolve, reject) => {
      const req = request(
        { socketPath: upstream, method, path, headers: { host: "docker" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown = null;
            try {
              json = JSON.parse(text);
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode ?? 500, json });
          });
        },
      );
      req.on("error", reject);
      req.end();
    });

  /** undefined when the object the call names may be touched, or the answer to give. */
  async function judge(rule: Rule): Promise<Verdict | undefined> {
    switch (rule.kind) {
      case "allow":
      case "create-container":
      case "create-volume":
      case "create-network":
        return undefined;
      case "network": {
        const { status, json } = await ask("GET", `/networks/${encodeURIComponent(rule.name)}`);
        if (status === 404) return { status: 404, message: `network ${rule.name} not found` };
        const labels = (json as { Labels?: Record<string, string> }).Labels;
        if (status !== 200 || !isAirlockContainer(labels)) {
          return refused(`network ${rule.name} is not airlock's`);
        }
        return undefined;
      }
      case "deny":
        return refused(rule.reason);
      case "container": {
        if (known.has(rule.id)) return undefined;
        const { status, json } = await ask("GET", `/containers/${rule.id}/json`);
        if (status === 404) return { status: 404, message: `No such container: ${rule.id}` };
        const info = json as { Id?: string; Config?: { Labels?: Record<string, string> } };
        if (status !== 200 || !isAirlockContainer(info.Config?.Labels)) {
          return refused(`container ${rule.id} is not airlock's`);
        }
        if (known.size > 100_000) known.clear();
        known.add(rule.id);
        if (info.Id !== undefined) known.add(info.Id);
        return undefined;
      }
      case "volume": {
        const { status, json } = await ask("GET", `/volumes/${rule.name}`);
        if (status === 404) return { status: 404, message: `get ${rule.name}: no such volume` };
        if (
          status !== 200 ||
          !isAirlockVolume((json as { Labels?: Record<string, string> }).Labels)
        ) {
          return refused(`volume ${rule.name} is not airlock's`);
        }
        return undefined;
      }
    }
  }

  /**
   * Why a create may not mount this volume, or undefined. An existing volume
   * must be airlock's, local and without options; a missing one is made by the
   * engine from the mount's own options, which the schema holds to airlock's
   * label and the plain local driver.
   */
  async function mountProblem(
    mount: Pick<Mount, "Source" | "VolumeOptions"> & { Target: string },
  ): Promise<string | undefined> {
    const { status, json } = await ask("GET", `/volumes/${encodeURIComponent(mount.Source)}`);
    if (status === 404) {
      return mount.VolumeOptions === undefined
        ? `volume ${mount.Source} does not exist, and this mount would make it without airlock's label`
        : undefined;
    }
    if (status !== 200) return `the engine did not say whose volume ${mount.Source} is (${status})`;
    const volume = json as { Labels?: Record<string, string>; Driver?: string; Options?: object };
    if (mount.Target === CA_DIR_PATH) {
      // Only the egress CA's volume goes there (read-only: the schema says so).
      if (volume.Labels?.[LABEL_EGRESS] !== CA_VOLUME_LABEL)
        return `volume ${mount.Source} is not the egress CA's (${LABEL_EGRESS}=${CA_VOLUME_LABEL})`;
    } else if (!isMountableVolume(volume.Labels)) return `volume ${mount.Source} is not airlock's`;
    if (volume.Driver !== "local" || Object.keys(volume.Options ?? {}).length > 0) {
      return `volume ${mount.Source} is not a plain local volume`;
    }
    return undefined;
  }

  /** Why a sandbox may not join `name`'s network namespace, or undefined: only a holder on an egress network. */
  async function holderProblem(name: string): Promise<string | undefined> {
    const { status, json } = await ask("GET", `/containers/${encodeURIComponent(name)}/json`);
    if (status !== 200) return `container ${name} is not there to join (${status})`;
    const info = json as {
      Config?: { Labels?: Record<string, string> };
      HostConfig?: { NetworkMode?: string };
    };
    const labels = info.Config?.Labels;
    if (!isAirlockContainer(labels) || labels?.[LABEL_EGRESS] !== "holder") {
      return `container ${name} is not an airlock egress holder`;
    }
    if (!EGRESS_NETWORK.test(info.HostConfig?.NetworkMode ?? "")) {
      return `container ${name} is not on an airlock-egress-* network`;
    }
    return undefined;
  }

  async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return undefined;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  /** The request as it goes on to the engine, or why it does not. */
  async function prepare(
    rule: Rule,
    req: IncomingMessage,
    path: string,
    query: string,
  ): Promise<Outgoing | Verdict> {
    const json = (value: unknown) => Buffer.from(JSON.stringify(value));
    if (rule.kind === "container" && rule.body === "tar")
      return { path: path + query, body: "stream" };
    const wanted =
      rule.kind === "create-container" ||
      rule.kind === "create-volume" ||
      rule.kind === "create-network" ||
      (rule.kind === "network" && rule.body === "endpoint") ||
      (rule.kind === "container" && rule.body === "update");
    if (!wanted) {
      // Dropped unread: airlock sends none that the engine needs (dockerode repeats a kill's options there).
      req.resume();
      return { path: path + query, body: Buffer.alloc(0) };
    }
    const raw = await readBody(req);
    if (raw === undefined) return refused(`the body is larger than ${MAX_BODY} bytes`);
    if (rule.kind === "create-network") {
      const checked = checkBody(NetworkCreateBody, raw);
      return checked.problem !== undefined
        ? refused(checked.problem)
        : { path, body: json(checked.value) };
    }
    if (rule.kind === "network") {
      const checked = checkBody(NetworkEndpointBody, raw);
      if (checked.problem !== undefined) return refused(checked.problem);
      // Only airlock's containers (its relay) join or leave an egress network.
      const relay = await judge({ kind: "container", id: checked.value.Container, body: "none" });
      if (relay !== undefined) return relay;
      return { path, body: json(checked.value) };
    }
    const role = rule.kind === "create-container" ? egressRoleOf(raw) : undefined;
    if (role === "relay") {
      const checked = checkBody(RelayCreateBody, raw);
      if (checked.problem !== undefined) return refused(checked.problem);
      const name = createQuery(query);
      return typeof name === "string" ? { path: path + name, body: json(checked.value) } : name;
    }
    if (role === "holder") {
      const checked = checkBody(HolderCreateBody, raw);
      if (checked.problem !== undefined) return refused(checked.problem);
      const name = createQuery(query, EGRESS_HOLDER);
      return typeof name === "string" ? { path: path + name, body: json(checked.value) } : name;
    }
    if (rule.kind !== "create-container") {
      const checked =
        rule.kind === "container"
          ? checkBody(ContainerUpdateBody, raw)
          : checkBody(VolumeCreateBody, raw);
      return checked.problem !== undefined
        ? refused(checked.problem)
        : { path, body: json(checked.value) };
    }
    const checked = checkBody(createBody, raw);
    if (checked.problem !== undefined) return refused(checked.problem);
    const name = createQuery(query);
    if (typeof name !== "string") return name;
    const holder = holderOf(checked.value.HostConfig.NetworkMode);
    if (holder !== undefined) {
      const problem = await holderProblem(holder);
      if (problem !== undefined) return refused(`HostConfig.NetworkMode: ${problem}`);
    }
    for (const mount of checked.value.HostConfig.Mounts) {
      if (mount.Type !== "volume") continue;
      const problem = await mountProblem(mount);
      if (problem !== undefined) return refused(`HostConfig.Mounts: ${problem}`);
    }
    return { path: path + name, body: json(checked.value) };
  }

  function refuse(res: ServerResponse, status: number, message: string) {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ message: `airlock socket proxy: ${message}` }));
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const at = url.indexOf("?");
    const [path, query] = at < 0 ? [url, ""] : [url.slice(0, at), url.slice(at)];
    const rule = ruleFor(method, path);
    const verdict = (await judge(rule)) ?? (await prepare(rule, req, path, query));
    if ("status" in verdict) {
      log(`refused ${method} ${path}: ${verdict.message}`);
      refuse(res, verdict.status, verdict.message);
      return;
    }
    const headers = { ...req.headers };
    if (verdict.body !== "stream") {
      delete headers["transfer-encoding"];
      headers["content-length"] = String(verdict.body.length);
      if (verdict.body.length > 0) headers["content-type"] = "application/json";
    }
    const up = request({ socketPath: upstream, method, path: verdict.path, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", (err) => {
      if (!res.headersSent) refuse(res, 502, `the engine did not answer: ${err.message}`);
      else res.destroy(err);
    });
    res.on("close", () => up.destroy());
    if (verdict.body === "stream") req.pipe(up);
    else up.end(verdict.body);
  }

  /** attach hijacks the connection: check, then let relayAttach splice it onto the engine's. */
  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const method = req.method ?? "POST";
    const url = req.url ?? "/";
    const path = url.split("?")[0] ?? "/";
    const rule = ruleFor(method, path);
    const verdict =
      rule.kind === "container" && path.endsWith("/attach")
        ? await judge(rule)
        : refused("only attach may upgrade");
    if (verdict !== undefined) {
      log(`refused ${method} ${path}: ${verdict.message}`);
      const body = JSON.stringify({ message: `airlock socket proxy: ${verdict.message}` });
      socket.end(
        `HTTP/1.1 ${verdict.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    relayAttach(upstream, req, socket, head);
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      if (!res.headersSent) refuse(res, 502, (err as Error).message);
      else res.destroy();
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  return server;
}

if (import.meta.main) {
  const parsed = Env.safeParse(process.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    process.stderr.write(`socket-proxy: ${issue?.path.join(".")} is invalid: ${issue?.message}\n`);
    process.exit(1);
  }
  const env = parsed.data;
  let seccomp: ShippedSeccomp[];
  try {
    seccomp = loadSeccompProfiles([SHIPPED_SECCOMP_DIR, ...env.SOCKET_PROXY_SECCOMP_DIRS]);
  } catch (err) {
    process.stderr.write(`socket-proxy: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const server = createSocketProxy({
    upstream: env.SOCKET_PROXY_UPSTREAM,
    seccomp,
    log: (line) => process.stderr.write(`socket-proxy: ${line}\n`),
  });
  server.listen(env.SOCKET_PROXY_PORT, env.SOCKET_PROXY_HOST, () => {
    process.stderr.write(
      `socket-proxy: forwarding airlock's Docker API calls from ${env.SOCKET_PROXY_HOST}:${env.SOCKET_PROXY_PORT} to ${env.SOCKET_PROXY_UPSTREAM}; seccomp profiles: ${[...new Set(seccomp.map((p) => p.file))].join(", ")}\n`,
    );
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
