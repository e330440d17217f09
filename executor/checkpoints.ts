// Workspace checkpoints (DESIGN.md "Workspace checkpoints"): take one, list
// and delete them, restore one, fork a workspace (as it is, or as a checkpoint
// has it) into new ones, and diff a checkpoint against another or against the
// workspace now. Every copy runs inside a system container with the volumes
// mounted side by side (the shell is checkpoint-scripts.ts's, the volumes
// checkpoint-volumes.ts's), under the workspace's lock; a restore holds it
// exclusively, so anything else asked of the workspace meanwhile is a 409.
import { randomBytes } from "node:crypto";
import { AirlockError } from "../core/errors.ts";
import { type Job, type JobMount, profileJob } from "../core/job.ts";
import type { Diff, ExecResult } from "../core/schemas.ts";
import { phase } from "../core/timing.ts";
import { assertSafeTree, diffOfSides, parseTreeReport } from "./checkpoint-output.ts";
import {
  CHECKPOINT_SCRIPT,
  DIFF_SCRIPT,
  DST,
  FORK_SCRIPT,
  RESTORE_SCRIPT,
  SRC,
} from "./checkpoint-scripts.ts";
import {
  type CheckpointInfo,
  checkpointBytesOf,
  checkpointsOf,
  dataVolumeOf,
  findCheckpoint,
  LABEL_CHECKPOINT,
  LABEL_CHECKPOINT_BYTES,
  LABEL_CHECKPOINT_ENTRIES,
  LABEL_CHECKPOINT_LABEL,
  LABEL_CHECKPOINT_META,
  LABEL_CHECKPOINT_OF,
  metaVolumeOf,
  removeCheckpoint,
  type StoredCheckpoint,
} from "./checkpoint-volumes.ts";
import type { ContainerClient } from "./docker.ts";
import { LABEL_CREATED, LABEL_TENANT, volumeOf } from "./workspace-labels.ts";
import { WorkspaceLocks } from "./workspace-lock.ts";
import type { WorkspaceLimit } from "./workspace-quota.ts";
import type { Workspace, WorkspaceInfo, WorkspaceStore } from "./workspaces.ts";

export type { CheckpointInfo } from "./checkpoint-volumes.ts";

export interface CheckpointLimits {
  /** AIRLOCK_CHECKPOINTS_PER_WORKSPACE */
  perWorkspace: number;
  /** AIRLOCK_CHECKPOINT_BYTES_PER_TENANT: all of a tenant's checkpoints together. */
  bytesPerTenant: number;
  /** AIRLOCK_FORK_MAX: the largest `count` of one fork. */
  forkMax: number;
}

export const DEFAULT_CHECKPOINT_LIMITS: CheckpointLimits = {
  perWorkspace: 32,
  bytesPerTenant: 10 * 1024 ** 3,
  forkMax: 8,
};

/** The exit status of CHECKPOINT_SCRIPT past its byte budget. */
const OVER_BUDGET = 3;
/** The exit status of CHECKPOINT_SCRIPT and FORK_SCRIPT when an entry cannot be taken (unreadable, special). */
const UNREADABLE = 4;

/** Takes a container's removal, so the answer need not wait for it (the workspace's lock does). */
type Hold = (removal: Promise<unknown>) => void;

export interface RestoreResult {
  checkpoint: string;
  diff: Diff;
}

export class Checkpoints {
  readonly limits: CheckpointLimits;
  private readonly store: WorkspaceStore;
  private readonly client: ContainerClient;
  /** One checkpoint at a time per tenant, so that two count each other's bytes. */
  private readonly tenants = new WorkspaceLocks();

  constructor(store: WorkspaceStore, client: ContainerClient, limits: CheckpointLimits) {
    this.store = store;
    this.client = client;
    this.limits = limits;
  }

  create(tenant: string, workspace: string, label?: string): Promise<CheckpointInfo> {
    return this.store.operate(tenant, workspace, (ws, hold) => this.take(ws, label ?? null, hold));
  }

  async list(tenant: string, workspace: string): Promise<CheckpointInfo[]> {
    const info = await this.store.get(tenant, workspace);
    return (await checkpointsOf(this.client, info.id)).map(publicInfo);
  }

  remove(tenant: string, workspace: string, id: string): Promise<void> {
    return this.store.operate(tenant, workspace, async (ws) => {
      await removeCheckpoint(this.client, (await this.find(ws, id)).id);
    });
  }

  /**
   * Takes a checkpoint of a workspace whose lock the caller holds (an exec
   * with `checkpoint: true` takes one this way before its run). With `hold`,
   * the copy's container is removed after the answer, under that lock.
   */
  async take(ws: Workspace, label: string | null, hold?: Hold): Promise<CheckpointInfo> {
    const existing = await checkpointsOf(this.client, ws.id);
    if (existing.length >= this.limits.perWorkspace) {
      throw new AirlockError(
        "quota_exceeded",
        `quota checkpoints per workspace reached: workspace ${ws.id} has ${existing.length} of ${this.limits.perWorkspace} checkpoints (AIRLOCK_CHECKPOINTS_PER_WORKSPACE); delete one first`,
        {
          details: {
            limit: "AIRLOCK_CHECKPOINTS_PER_WORKSPACE",
            max: this.limits.perWorkspace,
            used: existing.length,
          },
          retryAfterSeconds: 60,
        },
      );
    }
    return this.tenants.run(ws.tenant, () => this.copyToCheckpoint(ws, label, hold));
  }

  private async copyToCheckpoint(
    ws: Workspace,
    label: string | null,
    hold: Hold | undefined,
  ): Promise<CheckpointInfo> {
    const used = await checkpointBytesOf(this.client, ws.tenant);
    phase("quota");
    const id = newId("cp_");
    const createdAt = Date.now();
    const common = {
      [LABEL_CHECKPOINT_OF]: ws.id,
      [LABEL_TENANT]: ws.tenant,
      [LABEL_CREATED]: String(createdAt),
    };
    await this.client.createVolume(dataVolumeOf(id), { ...common, [LABEL_CHECKPOINT]: id });
    // The copy's container goes after the answer, unless the checkpoint fails: its volume can go only then.
    let removal: Promise<unknown> = Promise.resolve();
    try {
      // Mounted once at /workspace, the new volume takes the image's /workspace
      // owner, so the profile's user can fill it.
      await this.store.withVolumeContainer(ws.profile, dataVolumeOf(id), async () => undefined);
      phase("volume");
      const budget = Math.max(0, this.limits.bytesPerTenant - used);
      const result = await this.run(
        ws,
        CHECKPOINT_SCRIPT,
        [String(budget)],
        [
          { volume: ws.volume, target: SRC, readOnly: true },
          { volume: dataVolumeOf(id), target: DST, readOnly: false },
        ],
        {
          hold: (work) => {
            removal = work;
          },
        },
      );
      const report = parseTreeReport(result.stdout);
      if (result.exitCode === OVER_BUDGET) throw this.overBudget(ws.tenant, used, report.bytes);
      if (result.exitCode !== UNREADABLE) assertOk(result, `checkpointing ${ws.id}`);
      assertSafeTree(report, `workspace ${ws.id} cannot be checkpointed`);
      await this.client.createVolume(metaVolumeOf(id), {
        ...common,
        [LABEL_CHECKPOINT_META]: id,
        ...(label === null ? {} : { [LABEL_CHECKPOINT_LABEL]: label }),
        [LABEL_CHECKPOINT_BYTES]: String(report.bytes),
        [LABEL_CHECKPOINT_ENTRIES]: String(report.entries),
      });
      phase("marker");
      if (hold === undefined) await removal;
      else hold(removal);
      return {
        id,
        label,
        createdAt: new Date(createdAt).toISOString(),
        bytes: report.bytes,
        entries: report.entries,
      };
    } catch (err) {
      await removal.catch(() => undefined);
      await removeCheckpoint(this.client, id).catch((e: unknown) =>
        this.store.warn(`removing the unfinished checkpoint ${id}`, e),
      );
      throw err;
    }
  }

  private overBudget(tenant: string, used: number, bytes: number): AirlockError {
    const max = this.limits.bytesPerTenant;
    return new AirlockError(
      "quota_exceeded",
      `quota checkpoint bytes per tenant reached: tenant ${tenant}'s checkpoints hold ${used} bytes, and this one would add ${bytes}, past ${max} (AIRLOCK_CHECKPOINT_BYTES_PER_TENANT); delete checkpoints first`,
      {
        details: { limit: "AIRLOCK_CHECKPOINT_BYTES_PER_TENANT", max, used, bytes },
        retryAfterSeconds: 60,
      },
    );
  }

  /**
   * Puts the workspace back as the checkpoint has it, exclusively, and answers
   * with the diff that made (from the workspace before to the checkpoint).
   */
  restore(tenant: string, workspace: string, checkpoint: string): Promise<RestoreResult> {
    return this.store.exclusive(tenant, workspace, "restored", async (ws, hold) => {
      const cp = await this.find(ws, checkpoint);
      const stage = `.airlock-restore-${randomBytes(8).toString("hex")}`;
      const result = await this.run(
        ws,
        RESTORE_SCRIPT,
        [stage, this.fullFlag(ws), String(ws.profile.diff.patchMaxBytes)],
        [
          { volume: dataVolumeOf(cp.id), target: SRC, readOnly: true },
          { volume: ws.volume, target: DST, readOnly: false },
        ],
        { returnFiles: true, hold },
      );
      // Its files changed behind the manifest cache's back.
      this.store.forgetManifest(ws.id);
      assertOk(result, `restoring ${ws.id} to ${cp.id}`);
      // It holds the checkpoint's files: their size, counted alike (regular files, each link at its size).
      this.store.setSize(ws, cp.bytes);
      return { checkpoint: cp.id, diff: diffOfSides(result.stdout, result.files, ws.profile) };
    });
  }

  /**
   * `count` new workspaces of the tenant and profile, each holding what the
   * workspace holds now, or what `checkpoint` has. All or none: a failure
   * removes the ones made.
   */
  fork(
    tenant: string,
    workspace: string,
    options: { checkpoint?: string | undefined; count: number },
    limits: readonly WorkspaceLimit[],
  ): Promise<WorkspaceInfo[]> {
    if (
      !Number.isInteger(options.count) ||
      options.count < 1 ||
      options.count > this.limits.forkMax
    ) {
      throw new AirlockError(
        "invalid_request",
        `count must be between 1 and ${this.limits.forkMax} (AIRLOCK_FORK_MAX); got ${options.count}`,
        { details: { field: "count", limit: "AIRLOCK_FORK_MAX", max: this.limits.forkMax } },
      );
    }
    return this.store.operate(tenant, workspace, async (ws) => {
      const cp =
        options.checkpoint === undefined ? undefined : await this.find(ws, options.checkpoint);
      const made: WorkspaceInfo[] = [];
      try {
        for (let i = 0; i < options.count; i++) {
          made.push(await this.store.create(tenant, ws.profile.name, [], limits));
        }
        const dests = made.map((info, i) => ({
          volume: volumeOf(info.id),
          target: `/airlock/d${i}`,
          readOnly: false,
        }));
        const source =
          cp === undefined
            ? { volume: ws.volume, target: SRC, readOnly: true }
            : { volume: dataVolumeOf(cp.id), target: SRC, readOnly: true };
        const from = cp === undefined ? SRC : `${SRC}/tree`;
        const check = cp === undefined ? "1" : "0";
        // Its container is removed before the answer: the new workspaces' volumes are free then.
        const result = await this.run(
          ws,
          FORK_SCRIPT,
          [from, check, ...dests.map((d) => d.target)],
          [source, ...dests],
        );
        // Made empty, filled behind the store's back: their sizes are measured when next needed.
        for (const info of made) this.store.forgetManifest(info.id);
        if (result.exitCode !== UNREADABLE) assertOk(result, `forking ${ws.id}`);
        if (cp === undefined)
          assertSafeTree(parseTreeReport(result.stdout), `workspace ${ws.id} cannot be forked`);
        return made;
      } catch (err) {
        for (const info of made) {
          await this.store
            .remove(tenant, info.id)
            .catch((e: unknown) => this.store.warn(`removing the unfinished fork ${info.id}`, e));
        }
        throw err;
      }
    });
  }

  /** The diff from checkpoint `from` to checkpoint `to`, or to the workspace now ("current"). */
  diff(tenant: string, workspace: string, from: string, to: string): Promise<Diff> {
    return this.store.operate(tenant, workspace, async (ws, hold) => {
      const a = await this.find(ws, from);
      const b = to === "current" ? undefined : await this.find(ws, to);
      const result = await this.run(
        ws,
        DIFF_SCRIPT,
        [b === undefined ? "ws" : "cp", this.fullFlag(ws), String(ws.profile.diff.patchMaxBytes)],
        [
          { volume: dataVolumeOf(a.id), target: SRC, readOnly: true },
          { volume: b === undefined ? ws.volume : dataVolumeOf(b.id), target: DST, readOnly: true },
        ],
        { returnFiles: true, hold },
      );
      assertOk(result, `diffing ${ws.id}`);
      return diffOfSides(result.stdout, result.files, ws.profile);
    });
  }

  /** Whether every entry is a candidate: under gVisor, records say nothing across sandboxes. */
  private fullFlag(ws: Workspace): string {
    return ws.profile.runtime === "runsc" ? "1" : "0";
  }

  private async find(ws: Workspace, id: string): Promise<StoredCheckpoint> {
    const found = await findCheckpoint(this.client, ws.id, id);
    if (found === undefined) {
      throw new AirlockError(
        "not_found",
        `checkpoint ${JSON.stringify(id)} of workspace ${ws.id} does not exist`,
        { details: { checkpoint: id } },
      );
    }
    return found;
  }

  /**
   * A system job on the workspace's profile with the volumes beside its own
   * /workspace. With `hold`, it answers before its container is removed, and
   * the removal keeps the workspace's lock (which guards those volumes).
   */
  private run(
    ws: Workspace,
    script: string,
    args: string[],
    mounts: JobMount[],
    options: { returnFiles?: boolean; hold?: Hold | undefined } = {},
  ): Promise<ExecResult> {
    const base = profileJob(ws.profile, ws.tenant, ["/bin/sh", "-c", script, "airlock", ...args], {
      limits: { ...ws.profile.limits.max },
    });
    const job: Job = { ...base, mounts, returnFiles: options.returnFiles === true ? ["**"] : [] };
    const { hold } = options;
    return this.store.runJob(job, hold === undefined ? {} : { afterAnswer: hold });
  }
}

function publicInfo(cp: StoredCheckpoint): CheckpointInfo {
  return {
    id: cp.id,
    label: cp.label,
    createdAt: cp.createdAt,
    bytes: cp.bytes,
    entries: cp.entries,
  };
}

function assertOk(result: ExecResult, what: string): void {
  if (result.status === "ok") return;
  throw new AirlockError(
    "internal",
    `${what} failed (${result.status}, exit ${result.exitCode}): ${result.stderr.trim().slice(0, 2000)}`,
  );
}

function newId(prefix: string): string {
  return `${prefix}${randomBytes(13).toString("hex").slice(0, 20)}`;
}
