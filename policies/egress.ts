// Named networks (DESIGN.md, "Egress"): the policy file's `networks` as a zod
// schema, and the pure decision the egress proxy asks for every connection.
// Deny by default; allow by `host`, `*.domain` or CIDR (names on 80 and 443
// unless a port is given); and whatever the allow list says, refuse loopback,
// link-local, multicast, private and reserved ranges and the host's own
// addresses, unless the network names that very address (a CIDR entry or a
// `resolve` pin). The check runs again on the address actually dialled, so a
// name that resolves somewhere internal is refused (no DNS rebinding).
import { BlockList, isIP } from "node:net";
import { z } from "zod";
import type { EgressRules, EgressVerdict, InjectedHeader } from "../core/egress.ts";

export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DEFAULT_PORTS = [80, 443] as const;

type Ports = readonly number[] | "any";
type AllowEntry =
  | { kind: "host"; host: string; ports: Ports; text: string }
  | { kind: "domain"; suffix: string; ports: Ports; text: string }
  | { kind: "cidr"; list: BlockList; base: string; bits: number; ports: Ports; text: string };

/** Parses one `allow` entry, or says what is wrong with it. */
export function parseAllowEntry(text: string): AllowEntry | string {
  const m = /^(?:\[([^\]]+)\]|([^:]+(?::[^:]+)*?))(?::(\d{1,5}))?$/.exec(text.trim());
  let target = m?.[1] ?? m?.[2];
  let portText = m?.[3];
  // A bare IPv6 address or CIDR (no brackets): its colons are not a port.
  if (m?.[1] === undefined && isIP(text.split("/")[0] ?? "") === 6) {
    target = text;
    portText = undefined;
  }
  if (target === undefined) return "is not host, *.domain or CIDR with an optional :port";
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) return `has port ${portText}, not 1-65535`;
  const host = target.toLowerCase();
  const [addr, prefix] = host.split("/");
  const family = isIP(addr ?? "");
  if (family !== 0) {
    const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) {
      return `has prefix /${prefix}, not valid for IPv${family}`;
    }
    const list = new BlockList();
    list.addSubnet(addr as string, bits, family === 4 ? "ipv4" : "ipv6");
    const base = addr as string;
    return { kind: "cidr", list, base, bits, ports: port === undefined ? "any" : [port], text };
  }
  const ports = port === undefined ? DEFAULT_PORTS : [port];
  if (host.startsWith("*.") && HOST_NAME.test(host.slice(2))) {
    return { kind: "domain", suffix: host.slice(1), ports, text };
  }
  if (HOST_NAME.test(host)) return { kind: "host", host, ports, text };
  return "is not host, *.domain or CIDR with an optional :port";
}

const AllowText = z.string().superRefine((text, ctx) => {
  const parsed = parseAllowEntry(text);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: `${text} ${parsed}` });
});

export const EgressNetworkSchema = z.strictObject({
  allow: z.array(AllowText).min(1, "allow at least one host, *.domain or CIDR"),
  /** Pins a name to an address (internal services, tests): it is dialled, and allowed, as named. */
  resolve: z
    .record(
      z.string().regex(HOST_NAME, "must be a host name"),
      z.string().refine((ip) => isIP(ip) !== 0, "must be an IP address"),
    )
    .default({}),
  inject: z
    .array(
      z.strictObject({
        host: z.string().regex(HOST_NAME, "must be a host name"),
        header: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be an HTTP header name"),
        value: z.string().regex(/^env:[A-Za-z_][A-Za-z0-9_]*$/, 'must be "env:VARIABLE"'),
      }),
    )
    .default([]),
});
export type EgressNetworkSchema = z.infer<typeof EgressNetworkSchema>;

export interface CompiledNetwork {
  name: string;
  allow: readonly AllowEntry[];
  resolve: ReadonlyMap<string, string>;
  inject: ReadonlyMap<string, readonly InjectedHeader[]>;
}

/** Compiles one network; a secret named by `inject` must be set in `env` (the gateway's). */
export function compileNetwork(
  name: string,
  net: EgressNetworkSchema,
  env: Readonly<Record<string, string | undefined>>,
): CompiledNetwork {
  const inject = new Map<string, InjectedHeader[]>();
  net.inject.forEach((rule, i) => {
    const variable = rule.value.slice("env:".length);
    const value = env[variable];
    if (value === undefined || value === "") {
      throw new Error(
        `networks.${name}.inject.${i}.value: ${variable} is not set in the gateway's environment`,
      );
    }
    const host = rule.host.toLowerCase();
    inject.set(host, [...(inject.get(host) ?? []), { header: rule.header, value }]);
  });
  return {
    name,
    allow: net.allow.map((text) => parseAllowEntry(text) as AllowEntry),
    resolve: new Map(Object.entries(net.resolve).map(([h, ip]) => [h.toLowerCase(), ip])),
    inject,
  };
}

const ALWAYS_DENIED: readonly [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "unspecified"],
  ["10.0.0.0", 8, "ipv4", "private"],
  ["100.64.0.0", 10, "ipv4", "shared (carrier-grade NAT)"],
  ["127.0.0.0", 8, "ipv4", "loopback"],
  ["169.254.0.0", 16, "ipv4", "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "ipv4", "private"],
  ["192.0.0.0", 24, "ipv4", "reserved"],
  ["192.168.0.0", 16, "ipv4", "private"],
  ["198.18.0.0", 15, "ipv4", "reserved (benchmarking)"],
  ["224.0.0.0", 4, "ipv4", "multicast"],
  ["240.0.0.0", 4, "ipv4", "reserved"],
  ["::", 128, "ipv6", "unspecified"],
  ["::1", 128, "ipv6", "loopback"],
  ["fc00::", 7, "ipv6", "private"],
  ["fe80::", 10, "ipv6", "link-local"],
  ["ff00::", 8, "ipv6", "multicast"],
];
const DENIED_RANGES = ALWAYS_DENIED.map(([addr, bits, family, what]) => {
  const list = new BlockList();
  list.addSubnet(addr, bits, family);
  return { list, bits, family, what };
});

/**
 * Whether a CIDR entry names `address` itself: it holds the address and lies
 * inside the always-denied range the address is in (10.1.0.0/16 names
 * 10.1.2.3; 0.0.0.0/0 names nothing internal).
 */
function cidrNames(entry: AllowEntry, address: string): boolean {
  if (entry.kind !== "cidr" || !inCidr(entry, address)) return false;
  const ip = plainAddress(address);
  const range = DENIED_RANGES.find((r) => r.list.check(ip, isIP(ip) === 6 ? "ipv6" : "ipv4"));
  if (range === undefined) return entry.bits === (isIP(ip) === 6 ? 128 : 32);
  return entry.bits >= range.bits && range.list.check(plainAddress(entry.base), range.family);
}

/** An IPv4-mapped IPv6 address as the IPv4 address it is. */
function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address.toLowerCase();
}

/** Why `address` is never dialled unless a network names it, or undefined. */
export function alwaysDenied(address: string, own: ReadonlySet<string>): string | undefined {
  const ip = plainAddress(address);
  const family = isIP(ip) === 6 ? "ipv6" : "ipv4";
  for (const { list, what } of DENIED_RANGES) {
    if (list.check(ip, family)) return `${what} address ${ip} is always denied`;
  }
  if (own.has(ip)) return `${ip} is the gateway host's own address and always denied`;
  return undefined;
}

function portAllowed(ports: Ports, port: number): boolean {
  return ports === "any" || ports.includes(port);
}

function inCidr(entry: AllowEntry, ip: string): boolean {
  if (entry.kind !== "cidr") return false;
  const plain = plainAddress(ip);
  return entry.list.check(plain, isIP(plain) === 6 ? "ipv6" : "ipv4");
}

function nameMatches(entry: AllowEntry, host: string): boolean {
  if (entry.kind === "host") return entry.host === host;
  if (entry.kind === "domain") return host.endsWith(entry.suffix);
  return isIP(host) !== 0 && inCidr(entry, host);
}

/** One network's verdict on host:port (and the dialled address, when known). */
function checkNetwork(
  net: CompiledNetwork,
  host: string,
  port: number,
  address: string | undefined,
  own: ReadonlySet<string>,
): EgressVerdict {
  const named = net.allow.filter(
    (e) => nameMatches(e, host) || (address !== undefined && inCidr(e, address)),
  );
  const entry = named.find((e) => portAllowed(e.ports, port));
  if (entry === undefined) {
    if (named.length === 0)
      return { decision: "denied", reason: `network ${net.name} does not allow ${host}` };
    const ports = named.flatMap((e) => (e.ports === "any" ? [] : e.ports));
    return {
      decision: "denied",
      reason: `network ${net.name} allows ${host} on port ${[...new Set(ports)].join(", ")}, not ${port}`,
    };
  }
  const allowed = { decision: "allowed" as const, network: net.name };
  if (address === undefined)
    return { ...allowed, reason: `allowed by ${net.name} (${entry.text})` };
  const refusal = alwaysDenied(address, own);
  if (refusal === undefined)
    return { ...allowed, reason: `allowed by ${net.name} (${entry.text})` };
  // The exception: the network names this very address.
  if (net.resolve.get(host) === plainAddress(address)) {
    return { ...allowed, reason: `allowed by ${net.name} (resolve pin ${host} → ${address})` };
  }
  const cidr = net.allow.find((e) => cidrNames(e, address) && portAllowed(e.ports, port));
  if (cidr !== undefined) return { ...allowed, reason: `allowed by ${net.name} (${cidr.text})` };
  return { decision: "denied", reason: refusal };
}

/** The rules of the networks a job was granted and asked for. */
export function egressRules(
  networks: readonly CompiledNetwork[],
  ownAddresses: Iterable<string> = [],
): EgressRules {
  const own = new Set([...ownAddresses].map(plainAddress));
  return {
    networks: networks.map((n) => n.name),
    check(rawHost, port, address) {
      const host = rawHost
        .toLowerCase()
        .replace(/\.$/, "")
        .replace(/^\[(.*)\]$/, "$1");
      const dialled = address ?? (isIP(host) !== 0 ? host : undefined);
      const verdicts = networks.map((n) => checkNetwork(n, host, port, dialled, own));
      const allowed = verdicts.find((v) => v.decision === "allowed");
      if (allowed !== undefined) return allowed;
      // A denial on the address says more than "no network allows the name".
      const specific = verdicts.find((v) => !v.reason.startsWith("network ")) ?? verdicts[0];
      return specific ?? { decision: "denied", reason: "no network was granted" };
    },
    pinned(host) {
      const name = host.toLowerCase().replace(/\.$/, "");
      for (const n of networks) {
        const pin = n.resolve.get(name);
        if (pin !== undefined) return pin;
      }
      return undefined;
    },
    inject(host) {
      const name = host.toLowerCase().replace(/\.$/, "");
      return networks.flatMap((n) => n.inject.get(name) ?? []);
    },
  };
}
