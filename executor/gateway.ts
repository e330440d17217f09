// Wires the executor side for one gateway: the Docker client, the executor and
// its queue, the workspace store and file operations. Shared by main.ts and the
// integration tests, so both run exactly the same composition.

import type { LoadedProfile } from "../policies/profile.ts";
import type { ContainerClient } from "./docker.ts";
import { createExecutor, type Executor } from "./executor.ts";
import { DEFAULT_MANIFEST_CACHE_BYTES, ManifestCache } from "./manifest-cache.ts";
import { WarmPool } from "./pool.ts";
import { WorkspaceFiles } from "./workspace-files.ts";
import { WorkspaceStore } from "./workspaces.ts";

export interface GatewayCoreOptions {
  client: ContainerClient;
  profiles: ReadonlyMap<string, LoadedProfile>;
  instanceId: string;
  concurrency: number;
  maxQueue: number;
  orphanGraceMs: number;
  maxBodyBytes: number;
  workspaceTtlMs: number;
  workspacesPerTenant: number;
  workspaceMaxBytes: number;
  /** Parked containers per profile (min when idle, max when busy); max 0 turns the pool off. */
  poolMin?: number;
  poolMax?: number;
  poolMaxParkMs?: number;
  /** Entries allowed in one uploaded archive. */
  uploadMaxEntries?: number;
  /** Bound on the memory of the workspaces' manifest cache (estimated bytes); 0 turns it off. */
  manifestCacheBytes?: number;
  warn: (message: string, err: unknown) => void;
}

export interface GatewayCore {
  executor: Executor;
  pool: WarmPool | undefined;
  store: WorkspaceStore;
  files: WorkspaceFiles;
  manifests: ManifestCache;
}

export function createGatewayCore(o: GatewayCoreOptions): GatewayCore {
  const poolMax = o.poolMax ?? 0;
  const pool =
    poolMax > 0
      ? new WarmPool({
          client: o.client,
          instanceId: o.instanceId,
          profiles: o.profiles,
          min: Math.min(o.poolMin ?? 1, poolMax),
          max: poolMax,
          maxParkMs: o.poolMaxParkMs ?? 300_000,
          orphanGraceMs: o.orphanGraceMs,
          warn: o.warn,
        })
      : undefined;
  const manifests = new ManifestCache(o.manifestCacheBytes ?? DEFAULT_MANIFEST_CACHE_BYTES);
  const executor = createExecutor({
    pool,
    manifests,
    client: o.client,
    instanceId: o.instanceId,
    concurrency: o.concurrency,
    maxQueue: o.maxQueue,
    orphanGraceMs: o.orphanGraceMs,
    warn: o.warn,
  });
  const store = new WorkspaceStore({
    client: o.client,
    executor,
    profiles: o.profiles,
    instanceId: o.instanceId,
    ttlMs: o.workspaceTtlMs,
    maxPerTenant: o.workspacesPerTenant,
    sizeCapBytes: o.workspaceMaxBytes,
    orphanGraceMs: o.orphanGraceMs,
    warn: o.warn,
    manifests,
  });
  const files = new WorkspaceFiles(store, o.client, {
    maxEntries: o.uploadMaxEntries ?? 100_000,
    maxBytes: o.maxBodyBytes,
  });
  return { executor, pool, store, files, manifests };
}
