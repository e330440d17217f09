// A filtering proxy in front of the Docker engine's socket, for the
// socket-proxy deployment (deploy/docker-compose.socket-proxy.yml): the
// gateway gets DOCKER_HOST=tcp://socket-proxy:2375 instead of the socket, and
// this process forwards only the calls airlock makes, shaped as airlock makes
// them (deploy/docker-api-rules.ts), answering 403 to anything else.
//
// Hand-written rather than an off-the-shelf socket proxy (tecnativa's
// docker-socket-proxy and the like) because no image can be pulled where
// airlock runs, and because those filter by API section only: they cannot
// refuse a privileged container or a bind mount of / in a create body, which
// is the attack that matters. It runs from the gateway's own image (Node, no
// extra dependency besides zod).
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { z } from "zod";
import {
  ContainerCreateBody,
  checkBody,
  isAirlockContainer,
  isAirlockVolume,
  type Rule,
  ruleFor,
  VolumeCreateBody,
} from "./docker-api-rules.ts";

const Env = z.object({
  SOCKET_PROXY_PORT: z.coerce.number().int().min(1).max(65535).default(2375),
  SOCKET_PROXY_HOST: z.string().min(1).default("0.0.0.0"),
  SOCKET_PROXY_UPSTREAM: z.string().min(1).default("/var/run/docker.sock"),
});

/** Create bodies carry the seccomp profile (tens of KB); anything far past that is refused. */
const MAX_BODY = 4 * 1024 * 1024;

export interface ProxyOptions {
  /** The engine's unix socket. */
  upstream: string;
  log?: (line: string) => void;
}

export function createSocketProxy(options: ProxyOptions) {
  const { upstream } = options;
  const log = options.log ?? (() => {});
  // Ids known to be airlock's: labels never change, so one inspect per container is enough.
  const known = new Set<string>();

  const ask = (method: string, path: string, body?: Buffer) =>
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
      req.end(body);
    });

  /** undefined when allowed, or the status and message to answer with. */
  async function judge(rule: Rule): Promise<{ status: number; message: string } | undefined> {
    switch (rule.kind) {
      case "allow":
      case "create-container":
      case "create-volume":
        return undefined;
      case "deny":
        return { status: 403, message: rule.reason };
      case "container": {
        if (known.has(rule.id)) return undefined;
        const { status, json } = await ask("GET", `/containers/${rule.id}/json`);
        if (status === 404) return { status: 404, message: `No such container: ${rule.id}` };
        const info = json as { Id?: string; Config?: { Labels?: Record<string, string> } };
        if (status !== 200 || !isAirlockContainer(info.Config?.Labels)) {
          return { status: 403, message: `container ${rule.id} is not airlock's` };
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
          return { status: 403, message: `volume ${rule.name} is not airlock's` };
        }
        return undefined;
      }
    }
  }

  function refuse(res: ServerResponse, status: number, message: string) {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ message: `airlock socket proxy: ${message}` }));
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

  async function onRequest(req: IncomingMessage, res: ServerResponse) {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const rule = ruleFor(method, url.split("?")[0] ?? "/");
    const verdict = await judge(rule);
    if (verdict !== undefined) {
      log(`refused ${method} ${url}: ${verdict.message}`);
      refuse(res, verdict.status, verdict.message);
      return;
    }
    let body: Buffer | undefined;
    if (rule.kind === "create-container" || rule.kind === "create-volume") {
      body = await readBody(req);
      const problem =
        body === undefined
          ? `the body is larger than ${MAX_BODY} bytes`
          : checkBody(
              rule.kind === "create-container" ? ContainerCreateBody : VolumeCreateBody,
              body,
            );
      if (problem !== undefined) {
        log(`refused ${method} ${url}: ${problem}`);
        refuse(res, 403, problem);
        return;
      }
    }
    const headers = { ...req.headers };
    if (body !== undefined) {
      delete headers["transfer-encoding"];
      headers["content-length"] = String(body.length);
    }
    const up = request({ socketPath: upstream, method, path: url, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", (err) => {
      if (!res.headersSent) refuse(res, 502, `the engine did not answer: ${err.message}`);
      else res.destroy(err);
    });
    res.on("close", () => up.destroy());
    if (body !== undefined) up.end(body);
    else req.pipe(up);
  }

  /** attach hijacks the connection: check, then splice the client's socket onto the engine's. */
  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const method = req.method ?? "POST";
    const url = req.url ?? "/";
    const rule = ruleFor(method, url.split("?")[0] ?? "/");
    const verdict =
      rule.kind === "container"
        ? await judge(rule)
        : { status: 403, message: "only attach may upgrade" };
    if (verdict !== undefined) {
      log(`refused ${method} ${url}: ${verdict.message}`);
      const body = JSON.stringify({ message: `airlock socket proxy: ${verdict.message}` });
      socket.end(
        `HTTP/1.1 ${verdict.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    if (req.headers["transfer-encoding"] !== undefined) {
      socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    // The attach options are in the query; dockerode repeats them as a JSON
    // body, which the engine never reads: it hijacks the connection at once,
    // and whatever bytes follow the headers become the container's stdin.
    // Sent straight to the engine the body rides in the headers' packet and
    // vanishes in its read buffer; relayed, it could arrive late and reach the
    // job as input. So the relay drops it, and the engine sees no body at all.
    let skip = Number(req.headers["content-length"] ?? 0);
    const engine = connect(upstream);
    engine.on("error", () => socket.destroy());
    socket.on("error", () => engine.destroy());
    const lines = [`${method} ${url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]?.toLowerCase() === "content-length") continue;
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    engine.write(`${lines.join("\r\n")}\r\n\r\n`);
    const forward = (chunk: Buffer) => {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        chunk = chunk.subarray(n);
      }
      if (chunk.length > 0 && !engine.write(chunk)) {
        socket.pause();
        engine.once("drain", () => socket.resume());
      }
    };
    forward(head);
    socket.on("data", forward);
    socket.on("end", () => engine.end());
    engine.pipe(socket);
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
  const server = createSocketProxy({
    upstream: env.SOCKET_PROXY_UPSTREAM,
    log: (line) => process.stderr.write(`socket-proxy: ${line}\n`),
  });
  server.listen(env.SOCKET_PROXY_PORT, env.SOCKET_PROXY_HOST, () => {
    process.stderr.write(
      `socket-proxy: forwarding airlock's Docker API calls from ${env.SOCKET_PROXY_HOST}:${env.SOCKET_PROXY_PORT} to ${env.SOCKET_PROXY_UPSTREAM}\n`,
    );
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
