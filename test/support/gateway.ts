// Starts a real gateway in-process for integration tests: real Docker client,
// real executor, real HTTP server on a loopback port. Each gateway has its own
// instance id, so a test can prove it left no container or volume behind, and
// its own state store in a temporary data directory, removed on close.
import { randomUUID } from "node:crypto";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import Dockerode from "dockerode";
import { pino } from "pino";
import { Registry } from "prom-client";
import { type Access, createAccess } from "../../api/admission/access.ts";
import { createApp } from "../../api/app.ts";
import { hashKey } from "../../api/config.ts";
import { recoverState } from "../../api/executions/executions.ts";
import { createMetrics, type Metrics } from "../../api/metrics.ts";
import type { StateStore } from "../../core/state.ts";
import type { CheckpointLimits } from "../../executor/checkpoints.ts";
import { LABEL_INSTANCE } from "../../executor/container-spec.ts";
import { DockerodeClient, DockerodeNetworks } from "../../executor/docker.ts";
import { openEgress } from "../../executor/egress-network.ts";
import { translateEngineErrors } from "../../executor/engine-errors.ts";
import type { Executor } from "../../executor/executor.ts";
import { createGatewayCore } from "../../executor/gateway.ts";
import type { ManifestCache } from "../../executor/manifest-cache.ts";
import { meterClient } from "../../executor/metered-client.ts";
import type { WarmPool } from "../../executor/pool.ts";
import type { ImportBounds } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { readVersions } from "../../images/versions.ts";
import { PolicyHolder, parsePolicy } from "../../policies/access/load.ts";
import { environmentPolicy } from "../../policies/access/schema.ts";
import { loadProfiles } from "../../policies/load.ts";
import { openSqliteState } from "../../state/sqlite.ts";

/** The policy file's form of a key: "sha256:<hex>". */
export function keyHash(key: string): string {
  return `sha256:${hashKey(key).toString("hex")}`;
}

export interface TestGateway {
  url: string;
  key: string;
  instanceId: string;
  docker: Dockerode;
  executor: Executor;
  pool: WarmPool | undefined;
  store: WorkspaceStore;
  /** Set when started with `metrics: true`; /metrics is served (with the key). */
  metrics: Metrics | undefined;
  access: Access;
  /** The Hono app itself, for in-process calls (as the MCP server and the Piston API make). */
  app: ReturnType<typeof createApp>;
  /** The gateway's manifest cache (tests empty it to act as a gateway that never saw a workspace). */
  manifests: ManifestCache;
  /** Its state store, in `dataDir`. */
  state: StateStore;
  dataDir: string;
  /** POST a JSON body with the gateway's key. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Any request with `key` (default: the gateway's key); a `json` body is sent as JSON. */
  call(
    key: string,
    method: string,
    path: string,
    json?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** Containers and volumes that still carry this gateway's instance label. */
  leftovers(): Promise<{ containers: number; volumes: number }>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  concurrency?: number;
  maxQueue?: number;
  maxBodyBytes?: number;
  workspaceTtlMs?: number;
  workspacesPerTenant?: number;
  workspaceMaxBytes?: number;
  /** Reuse an instance id (to act as the same gateway after a restart). */
  instanceId?: string;
  /** The key of tenant "test" (to act as the same caller against a restarted gateway). */
  key?: string;
  uploadMaxEntries?: number;
  /** Archive imports at once and waiting (executor/workspace-files.ts). */
  importBounds?: ImportBounds;
  /** When a run's workspace meter starts and how often it reads (executor/workspace-meter.ts). */
  meterTiming?: { delayMs?: number; periodMs?: number };
  /** Warm pool size per profile; the pool is off unless poolMax > 0. */
  poolMin?: number;
  poolMax?: number;
  /** An extra profiles directory, e.g. policies/gvisor. */
  profilesDir?: string;
  /** Extra API keys: tenant → key. */
  keys?: Record<string, string>;
  /** Measure as main.ts does (metered client and executor, /metrics). */
  metrics?: boolean;
  /** The engine to use (e.g. one reached through the socket proxy); the local socket by default. */
  docker?: Dockerode;
  /**
   * A policy (the object of a policy file, or the path of one): its keys
   * replace `key` and `keys`. Without it every key gets the default scopes.
   */
  policy?: unknown;
  /** Audit lines are appended to this file (they are always kept in memory too). */
  auditFile?: string;
  /** The state store's directory (kept on close), to act as the same gateway after a restart. */
  dataDir?: string;
  /** Run the egress proxy (jobs may ask for the policy's networks); upstreamCa: extra roots it trusts. */
  egress?: { upstreamCa?: string };
  /** Checkpoints per workspace, their bytes per tenant, the largest fork (executor/checkpoints.ts). */
  checkpointLimits?: CheckpointLimits;
}

export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const instanceId = options.instanceId ?? `test-${randomUUID().slice(0, 8)}`;
  const key = options.key ?? `test-key-${randomUUID()}`;
  const docker = options.docker ?? new Dockerode();
  const metrics = options.metrics === true ? createMetrics(new Registry()) : undefined;
  const direct = translateEngineErrors(new DockerodeClient(docker));
  const client = metrics === undefined ? direct : meterClient(direct, metrics);
  const profiles = loadProfiles({ extraDir: options.profilesDir });
  await readVersions(docker, profiles);
  const envKeys = [
    { tenant: "test", hash: hashKey(key) },
    ...Object.entries(options.keys ?? {}).map(([tenant, k]) => ({ tenant, hash: hashKey(k) })),
  ];
  const policyFile = options.policy;
  const policy =
    policyFile === undefined
      ? new PolicyHolder(environmentPolicy(envKeys))
      : typeof policyFile === "string"
        ? PolicyHolder.fromFile(policyFile)
        : new PolicyHolder(parsePolicy("test-policy.json", JSON.stringify(policyFile)));
  const auditFile = options.auditFile;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "airlock-gateway-"));
  const state = await openSqliteState({ dataDir });
  await recoverState(state, instanceId);
  const access = createAccess({
    policy,
    client,
    approvals: state.approvals,
    audit: state.audit,
    instanceId,
    ...(auditFile === undefined ? {} : { auditWrite: (line) => appendFileSync(auditFile, line) }),
  });
  await access.deps.stop.refresh();
  const egress =
    options.egress === undefined
      ? undefined
      : await openEgress({
          client,
          networks: new DockerodeNetworks(docker),
          dataDir,
          instanceId,
          relayImage: "airlock/node:1",
          upstreamCa: options.egress.upstreamCa,
          ...(metrics === undefined ? {} : { onConnection: (e) => metrics.egress(e) }),
          warn: (message, err) => console.warn(message, err),
        });
  const { executor, pool, store, files, checkpoints, manifests } = createGatewayCore({
    egress: egress?.egress,
    client,
    profiles,
    instanceId,
    concurrency: options.concurrency ?? 4,
    maxQueue: options.maxQueue ?? 64,
    orphanGraceMs: 60_000,
    maxBodyBytes: options.maxBodyBytes ?? 32 * 1024 * 1024,
    workspaceTtlMs: options.workspaceTtlMs ?? 3600_000,
    workspacesPerTenant: options.workspacesPerTenant ?? 50,
    workspaceMaxBytes: options.workspaceMaxBytes ?? 64 * 1024 * 1024,
    ...(options.uploadMaxEntries === undefined
      ? {}
      : { uploadMaxEntries: options.uploadMaxEntries }),
    ...(options.importBounds === undefined ? {} : { importBounds: options.importBounds }),
    ...(options.meterTiming === undefined ? {} : { meterTiming: options.meterTiming }),
    poolMin: options.poolMin ?? 0,
    poolMax: options.poolMax ?? 0,
    // As main.ts by default: the language profiles park only once they have jobs.
    poolWarm: ["shell", "python", "node", "shell-gvisor", "python-gvisor"],
    workspaceSizeCapFor: (tenant) => access.workspaceBytes(tenant),
    manifestStore: state.manifests,
    checkpointLimits: options.checkpointLimits,
    warn: (message, err) => console.warn(message, err),
    metrics,
  });
  const app = createApp({
    executor,
    client,
    profiles,
    access,
    maxBodyBytes: options.maxBodyBytes ?? 32 * 1024 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: { store, files, checkpoints, defaultProfile: "shell" },
    metrics,
    state,
    instanceId,
  });
  pool?.start();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    key,
    instanceId,
    docker,
    executor,
    pool,
    store,
    metrics,
    access,
    app,
    call: (k, method, path, json, headers = {}) =>
      fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${k}`,
          ...(json === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      }),
    manifests,
    state,
    dataDir,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    async leftovers() {
      const filter = { label: [`${LABEL_INSTANCE}=${instanceId}`] };
      const containers = await docker.listContainers({ all: true, filters: filter });
      const volumes = await docker.listVolumes({ filters: filter });
      return { containers: containers.length, volumes: volumes.Volumes?.length ?? 0 };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await executor.drain();
      await manifests.flush();
      await egress?.close();
      await state.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
