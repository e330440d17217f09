// A stand-in for the Docker engine's socket, for the socket proxy's unit tests:
// a unix-socket HTTP server that records every request that reaches it (method,
// URL, headers, body) and answers as the engine would for the few objects a
// test declares. What matters in those tests is what the proxy lets through,
// and that is exactly what this records. The real engine is behind the proxy
// in test/integration/socket-proxy.test.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeVolume {
  Labels: Record<string, string>;
  Driver?: string;
  Options?: Record<string, string> | null;
}

export interface FakeEngine {
  socketPath: string;
  received: Received[];
  /** Volume name → what an inspect answers; absent names are 404. */
  volumes: Map<string, FakeVolume>;
  /** Container id → labels; absent ids are 404 (attach to one answers 404 and keeps reading). */
  containers: Map<string, Record<string, string>>;
  /** Network name → labels; absent names are 404. */
  networks: Map<string, Record<string, string>>;
  /** Container id → its HostConfig.NetworkMode in an inspect (default none). */
  networkModes: Map<string, string>;
  /** Bytes that reached the engine on an attach connection after it answered 404. */
  afterRefusedAttach: () => Buffer;
  close(): Promise<void>;
}

export async function startFakeEngine(): Promise<FakeEngine> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-fake-engine-"));
  const socketPath = join(dir, "docker.sock");
  const received: Received[] = [];
  const volumes = new Map<string, FakeVolume>();
  const containers = new Map<string, Record<string, string>>();
  const networks = new Map<string, Record<string, string>>();
  const networkModes = new Map<string, string>();
  const late: Buffer[] = [];
  const sockets = new Set<Socket>();

  const answer = (method: string, path: string): [number, unknown] => {
    const volume = /^\/volumes\/([^/]+)$/.exec(path);
    if (method === "GET" && volume !== null) {
      const v = volumes.get(decodeURIComponent(volume[1] as string));
      return v === undefined
        ? [404, { message: "no such volume" }]
        : [200, { Name: volume[1], Driver: "local", Options: null, ...v }];
    }
    const inspect = /^\/containers\/([^/]+)\/json$/.exec(path);
    if (method === "GET" && inspect !== null) {
      const labels = containers.get(inspect[1] as string);
      return labels === undefined
        ? [404, { message: "No such container" }]
        : [
            200,
            {
              Id: inspect[1],
              Config: { Labels: labels },
              HostConfig: { NetworkMode: networkModes.get(inspect[1] as string) ?? "none" },
            },
          ];
    }
    const network = /^\/networks\/([^/]+)$/.exec(path);
    if (method === "GET" && network !== null) {
      const labels = networks.get(decodeURIComponent(network[1] as string));
      return labels === undefined
        ? [404, { message: "network not found" }]
        : [200, { Labels: labels }];
    }
    if (path === "/containers/create") return [201, { Id: "c0ffee", Warnings: [] }];
    if (path === "/volumes/create") return [201, {}];
    return [200, {}];
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "/";
      received.push({
        method: req.method ?? "",
        url,
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const path = (url.split("?")[0] ?? "/").replace(/^\/v\d+\.\d+/, "");
      const [status, json] = answer(req.method ?? "", path);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(json));
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req, socket: Socket, head: Buffer) => {
    received.push({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: head,
    });
    const id = /^(?:\/v\d+\.\d+)?\/containers\/([^/]+)\/attach/.exec(req.url ?? "")?.[1] ?? "";
    if (containers.has(id)) {
      socket.write("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
      socket.pipe(socket);
      return;
    }
    // As the engine does to a malformed attach (a bad query, say): a plain
    // error answer, and the connection stays open for more requests.
    socket.write(
      'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 32\r\n\r\n{"message":"No such container."}',
    );
    late.push(head);
    socket.on("data", (c: Buffer) => late.push(c));
    socket.on("end", () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    received,
    volumes,
    containers,
    networkModes,
    networks,
    afterRefusedAttach: () => Buffer.concat(late),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
