// Workspaces: a Docker volume per workspace, state that outlives one container.
// This is the store: create, look up, remove, and run operations on a
// workspace, each in its own throwaway container, one at a time per workspace
// in arrival order. How a workspace is labelled is workspace-labels.ts's; when
// it was last used and the sweep of idle ones, workspace-ttl.ts's; how many a
// tenant may have, workspace-quota.ts's; how big one may grow, workspace-size.ts's
// (and its meter, workspace-meter.ts).
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { AirlockError } from "../core/errors.ts";
import { type Job, type JobFile, systemJob, type WorkspaceRef } from "../core/job.ts";
import { type LoadedProfile, lookupProfile } from "../core/profile.ts";
import type { ExecResult } from "../core/schemas.ts";
import { packFiles, parseOwner } from "./archive.ts";
import { removeCheckpointsOf } from "./checkpoint-volumes.ts";
import { fileContainerSpec } from "./container-spec.ts";
import type { ContainerClient } from "./docker.ts";
import type { Executor, ExecutorRunOptions } from "./executor.ts";
import type { ManifestCache } from "./manifest-cache.ts";
import {
  LABEL_CREATED,
  LABEL_NETWORKS,
  LABEL_PROFILE,
  LABEL_TENANT,
  LABEL_TTL,
  LABEL_WORKSPACE,
  ttlOf,
  volumeOf,
} from "./workspace-labels.ts";
import { WorkspaceLocks } from "./workspace-lock.ts";
import type { WorkspaceMeter } from "./workspace-meter.ts";
import {
  gatewayLimit,
  LocalWorkspaceReservations,
  type WorkspaceLimit,
  type WorkspaceReservations,
} from "./workspace-quota.ts";
import { assertWithinCap, type SizeCap, sizeCapOf } from "./workspace-size.ts";
import { WorkspaceUse } from "./workspace-ttl.ts";

export {
  LABEL_CREATED,
  LABEL_PROFILE,
  LABEL_TENANT,
  LABEL_TOUCH,
  LABEL_TOUCHED,
  LABEL_TTL,
  LABEL_WORKSPACE,
  volumeOf,
} from "./workspace-labels.ts";

const ID_PATTERN = /^ws_[a-z0-9]{20}$/;

export interface WorkspaceInfo {
  id: string;
  profile: string;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  /** Egress networks its jobs get unless they ask for others. */
  networks?: string[];
}

export interface WorkspaceStoreDeps {
  client: ContainerClient;
  executor: Executor;
  profiles: ReadonlyMap<string, LoadedProfile>;
  instanceId: string;
  ttlMs: number;
  maxPerTenant: number;
  sizeCapBytes: number;
  /** A tenant's own, smaller cap (policies/access quotas), when it has one. */
  sizeCapFor?: (tenant: string) => number | undefined;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
  now?: () => number;
  /** Forgets a workspace's manifest when the workspace goes. */
  manifests?: ManifestCache | undefined;
  /** Where a tenant's workspace count is reserved (default: this process, workspace-quota.ts). */
  reservations?: WorkspaceReservations | undefined;
  /** Measures a workspace whose size this gateway does not know (before a file write). */
  meter: Pick<WorkspaceMeter, "measure">;
}

interface Workspace {
  id: string;
  tenant: string;
  profile: LoadedProfile;
  volume: string;
  createdAt: number;
  ttlMs: number;
  networks: string[];
}

/** An operation under a workspace's lock; `hold` keeps the lock, past its answer, until `work` ends. */
export type LockedOp<T> = (ws: Workspace, hold: (work: Promise<unknown>) => void) => Promise<T>;

export class WorkspaceStore {
  private readonly deps: WorkspaceStoreDeps;
  private readonly locks = new WorkspaceLocks();
  /** Workspaces an exclusive operation (a restore) has claimed: anything else asked of them is a 409. */
  private readonly claimed = new Map<string, string>();
  private readonly use: WorkspaceUse;
  private readonly reservations: WorkspaceReservations;
  /**
   * Each workspace's size as this gateway last knew it for sure (what a
   * listing adds up), read and written under the workspace's lock; absent when
   * it does not know (a restart, an operation that failed), and then measured.
   * This gateway's alone: with several gateways on one engine, a write
   * through another one makes it stale until this gateway's next run on that
   * workspace (which tells the size again), so a write here can take the
   * workspace past its cap by what the other wrote meanwhile. The running
   * meter and the check after each run still hold. The Replicas issue's shared
   * state is where one size for all gateways would go.
   */
  private readonly sizes = new Map<string, number>();

  constructor(deps: WorkspaceStoreDeps) {
    this.deps = deps;
    this.use = new WorkspaceUse(deps.client, () => this.now());
    this.reservations = deps.reservations ?? new LocalWorkspaceReservations(deps.client);
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /**
   * Makes a workspace of the tenant, under AIRLOCK_WORKSPACES_PER_TENANT and
   * any other count `limits` (the policy's maxWorkspaces), reserved as one step
   * with the volume's creation (workspace-quota.ts).
   */
  async create(
    tenant: string,
    profileName: string,
    files: readonly JobFile[],
    limits: readonly WorkspaceLimit[] = [],
    networks: readonly string[] = [],
  ): Promise<WorkspaceInfo> {
    const profile = lookupProfile(this.deps.profiles, profileName);
    const bytes = files.reduce((sum, f) => sum + f.content.length, 0);
    assertWithinCap("the new workspace", this.sizeCap(tenant), 0, bytes);
    const id = `ws_${randomBytes(13).toString("hex").slice(0, 20)}`;
    const createdAt = this.now();
    const ws: Workspace = {
      id,
      tenant,
      profile,
      volume: volumeOf(id),
      createdAt,
      ttlMs: this.deps.ttlMs,
      networks: [...networks],
    };
    await this.reservations.reserve(tenant, [gatewayLimit(this.deps.maxPerTenant), ...limits], () =>
      this.deps.client.createVolume(ws.volume, {
        [LABEL_WORKSPACE]: id,
        [LABEL_TENANT]: tenant,
        [LABEL_PROFILE]: profile.name,
        [LABEL_CREATED]: String(createdAt),
        [LABEL_TTL]: String(this.deps.ttlMs),
        ...(networks.length === 0 ? {} : { [LABEL_NETWORKS]: networks.join(",") }),
      }),
    );
    try {
      // Mounting it once into a container of the profile's image gives the new
      // volume the image's /workspace owner; the files go in at the same time.
      await this.withFileContainer(ws, async (cid) => {
        if (files.length > 0) {
          await this.deps.client.putArchive(
            cid,
            "/workspace",
            packFiles(files, parseOwner(profile.user)),
          );
        }
      });
    } catch (err) {
      await this.deps.client
        .removeVolume(ws.volume)
        .catch((e: unknown) => this.deps.warn("removing a half-made workspace", e));
      throw err;
    }
    this.use.created(id, createdAt, ws.ttlMs);
    this.sizes.set(id, bytes);
    return this.info(ws, createdAt);
  }

  /** The caller's workspace, or not_found: another tenant's workspace does not exist for this caller. */
  private async find(tenant: string, id: string): Promise<Workspace> {
    const missing = () =>
      new AirlockError("not_found", `workspace ${JSON.stringify(id)} does not exist`);
    if (!ID_PATTERN.test(id)) throw missing();
    const labels = await this.deps.client.volumeLabels(volumeOf(id));
    if (labels === undefined || labels[LABEL_WORKSPACE] !== id || labels[LABEL_TENANT] !== tenant)
      throw missing();
    const profile = this.deps.profiles.get(labels[LABEL_PROFILE] ?? "");
    if (profile === undefined) {
      throw new AirlockError(
        "internal",
        `workspace ${id} uses profile ${labels[LABEL_PROFILE]}, which is no longer configured`,
      );
    }
    return {
      id,
      tenant,
      profile,
      volume: volumeOf(id),
      createdAt: Number(labels[LABEL_CREATED]),
      ttlMs: ttlOf(labels, this.deps.ttlMs),
      networks: (labels[LABEL_NETWORKS] ?? "").split(",").filter((n) => n !== ""),
    };
  }

  private info(ws: Workspace, lastUsed: number): WorkspaceInfo {
    return {
      id: ws.id,
      profile: ws.profile.name,
      createdAt: new Date(ws.createdAt).toISOString(),
      lastUsedAt: new Date(lastUsed).toISOString(),
      expiresAt: new Date(lastUsed + ws.ttlMs).toISOString(),
      ...(ws.networks.length === 0 ? {} : { networks: ws.networks }),
    };
  }

  async get(tenant: string, id: string): Promise<WorkspaceInfo> {
    const ws = await this.find(tenant, id);
    return this.info(ws, await this.use.lastUsed(ws.id, ws.createdAt, ws.ttlMs));
  }

  async remove(tenant: string, id: string): Promise<void> {
    const ws = await this.find(tenant, id);
    this.assertUnclaimed(id);
    await this.locks.run(id, () => this.destroy(ws.id));
  }

  /**
   * Runs `op` on the caller's workspace, after the operations before it, and
   * records the use. What `op` hands to `hold` (a container's removal) keeps
   * the lock after op's answer has gone out, so the next operation finds the
   * volumes free.
   */
  async operate<T>(tenant: string, id: string, op: LockedOp<T>): Promise<T> {
    const ws = await this.find(tenant, id);
    this.assertUnclaimed(id);
    return this.queue(ws, op);
  }

  /**
   * Like operate(), for an operation that must not interleave with any other
   * (a restore): from the moment it is asked until it ends, every other
   * operation asked of the workspace is refused with 409 conflict rather than
   * queued behind it. Operations already queued run first.
   */
  async exclusive<T>(tenant: string, id: string, what: string, op: LockedOp<T>): Promise<T> {
    const ws = await this.find(tenant, id);
    this.assertUnclaimed(id);
    this.claimed.set(id, what);
    try {
      return await this.queue(ws, op);
    } finally {
      this.claimed.delete(id);
    }
  }

  private assertUnclaimed(id: string): void {
    const what = this.claimed.get(id);
    if (what === undefined) return;
    throw new AirlockError(
      "conflict",
      `workspace ${id} is being ${what}; try again when it has finished`,
      { details: { workspace: id, operation: what } },
    );
  }

  private queue<T>(ws: Workspace, op: LockedOp<T>): Promise<T> {
    const { id } = ws;
    // Settled with op's answer; the lock is held until what op handed to `hold` has ended too.
    return new Promise<T>((resolve, reject) => {
      void this.locks.run(id, async () => {
        const held: Promise<unknown>[] = [];
        try {
          // It may have been deleted or expired while this operation waited its turn.
          if ((await this.deps.client.volumeLabels(ws.volume)) === undefined) {
            throw new AirlockError("not_found", `workspace ${JSON.stringify(id)} does not exist`);
          }
          resolve(await op(ws, (work) => held.push(work)));
        } catch (err) {
          // Whatever it got to do is unknown now.
          this.sizes.delete(ws.id);
          reject(err);
        } finally {
          await Promise.allSettled(held);
          await this.use
            .touch(ws.id, ws.ttlMs)
            .catch((err: unknown) => this.deps.warn(`recording use of ${id}`, err));
        }
      });
    });
  }

  /**
   * Like operate() with a file container, for an operation whose result is a
   * stream: the stream is handed out at once, while the lock and the container
   * are held until it has been read to the end (or abandoned).
   */
  streamOut(
    tenant: string,
    id: string,
    open: (ws: Workspace, cid: string) => Promise<FileContent>,
  ): Promise<FileContent> {
    return new Promise<FileContent>((resolve, reject) => {
      this.operate(tenant, id, (ws) =>
        this.withFileContainer(ws, async (cid) => {
          const content = await open(ws, cid);
          resolve(content);
          await finished(content.stream).catch(() => undefined);
        }),
      ).catch(reject);
    });
  }

  /** The tenant's workspace size cap: the gateway's, or the tenant's own when smaller. */
  sizeCap(tenant: string): SizeCap {
    return sizeCapOf(this.deps.sizeCapBytes, this.deps.sizeCapFor?.(tenant));
  }

  ref(ws: Workspace): WorkspaceRef {
    return { id: ws.id, volume: ws.volume, sizeCapBytes: this.sizeCap(ws.tenant).bytes };
  }

  /**
   * The workspace's size now (under its lock): as this gateway last knew it,
   * or measured by a meter container. payload_too_large when it cannot be
   * measured (a directory its sandbox user cannot read).
   */
  async sizeOf(ws: Workspace): Promise<number> {
    const known = this.sizes.get(ws.id);
    if (known !== undefined) return known;
    const reading = await this.deps.meter.measure(ws.profile, ws.volume);
    if (reading.unreadable > 0) {
      const cap = this.sizeCap(ws.tenant);
      throw new AirlockError(
        "payload_too_large",
        `workspace ${ws.id} holds a directory its sandbox user cannot read, so its size cannot be checked against its cap of ${cap.bytes} bytes (${cap.setting}); make it readable or delete it first`,
        { details: { limit: cap.setting, max: cap.bytes, unreadable: reading.unreadable } },
      );
    }
    this.sizes.set(ws.id, reading.bytes);
    return reading.bytes;
  }

  /** The workspace's size is now `bytes` (a write made it so, under the lock). */
  setSize(ws: Workspace, bytes: number): void {
    this.sizes.set(ws.id, bytes);
  }

  /** A run's result tells the workspace's size when its scan read the whole of it. */
  private noteRun(ws: Workspace, result: ExecResult): void {
    if (result.workspaceBytes !== undefined && !result.diff.truncated) {
      this.sizes.set(ws.id, result.workspaceBytes);
    } else this.sizes.delete(ws.id);
  }

  /** Runs the job that `build` resolves for the workspace, under its lock. */
  async exec(
    tenant: string,
    id: string,
    build: (workspace: WorkspaceRef, profile: LoadedProfile) => Job,
    options: ExecutorRunOptions,
    /** Runs first, under the same lock (a checkpoint); what it returns joins the result. */
    before?: (ws: Workspace) => Promise<Partial<ExecResult>>,
  ): Promise<ExecResult> {
    // The answer goes out before the job's container is removed; the lock is
    // held until it is, so the next operation finds the volume free.
    return new Promise<ExecResult>((resolve, reject) => {
      this.operate(tenant, id, async (ws) => {
        const removals: Promise<void>[] = [];
        try {
          const extra = before === undefined ? {} : await before(ws);
          const run = await this.deps.executor.run(build(this.ref(ws), ws.profile), {
            ...options,
            afterAnswer: (removal) => removals.push(removal),
          });
          this.noteRun(ws, run);
          resolve({ ...run, ...extra });
        } finally {
          // A failed job's removal too: the lock is released only once its container is gone.
          await Promise.allSettled(removals);
        }
      }).catch(reject);
    });
  }

  /**
   * Runs argv in a throwaway sandbox on the workspace (already locked by the
   * caller): the gateway's own operation, so no size cap stops it (what it
   * writes was checked before; a delete must work on a full workspace).
   */
  async runSystem(
    ws: Workspace,
    argv: string[],
    stdin: Buffer = Buffer.alloc(0),
  ): Promise<ExecResult> {
    const ref = { id: ws.id, volume: ws.volume };
    const result = await this.deps.executor.run(systemJob(ws.profile, ws.tenant, argv, stdin, ref));
    this.noteRun(ws, result);
    return result;
  }

  /**
   * A created, never started container of the profile's image with the volume
   * at /workspace: the engine's archive API reads and writes the volume through
   * it, so nothing of the workspace touches the host disk. Removed in finally.
   */
  async withFileContainer<T>(ws: Workspace, fn: (containerId: string) => Promise<T>): Promise<T> {
    return this.withVolumeContainer(ws.profile, ws.volume, fn);
  }

  /** withFileContainer() on any volume of airlock's (a checkpoint's), with the profile's image. */
  async withVolumeContainer<T>(
    profile: LoadedProfile,
    volume: string,
    fn: (containerId: string) => Promise<T>,
  ): Promise<T> {
    const { client } = this.deps;
    const id = await client.create(
      fileContainerSpec(profile, {
        instanceId: this.deps.instanceId,
        jobId: `files-${randomBytes(6).toString("hex")}`,
        volume,
        deadline: this.now() + this.deps.orphanGraceMs,
      }),
    );
    try {
      return await fn(id);
    } finally {
      await client
        .remove(id)
        .catch((err: unknown) => this.deps.warn(`removing file container ${id}`, err));
    }
  }

  /** Runs a job airlock made for itself (a checkpoint's copy between volumes), through the queue. */
  runJob(job: Job, options: ExecutorRunOptions = {}): Promise<ExecResult> {
    return this.deps.executor.run(job, options);
  }

  /**
   * The workspace's files changed behind this store's back (a restore, a
   * fork's copy): the manifest cache and the known size forget them.
   */
  forgetManifest(id: string): void {
    this.deps.manifests?.delete(id);
    this.sizes.delete(id);
  }

  /** Logs a failure that leaves the answer as it is. */
  warn(message: string, err: unknown): void {
    this.deps.warn(message, err);
  }

  private async destroy(id: string): Promise<void> {
    this.sizes.delete(id);
    // Its checkpoints go first: a failure here leaves the workspace to be removed again.
    await removeCheckpointsOf(this.deps.client, id);
    await this.removeWhenFree(id);
    await this.use.forget(id);
    this.deps.manifests?.delete(id);
  }

  /**
   * The volume, once no container holds it. The lock orders this gateway's
   * operations only: another gateway on the same engine (replicas) may still
   * be removing the container of a job it has answered. A volume still in use
   * after 10 s is a 409 conflict to retry, not an internal failure.
   */
  private async removeWhenFree(id: string): Promise<void> {
    const deadline = this.now() + 10_000;
    for (;;) {
      try {
        await this.deps.client.removeVolume(volumeOf(id));
        return;
      } catch (err) {
        if ((err as { statusCode?: unknown }).statusCode !== 409) throw err;
        if (this.now() > deadline) {
          throw new AirlockError(
            "conflict",
            `workspace ${id} is still in use by a job (on another gateway of this engine); retry when it has ended`,
            { cause: err, retryAfterSeconds: 2 },
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Removes every workspace idle for longer than its TTL; returns how many.
   * `all` lists every workspace on the engine (and stray markers) rather than
   * looking at those known to be due: see workspace-ttl.ts.
   */
  collectExpired(all = false): Promise<number> {
    return this.use.sweep(
      {
        defaultTtlMs: this.deps.ttlMs,
        busy: (id) => this.locks.busy(id),
        remove: (id) => this.locks.run(id, () => this.destroy(id)),
      },
      all,
    );
  }
}

export type { Workspace };

/** A Readable of workspace bytes, with their size when known in advance. */
export interface FileContent {
  size?: number;
  stream: Readable;
}
