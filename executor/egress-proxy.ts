// The egress proxy: the one way out of a sandbox granted a network. Proxy-aware
// clients (pip, npm, curl, git, requests, Node's fetch) send it plain HTTP
// requests and CONNECT tunnels, with the job's own credential in the proxy URL;
// every connection is decided by the job's rules (policies/egress.ts, through
// core/egress.ts) twice: on the name and port, then on the address actually
// dialled, which the proxy resolves itself (a `resolve` pin, else DNS). A
// tunnel is spliced byte for byte, never looked into, except for hosts with
// `inject` rules: those are terminated with airlock's CA (egress-ca.ts) so the
// secret header is added here and never enters the sandbox.
//
// Why not a proxy library: the candidates on npm (proxy, proxy-chain,
// http-mitm-proxy) and Squid each resolve and dial names themselves, so the
// check could not be made on the dialled address (DNS rebinding), and none
// splits tunnels from TLS termination per host with the job's rules. What is
// left here is small: node:http parses the protocol, node:tls terminates TLS,
// and this file only decides, dials, splices and counts.
import { randomBytes } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { request as httpsRequest } from "node:https";
import { type AddressInfo, connect, isIP, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { rootCertificates, TLSSocket } from "node:tls";
import type { EgressEntry, EgressRules } from "../core/egress.ts";
import type { EgressCa } from "./egress-ca.ts";

/** Past this many connections a job's list stops growing (the counts go on in the metrics). */
const MAX_ENTRIES = 1000;
const HOP_HEADERS = ["proxy-authorization", "proxy-connection", "connection", "keep-alive"];

export interface EgressProxyOptions {
  ca: EgressCa;
  /** Extra roots the proxy trusts for upstreams it terminates (tests' own CA). */
  upstreamCa?: string | undefined;
  /** Each connection when it ends: for the metrics. */
  onConnection?: ((entry: EgressEntry) => void) | undefined;
  /** Name → address (DNS by default). */
  resolve?: ((host: string) => Promise<string>) | undefined;
}

interface Session {
  rules: EgressRules;
  entries: EgressEntry[];
  /** The job's open connections: closed with the lease, so none outlives its job. */
  sockets: Set<Duplex>;
}

export interface EgressLease {
  /** The credential the sandbox's proxy URL carries. */
  token: string;
  /** The connections so far. */
  entries(): EgressEntry[];
  close(): void;
}

class Refusal extends Error {}

export class EgressProxy {
  private readonly sessions = new Map<string, Session>();
  private readonly resolver = new Resolver({ timeout: 2000, tries: 2 });
  private hosts: Map<string, string> | undefined;
  private readonly server: Server;
  /** The TLS-terminated side of `inject` hosts: requests arrive here decrypted. */
  private readonly terminated: Server;
  private readonly targets = new WeakMap<
    Duplex,
    { session: Session; host: string; port: number; address: string; entry: EgressEntry }
  >();

  private readonly options: EgressProxyOptions;

  constructor(options: EgressProxyOptions) {
    this.options = options;
    // A fault of one connection (a certificate openssl could not make, say)
    // ends that connection, never the gateway.
    this.server = createServer((req, res) => {
      this.plain(req, res).catch(() => res.destroy());
    });
    this.server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.tunnel(req, socket, head).catch(() => socket.destroy());
    });
    this.terminated = createServer((req, res) => {
      try {
        this.forwardTerminated(req, res);
      } catch {
        res.destroy();
      }
    });
  }

  listen(host: string, port = 0): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Lets the holder of the returned token through under `rules`, until closed. */
  open(rules: EgressRules): EgressLease {
    const token = randomBytes(24).toString("base64url");
    const session: Session = { rules, entries: [], sockets: new Set() };
    this.sessions.set(token, session);
    return {
      token,
      entries: () => session.entries.map((e) => ({ ...e })),
      close: () => {
        this.sessions.delete(token);
        for (const socket of session.sockets) socket.destroy();
      },
    };
  }

  private session(req: IncomingMessage): Session | undefined {
    const auth = req.headers["proxy-authorization"];
    const m = typeof auth === "string" ? /^Basic\s+(\S+)$/i.exec(auth) : null;
    if (m?.[1] === undefined) return undefined;
    const decoded = Buffer.from(m[1], "base64").toString();
    return this.sessions.get(decoded.slice(decoded.indexOf(":") + 1));
  }

  /** Decides, records and resolves one connection; throws Refusal (already recorded) when denied. */
  private async admit(session: Session, host: string, port: number) {
    const entry: EgressEntry = { host, port, decision: "denied", bytesOut: 0, bytesIn: 0 };
    if (session.entries.length < MAX_ENTRIES) session.entries.push(entry);
    const refuse = (reason: string) => {
      entry.reason = reason;
      this.options.onConnection?.(entry);
      return new Refusal(reason);
    };
    const byName = session.rules.check(host, port);
    if (byName.decision === "denied") throw refuse(byName.reason);
    let address: string;
    try {
      address = session.rules.pinned(host) ?? (isIP(host) !== 0 ? host : await this.lookup(host));
    } catch (err) {
      throw refuse(`${host} does not resolve (${(err as Error).message})`);
    }
    const dialled = session.rules.check(host, port, address);
    if (dialled.decision === "denied") throw refuse(dialled.reason);
    entry.decision = "allowed";
    if (dialled.network !== undefined) entry.network = dialled.network;
    return { entry, address };
  }

  private track(session: Session, socket: Duplex): void {
    if (session.sockets.has(socket)) return;
    session.sockets.add(socket);
    socket.once("close", () => session.sockets.delete(socket));
  }

  /**
   * /etc/hosts, then DNS through c-ares (node's Resolver), never getaddrinfo:
   * a slow or hostile name server then holds no thread of libuv's pool, which
   * the gateway's file I/O shares, and gives up after a few seconds.
   */
  private async lookup(host: string): Promise<string> {
    if (this.options.resolve !== undefined) return this.options.resolve(host);
    this.hosts ??= readHosts();
    const listed = this.hosts.get(host);
    if (listed !== undefined) return listed;
    const v4 = await this.resolver.resolve4(host).catch(() => [] as string[]);
    const v6 = v4.length > 0 ? [] : await this.resolver.resolve6(host).catch(() => [] as string[]);
    const address = v4[0] ?? v6[0];
    if (address === undefined) throw new Error(`no address for ${host}`);
    return address;
  }

  private finish(entry: EgressEntry, upstream: Socket | undefined): void {
    entry.bytesOut += upstream?.bytesWritten ?? 0;
    entry.bytesIn += upstream?.bytesRead ?? 0;
    this.options.onConnection?.(entry);
  }

  /** CONNECT host:port: a spliced tunnel, or TLS terminated here for a host with `inject`. */
  private async tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on("error", () => client.destroy());
    const session = this.session(req);
    if (session === undefined) return void client.end(PROXY_AUTH_REQUIRED);
    this.track(session, client);
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? "");
    if (m === null) return void client.end(reply(400, "CONNECT needs host:port"));
    const host = (m[1] as string).replace(/^\[(.*)\]$/, "$1").toLowerCase();
    const port = Number(m[2]);
    let admitted: Awaited<ReturnType<EgressProxy["admit"]>>;
    try {
      admitted = await this.admit(session, host, port);
    } catch (err) {
      return void client.end(reply(403, (err as Error).message));
    }
    const { entry, address } = admitted;
    if (session.rules.inject(host).length > 0) {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) client.unshift(head);
      const tls = new TLSSocket(client, {
        isServer: true,
        secureContext: await this.options.ca.contextFor(host),
      });
      tls.on("error", () => tls.destroy());
      this.targets.set(tls, { session, host, port, address, entry });
      tls.on("close", () => this.options.onConnection?.(entry));
      this.terminated.emit("connection", tls);
      return;
    }
    const upstream = connect(port, address);
    upstream.on("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream).pipe(client);
    });
    upstream.on("error", (err) => {
      entry.reason = `upstream: ${err.message}`;
      if (!upstream.connecting) client.destroy();
      else client.end(reply(502, `cannot reach ${host}:${port}: ${err.message}`));
    });
    upstream.on("close", () => {
      client.destroy();
      this.finish(entry, upstream);
    });
    client.on("close", () => upstream.destroy());
  }

  /** A plain-HTTP request in absolute form (http://host/path). */
  private async plain(
    req: IncomingMessage,
    res: import("node:http").ServerResponse,
  ): Promise<void> {
    const session = this.session(req);
    if (session === undefined) {
      res.writeHead(407, { "Proxy-Authenticate": 'Basic realm="airlock"' }).end();
      return;
    }
    this.track(session, req.socket);
    let url: URL;
    try {
      url = new URL(req.url ?? "");
      if (url.protocol !== "http:") throw new Error(url.protocol);
    } catch {
      res.writeHead(400).end("the proxy takes http:// URLs; use CONNECT for https\n");
      return;
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
    const port = Number(url.port || 80);
    try {
      const { entry, address } = await this.admit(session, host, port);
      const headers = outgoingHeaders(req, session.rules.inject(host));
      const out = httpRequest({
        host: address,
        port,
        method: req.method,
        path: url.pathname + url.search,
        headers,
        agent: false,
        setHost: false,
      });
      this.relay(req, res, out, entry, host, port);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      res.writeHead(403, { "Content-Type": "text/plain" }).end(`airlock egress: ${err.message}\n`);
    }
  }

  /** A request that arrived decrypted on a terminated tunnel: forwarded over TLS with the secret added. */
  private forwardTerminated(req: IncomingMessage, res: import("node:http").ServerResponse): void {
    const target = this.targets.get(req.socket);
    if (target === undefined) return void res.writeHead(500).end();
    const { session, host, port, address, entry } = target;
    const headers = outgoingHeaders(req, session.rules.inject(host));
    const out = httpsRequest({
      host: address,
      port,
      servername: isIP(host) === 0 ? host : undefined,
      method: req.method,
      path: req.url,
      headers,
      agent: false,
      setHost: false,
      ...(this.options.upstreamCa === undefined
        ? {}
        : { ca: [...rootsOf(), this.options.upstreamCa] }),
    });
    this.relay(req, res, out, entry, host, port, true);
  }

  private relay(
    req: IncomingMessage,
    res: import("node:http").ServerResponse,
    out: import("node:http").ClientRequest,
    entry: EgressEntry,
    host: string,
    port: number,
    keepEntryOpen = false,
  ): void {
    out.on("response", (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    out.on("error", (err) => {
      entry.reason = `upstream: ${err.message}`;
      if (!res.headersSent)
        res.writeHead(502).end(`airlock egress: cannot reach ${host}:${port}: ${err.message}\n`);
      else res.destroy();
    });
    out.on("close", () => {
      entry.bytesOut += out.socket?.bytesWritten ?? 0;
      entry.bytesIn += out.socket?.bytesRead ?? 0;
      if (!keepEntryOpen) this.options.onConnection?.(entry);
    });
    req.pipe(out);
  }
}

function rootsOf(): string[] {
  return [...rootCertificates];
}

function outgoingHeaders(
  req: IncomingMessage,
  inject: readonly { header: string; value: string }[],
) {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_HEADERS.includes(name)) headers[name] = value;
  }
  for (const { header, value } of inject) headers[header.toLowerCase()] = value;
  return headers;
}

const PROXY_AUTH_REQUIRED =
  'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="airlock"\r\nContent-Length: 0\r\n\r\n';

function reply(status: number, reason: string): string {
  const body = `airlock egress: ${reason}\n`;
  const text = status === 403 ? "Forbidden" : status === 502 ? "Bad Gateway" : "Bad Request";
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** name → first address in /etc/hosts (lower-case names). */
function readHosts(): Map<string, string> {
  const hosts = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync("/etc/hosts", "utf8");
  } catch {
    return hosts;
  }
  for (const line of text.split("\n")) {
    const [address, ...names] = (line.split("#")[0] ?? "").trim().split(/\s+/);
    if (address === undefined || isIP(address) === 0) continue;
    for (const name of names)
      if (!hosts.has(name.toLowerCase())) hosts.set(name.toLowerCase(), address);
  }
  return hosts;
}
