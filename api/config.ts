// Configuration from environment variables, validated once at start-up. A bad
// value stops the server with a sentence naming the variable.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { loadTls, TlsError, type TlsFiles } from "./tls.ts";

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "7d", "12h", "30m", "3600s", "500ms" → milliseconds, between min and max. */
const duration = (minMs: number, maxMs: number) =>
  z
    .string()
    .regex(/^\d+(ms|s|m|h|d)$/, "must be a duration such as 7d, 12h, 30m or 3600s")
    .transform((v) => {
      const [, n, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(v) as unknown as [
        string,
        string,
        keyof typeof UNIT_MS,
      ];
      return Number(n) * UNIT_MS[unit];
    })
    .refine((ms) => ms >= minMs && ms <= maxMs, {
      message: `must be between ${minMs / 1000} seconds and ${maxMs / 86_400_000} days`,
    });

const EnvSchema = z.object({
  AIRLOCK_PORT: intFrom(0, 65535).default(8080),
  AIRLOCK_HOST: z.string().min(1).optional(),
  AIRLOCK_API_KEYS: z.string().optional(),
  AIRLOCK_API_KEYS_FILE: z.string().min(1).optional(),
  AIRLOCK_POLICY_FILE: z.string().min(1).optional(),
  AIRLOCK_AUDIT_FILE: z.string().min(1).default("-"),
  AIRLOCK_AUDIT_MEMORY: intFrom(0, 1_000_000).default(10_000),
  AIRLOCK_CONCURRENCY: intFrom(1, 1024).default(4),
  AIRLOCK_MAX_QUEUE: intFrom(0, 100_000).default(64),
  AIRLOCK_MAX_BODY_BYTES: intFrom(1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  AIRLOCK_PROFILES_DIR: z.string().min(1).optional(),
  AIRLOCK_PROFILES: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9_-]*(,[a-z0-9][a-z0-9_-]*)*$/,
      "must be profile names separated by commas",
    )
    .optional(),
  AIRLOCK_INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,128}$/, "must be 1-128 letters, digits, or _ . : -")
    .optional(),
  AIRLOCK_ORPHAN_GRACE_MS: intFrom(0, 24 * 3600 * 1000).default(60_000),
  AIRLOCK_REAP_INTERVAL_MS: intFrom(1000, 24 * 3600 * 1000).default(60_000),
  AIRLOCK_DEFAULT_PROFILE: z.string().min(1).default("shell"),
  AIRLOCK_WORKSPACE_TTL_MS: intFrom(1000, 365 * 24 * 3600 * 1000).default(24 * 3600 * 1000),
  AIRLOCK_WORKSPACES_PER_TENANT: intFrom(0, 100_000).default(20),
  AIRLOCK_WORKSPACE_MAX_BYTES: intFrom(1024 * 1024, 2 ** 50).default(1024 * 1024 * 1024),
  AIRLOCK_CHECKPOINTS_PER_WORKSPACE: intFrom(0, 10_000).default(32),
  AIRLOCK_CHECKPOINT_BYTES_PER_TENANT: intFrom(0, 2 ** 53).default(10 * 1024 ** 3),
  AIRLOCK_FORK_MAX: intFrom(1, 256).default(8),
  AIRLOCK_POOL_MIN: intFrom(0, 64).default(1),
  AIRLOCK_POOL_MAX: intFrom(0, 256).default(4),
  AIRLOCK_POOL_MAX_PARK_MS: intFrom(10_000, 24 * 3600 * 1000).default(300_000),
  AIRLOCK_POOL_TOTAL: intFrom(0, 4096).default(12),
  AIRLOCK_POOL_IDLE_MS: intFrom(1000, 24 * 3600 * 1000).default(600_000),
  AIRLOCK_POOL_WARM: z
    .string()
    .regex(
      /^([a-z0-9][a-z0-9_-]*(,[a-z0-9][a-z0-9_-]*)*)?$/,
      "must be profile names separated by commas",
    )
    .default("shell,python,node"),
  AIRLOCK_BUILD_IMAGES: z.enum(["missing", "never"]).default("missing"),
  AIRLOCK_METRICS_PUBLIC: z.enum(["true", "false"]).default("false"),
  AIRLOCK_SERVER_TIMING: z.enum(["true", "false"]).default("false"),
  AIRLOCK_TLS_CERT: z.string().min(1).optional(),
  AIRLOCK_TLS_KEY: z.string().min(1).optional(),
  AIRLOCK_SHUTDOWN_GRACE_MS: intFrom(0, 3600 * 1000).default(30_000),
  AIRLOCK_DATA_DIR: z.string().min(1).optional(),
  // The gateway in a container (docker-compose.yml): a network it is on, for
  // the egress relay to reach its proxy, and a volume of its own (mounted at
  // the path) holding the egress CA's public certificates for sandboxes.
  AIRLOCK_EGRESS_RELAY_NETWORK: z
    .string()
    .regex(
      /^airlock-relay-[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$/,
      "must be the name of a Docker network airlock-relay-<name> the gateway is on",
    )
    .optional(),
  AIRLOCK_EGRESS_CA_VOLUME: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}:\/\S+$/,
      "must be <volume>:<where the gateway mounts it>, such as airlock-egress-ca:/var/lib/airlock-ca",
    )
    .optional(),
  AIRLOCK_EXECUTION_RETENTION: duration(60_000, 365 * 86_400_000).default(7 * 86_400_000),
  AIRLOCK_STATE_URL: z
    .string()
    .regex(
      /^postgres(ql)?:\/\/\S+$/,
      "must be a PostgreSQL URL such as postgres://user:password@host:5432/airlock",
    )
    .optional(),
  AIRLOCK_ENGINE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,128}$/, "must be 1-128 letters, digits, or _ . : -")
    .optional(),
  AIRLOCK_ADVERTISE_URL: z
    .url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .optional(),
  AIRLOCK_PEER_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  AIRLOCK_HEARTBEAT_MS: intFrom(100, 60_000).default(2000),
  AIRLOCK_GATEWAY_TIMEOUT_MS: intFrom(500, 3600_000).default(15_000),
  AIRLOCK_LOG_LEVEL: z
    .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
    .default("info"),
  DOCKER_HOST: z
    .string()
    .regex(
      /^(unix|tcp|npipe|ssh|http|https):\/\//,
      "must be a URL such as unix:///var/run/docker.sock",
    )
    .optional(),
});

export interface ApiKey {
  tenant: string;
  /** sha256 of the key; the key itself is never kept. */
  hash: Buffer;
}

export interface Config {
  port: number;
  host: string;
  keys: ApiKey[];
  /** Set when no keys were configured: printed once at start. */
  generatedKey: string | undefined;
  /** The policy file; when set it is the only source of keys. */
  policyFile: string | undefined;
  /** Where audit lines go: a file path, or "-" for stdout. */
  auditFile: string;
  /** Audit records the state store keeps for GET /v1/audit. */
  auditMemory: number;
  concurrency: number;
  maxQueue: number;
  maxBodyBytes: number;
  profilesDir: string | undefined;
  /** AIRLOCK_PROFILES: only these profiles are served (and their images built); undefined: all. */
  profiles: string[] | undefined;
  instanceId: string;
  orphanGraceMs: number;
  reapIntervalMs: number;
  buildImages: "missing" | "never";
  defaultProfile: string;
  poolMin: number;
  poolMax: number;
  poolMaxParkMs: number;
  /** Parked containers of all profiles together at most. */
  poolTotal: number;
  /** A profile not in poolWarm parks none after this long without a job. */
  poolIdleMs: number;
  /** Profiles that keep AIRLOCK_POOL_MIN parked even when idle. */
  poolWarm: string[];
  workspaceTtlMs: number;
  workspacesPerTenant: number;
  workspaceMaxBytes: number;
  /** Checkpoints per workspace, their bytes per tenant, the largest fork. */
  checkpointLimits: { perWorkspace: number; bytesPerTenant: number; forkMax: number };
  logLevel: z.infer<typeof EnvSchema>["AIRLOCK_LOG_LEVEL"];
  /** /metrics answers without a key. */
  metricsPublic: boolean;
  /** Answers carry a Server-Timing header: where the request's time went. */
  serverTiming: boolean;
  /** Serve HTTPS with these (PEM), when both AIRLOCK_TLS_CERT and AIRLOCK_TLS_KEY are set. */
  tls: TlsFiles | undefined;
  /** On SIGTERM, how long running jobs may go on before they are killed. */
  shutdownGraceMs: number;
  /** Where the state store lives (executions, idempotency, approvals); default: state/sqlite.ts defaultDataDir(). */
  dataDir: string | undefined;
  /** The gateway in a container: the network its egress relay reaches it on (default: the engine's bridge). */
  egressRelayNetwork: string | undefined;
  /** The gateway in a container: the volume sandboxes get the egress CA from, and where the gateway mounts it. */
  egressCaVolume: { name: string; path: string } | undefined;
  /** Ended executions, settled approvals and idempotency entries are kept this long. */
  executionRetentionMs: number;
  /** Set with AIRLOCK_STATE_URL: this gateway is one of several sharing a PostgreSQL store. */
  replicas: ReplicaConfig | undefined;
}

export interface ReplicaConfig {
  stateUrl: string;
  /** The engine's id; default: the one the engine reports (docker info). */
  engineId: string | undefined;
  /** Where sibling gateways reach this one. */
  advertiseUrl: string;
  /** Proves a forwarded request comes from a sibling gateway. */
  peerSecret: string;
  heartbeatMs: number;
  /** A gateway silent this long is dead: its running executions end `lost`. */
  gatewayTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export function hashKey(key: string): Buffer {
  return createHash("sha256").update(key, "utf8").digest();
}

/** "tenantA:keyA,tenantB:keyB" → keys; the message names the entry at fault. */
export function parseKeyList(raw: string): ApiKey[] {
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((entry, i) => {
      const colon = entry.indexOf(":");
      const tenant = entry.slice(0, colon);
      const key = entry.slice(colon + 1);
      if (colon <= 0 || !TENANT.test(tenant)) {
        throw new ConfigError(
          `AIRLOCK_API_KEYS entry ${i + 1} must be tenant:key with a tenant of letters, digits, _ . -`,
        );
      }
      if (key.length < 16) {
        throw new ConfigError(
          `AIRLOCK_API_KEYS entry ${i + 1} (tenant ${tenant}): the key must be at least 16 characters`,
        );
      }
      return { tenant, hash: hashKey(key) };
    });
}

/** Lines "tenant sha256:<hex>"; blank lines and # comments ignored. */
export function parseKeysFile(path: string, text: string): ApiKey[] {
  const keys: ApiKey[] = [];
  text.split("\n").forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const match = /^(\S+)\s+sha256:([0-9a-f]{64})$/.exec(trimmed);
    if (match === null || !TENANT.test(match[1] ?? "")) {
      throw new ConfigError(`${path}:${i + 1}: expected "tenant sha256:<64 hex digits>"`);
    }
    keys.push({ tenant: match[1] as string, hash: Buffer.from(match[2] as string, "hex") });
  });
  return keys;
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = issue?.path.join(".") ?? "environment";
    throw new ConfigError(
      `${name}=${JSON.stringify(env[name] ?? "")} is invalid: ${issue?.message ?? "bad value"}`,
    );
  }
  const e = parsed.data;
  // Empty is unset: a compose override that names a policy file blanks the keys variable.
  if (e.AIRLOCK_API_KEYS?.trim() === "") e.AIRLOCK_API_KEYS = undefined;
  if (e.AIRLOCK_POLICY_FILE !== undefined) {
    const other =
      e.AIRLOCK_API_KEYS !== undefined
        ? "AIRLOCK_API_KEYS"
        : e.AIRLOCK_API_KEYS_FILE !== undefined
          ? "AIRLOCK_API_KEYS_FILE"
          : undefined;
    if (other !== undefined) {
      throw new ConfigError(
        `${other} and AIRLOCK_POLICY_FILE are both set: with a policy file, its tenants list every key (with their scopes); move the keys there`,
      );
    }
  }
  const keys = e.AIRLOCK_API_KEYS === undefined ? [] : parseKeyList(e.AIRLOCK_API_KEYS);
  if (e.AIRLOCK_API_KEYS_FILE !== undefined) {
    let text: string;
    try {
      text = readFileSync(e.AIRLOCK_API_KEYS_FILE, "utf8");
    } catch (cause) {
      throw new ConfigError(
        `AIRLOCK_API_KEYS_FILE ${e.AIRLOCK_API_KEYS_FILE} cannot be read: ${(cause as Error).message}`,
      );
    }
    keys.push(...parseKeysFile(e.AIRLOCK_API_KEYS_FILE, text));
  }
  let generatedKey: string | undefined;
  let host = e.AIRLOCK_HOST ?? "0.0.0.0";
  if (keys.length === 0 && e.AIRLOCK_POLICY_FILE === undefined) {
    if (e.AIRLOCK_HOST !== undefined && !LOOPBACK.has(e.AIRLOCK_HOST)) {
      throw new ConfigError(
        `AIRLOCK_HOST=${e.AIRLOCK_HOST} needs API keys: set AIRLOCK_API_KEYS or AIRLOCK_API_KEYS_FILE, or listen on 127.0.0.1`,
      );
    }
    host = e.AIRLOCK_HOST ?? "127.0.0.1";
    generatedKey = randomBytes(24).toString("base64url");
    keys.push({ tenant: "default", hash: hashKey(generatedKey) });
  }
  const tls = tlsFrom(e.AIRLOCK_TLS_CERT, e.AIRLOCK_TLS_KEY);
  return {
    port: e.AIRLOCK_PORT,
    host,
    keys,
    generatedKey,
    policyFile: e.AIRLOCK_POLICY_FILE,
    auditFile: e.AIRLOCK_AUDIT_FILE,
    auditMemory: e.AIRLOCK_AUDIT_MEMORY,
    concurrency: e.AIRLOCK_CONCURRENCY,
    maxQueue: e.AIRLOCK_MAX_QUEUE,
    maxBodyBytes: e.AIRLOCK_MAX_BODY_BYTES,
    profilesDir: e.AIRLOCK_PROFILES_DIR,
    profiles: e.AIRLOCK_PROFILES?.split(","),
    instanceId: e.AIRLOCK_INSTANCE_ID ?? `${hostname()}-${e.AIRLOCK_PORT}`,
    orphanGraceMs: e.AIRLOCK_ORPHAN_GRACE_MS,
    reapIntervalMs: e.AIRLOCK_REAP_INTERVAL_MS,
    buildImages: e.AIRLOCK_BUILD_IMAGES,
    defaultProfile: e.AIRLOCK_DEFAULT_PROFILE,
    poolMin: e.AIRLOCK_POOL_MIN,
    poolMax: e.AIRLOCK_POOL_MAX,
    poolMaxParkMs: e.AIRLOCK_POOL_MAX_PARK_MS,
    poolTotal: e.AIRLOCK_POOL_TOTAL,
    poolIdleMs: e.AIRLOCK_POOL_IDLE_MS,
    poolWarm: e.AIRLOCK_POOL_WARM === "" ? [] : e.AIRLOCK_POOL_WARM.split(","),
    workspaceTtlMs: e.AIRLOCK_WORKSPACE_TTL_MS,
    workspacesPerTenant: e.AIRLOCK_WORKSPACES_PER_TENANT,
    workspaceMaxBytes: e.AIRLOCK_WORKSPACE_MAX_BYTES,
    checkpointLimits: {
      perWorkspace: e.AIRLOCK_CHECKPOINTS_PER_WORKSPACE,
      bytesPerTenant: e.AIRLOCK_CHECKPOINT_BYTES_PER_TENANT,
      forkMax: e.AIRLOCK_FORK_MAX,
    },
    logLevel: e.AIRLOCK_LOG_LEVEL,
    metricsPublic: e.AIRLOCK_METRICS_PUBLIC === "true",
    serverTiming: e.AIRLOCK_SERVER_TIMING === "true",
    tls,
    shutdownGraceMs: e.AIRLOCK_SHUTDOWN_GRACE_MS,
    dataDir: e.AIRLOCK_DATA_DIR,
    egressRelayNetwork: e.AIRLOCK_EGRESS_RELAY_NETWORK,
    egressCaVolume:
      e.AIRLOCK_EGRESS_CA_VOLUME === undefined
        ? undefined
        : {
            name: e.AIRLOCK_EGRESS_CA_VOLUME.slice(0, e.AIRLOCK_EGRESS_CA_VOLUME.indexOf(":")),
            path: e.AIRLOCK_EGRESS_CA_VOLUME.slice(e.AIRLOCK_EGRESS_CA_VOLUME.indexOf(":") + 1),
          },
    executionRetentionMs: e.AIRLOCK_EXECUTION_RETENTION,
    replicas: replicaConfig(e, tls),
  };
}

function replicaConfig(
  e: z.infer<typeof EnvSchema>,
  tls: TlsFiles | undefined,
): ReplicaConfig | undefined {
  if (e.AIRLOCK_STATE_URL === undefined) {
    const stray = (
      ["AIRLOCK_ENGINE_ID", "AIRLOCK_ADVERTISE_URL", "AIRLOCK_PEER_SECRET"] as const
    ).find((name) => e[name] !== undefined);
    if (stray !== undefined) {
      throw new ConfigError(
        `${stray} is set without AIRLOCK_STATE_URL: it only means something for several gateways on one store`,
      );
    }
    return undefined;
  }
  if (e.AIRLOCK_PEER_SECRET === undefined) {
    throw new ConfigError(
      "AIRLOCK_STATE_URL needs AIRLOCK_PEER_SECRET (16+ characters, the same on every gateway): it authenticates requests one gateway forwards to another",
    );
  }
  if (e.AIRLOCK_GATEWAY_TIMEOUT_MS < 2 * e.AIRLOCK_HEARTBEAT_MS) {
    throw new ConfigError(
      `AIRLOCK_GATEWAY_TIMEOUT_MS=${e.AIRLOCK_GATEWAY_TIMEOUT_MS} must be at least twice AIRLOCK_HEARTBEAT_MS=${e.AIRLOCK_HEARTBEAT_MS}, or a live gateway would be taken for dead`,
    );
  }
  const scheme = tls === undefined ? "http" : "https";
  return {
    stateUrl: e.AIRLOCK_STATE_URL,
    engineId: e.AIRLOCK_ENGINE_ID,
    advertiseUrl: (
      e.AIRLOCK_ADVERTISE_URL ?? `${scheme}://${hostname()}:${e.AIRLOCK_PORT}`
    ).replace(/\/+$/, ""),
    peerSecret: e.AIRLOCK_PEER_SECRET,
    heartbeatMs: e.AIRLOCK_HEARTBEAT_MS,
    gatewayTimeoutMs: e.AIRLOCK_GATEWAY_TIMEOUT_MS,
  };
}

function tlsFrom(cert: string | undefined, key: string | undefined): TlsFiles | undefined {
  try {
    return loadTls(cert, key);
  } catch (err) {
    if (err instanceof TlsError) throw new ConfigError(err.message);
    throw err;
  }
}
