// Wires the executor side for one gateway: the Docker client, the executor and
// its queue, the workspace store and file operations. Shared by main.ts and the
// integration tests, so both run exactly the same composition.

import type { MetricsSink } from "../core/metrics.ts";
import type { LoadedProfile } from "../core/profile.ts";
import type { ManifestRecords } from "../core/state.ts";
import { type CheckpointLimits, Checkpoints, DEFAULT_CHECKPOINT_LIMITS } from "./checkpoints.ts";
import type { ContainerClient } from "./docker.ts";
import type { Egress } from "./egress-network.ts";
import { createExecutor, type Executor } from "./executor.ts";
import { DEFAULT_MANIFEST_CACHE_BYTES, ManifestCache } from "./manifest-cache.ts";
import { meterExecutor } from "./metered-executor.ts";
import { WarmPool } from "./pool.ts";
import { type StopReport, stoppable } from "./shutdown.ts";
import { type ImportBounds, WorkspaceFiles } from "./workspace-files.ts";
import { WorkspaceMeter, type WorkspaceMeterDeps } from "./workspace-meter.ts";
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
  /** All profiles' parked containers together at most; idle profiles park none (pool.ts). */
  poolTotal?: number | undefined;
  poolIdleMs?: number | undefined;
  /** Profiles that keep poolMin parked even when idle (default: all). */
  poolWarm?: readonly string[] | undefined;
  /** A tenant's own workspace size cap (the policy's maxWorkspaceBytes), below workspaceMaxBytes. */
  workspaceSizeCapFor?: (tenant: string) => number | undefined;
  /** Entries allowed in one uploaded archive. */
  uploadMaxEntries?: number;
  /** Archive imports streaming at once, and waiting (past that, 429 busy); default DEFAULT_IMPORT_BOUNDS. */
  importBounds?: ImportBounds;
  /** When a run's workspace meter starts, and how often it reads (workspace-meter.ts defaults). */
  meterTiming?: Pick<WorkspaceMeterDeps, "delayMs" | "periodMs">;
  /** Bound on the memory of the workspaces' manifest cache (estimated bytes); 0 turns it off. */
  manifestCacheBytes?: number;
  /** Where workspace manifests are also kept, so a restart does not read every workspace whole (the state store's). */
  manifestStore?: ManifestRecords | undefined;
  /** Checkpoints per workspace, their bytes per tenant, the largest fork; default DEFAULT_CHECKPOINT_LIMITS. */
  checkpointLimits?: CheckpointLimits | undefined;
  warn: (message: string, err: unknown) => void;
  /** The egress side (egress-network.ts): jobs granted networks are refused without it. */
  egress?: Egress | undefined;
  /** When set, jobs are counted and timed, and the gauges read this executor and pool. */
  metrics?: MetricsSink | undefined;
}

export interface GatewayCore {
  executor: Executor;
  /** Graceful shutdown: see executor/shutdown.ts. */
  stop(graceMs: number): Promise<StopReport>;
  pool: WarmPool | undefined;
  store: WorkspaceStore;
  files: WorkspaceFiles;
  checkpoints: Checkpoints;
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
          total: o.poolTotal,
          idleMs: o.poolIdleMs,
          warm: o.poolWarm === undefined ? undefined : new Set(o.poolWarm),
          orphanGraceMs: o.orphanGraceMs,
          warn: o.warn,
        })
      : undefined;
  const manifests = new ManifestCache(
    o.manifestCacheBytes ?? DEFAULT_MANIFEST_CACHE_BYTES,
    o.manifestStore === undefined ? undefined : { store: o.manifestStore, warn: o.warn },
  );
  const meter = new WorkspaceMeter({
    client: o.client,
    instanceId: o.instanceId,
    orphanGraceMs: o.orphanGraceMs,
    warn: o.warn,
    ...o.meterTiming,
  });
  const graceful = stoppable(
    createExecutor({
      pool,
      manifests,
      meter,
      client: o.client,
      instanceId: o.instanceId,
      concurrency: o.concurrency,
      maxQueue: o.maxQueue,
      orphanGraceMs: o.orphanGraceMs,
      warn: o.warn,
      egress: o.egress,
    }),
  );
  const executor = o.metrics === undefined ? graceful : meterExecutor(graceful, o.metrics);
  o.metrics?.watch({
    running: () => executor.running,
    waiting: () => executor.waiting,
    parked: () => pool?.stats().parked ?? {},
  });
  const store = new WorkspaceStore({
    client: o.client,
    executor,
    profiles: o.profiles,
    instanceId: o.instanceId,
    ttlMs: o.workspaceTtlMs,
    maxPerTenant: o.workspacesPerTenant,
    sizeCapBytes: o.workspaceMaxBytes,
    ...(o.workspaceSizeCapFor === undefined ? {} : { sizeCapFor: o.workspaceSizeCapFor }),
    orphanGraceMs: o.orphanGraceMs,
    warn: o.warn,
    manifests,
    meter,
  });
  const files = new WorkspaceFiles(
    store,
    o.client,
    { maxEntries: o.uploadMaxEntries ?? 100_000, maxBytes: o.maxBodyBytes },
    o.importBounds,
  );
  const stop = async (graceMs: number) => {
    const report = await graceful.stop(graceMs);
    // The last jobs' manifests reach the store before it is closed.
    await manifests.flush();
    return report;
  };
  const checkpoints = new Checkpoints(
    store,
    o.client,
    o.checkpointLimits ?? DEFAULT_CHECKPOINT_LIMITS,
  );
  return { executor, stop, pool, store, files, checkpoints, manifests };
}
