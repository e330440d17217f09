// One job's container lifecycle, in order, in one place:
// create → attach → start (or take a parked container from the warm pool, and
// set this job's limits on it where the runtime can) → [a workspace job: the
// launcher lists /workspace, the gateway reads what its manifest cache cannot
// vouch for] → copy files in → feed the job on stdin → stream output under
// caps and a wall-clock deadline → wait → inspect (OOM?) → copy /workspace out
// (a workspace job: only what changed) → diff → remove container and volume,
// always, in `finally`. The steps live beside it: the run through the launcher
// in job-run.ts, the reading of /workspace before and after in job-workspace.ts.
import { constants } from "node:os";
import { AirlockError } from "../core/errors.ts";
import type { Job } from "../core/job.ts";
import type { CompileStage, ExecResult, ExecStatus } from "../core/schemas.ts";
import { phase } from "../core/timing.ts";
import type { ScanResult } from "./archive.ts";
import { containerSpec, limitSettings, sameContainerLimits } from "./container-spec.ts";
import { type BeforeEntry, computeDiff } from "./diff.ts";
import type { ContainerClient } from "./docker.ts";
import type { Egress, JobNetwork } from "./egress-network.ts";
import {
  type CompileOutcome,
  compilePhaseLimits,
  type RunOptions,
  type RunOutcome,
  runJob,
} from "./job-run.ts";
import { JobWorkspace } from "./job-workspace.ts";
import type { ManifestCache } from "./manifest-cache.ts";
import type { Parked, WarmPool } from "./pool.ts";
import type { MeterWatch, WorkspaceMeter } from "./workspace-meter.ts";

export { JobCancelledError, type RunOptions, STREAMED_RESULT_BYTES } from "./job-run.ts";

export interface SandboxDeps {
  client: ContainerClient;
  instanceId: string;
  /** Extra time past the job's timeout before its leftovers count as orphans. */
  orphanGraceMs: number;
  /** Logs a cleanup failure; the job's own result is not affected by it. */
  warn: (message: string, err: unknown) => void;
  /** Started containers waiting for a job; without one (or when empty) jobs start cold. */
  pool?: WarmPool | undefined;
  /** Takes the removal of a finished job's container, so the answer need not wait for it. */
  background?: ((work: Promise<void>) => void) | undefined;
  /**
   * Keeps the job's queue slot taken, after its answer, until `work` ends: the
   * removal of a container the engine had not finished killing still counts
   * against the concurrency limit.
   */
  holdSlot?: ((work: Promise<void>) => void) | undefined;
  /** What this gateway last saw of each workspace, so a workspace job reads only what changed. */
  manifests?: ManifestCache | undefined;
  /** Watches a workspace job's workspace while it runs, and stops it past its size cap. */
  meter?: WorkspaceMeter | undefined;
  /** Networks for jobs that were granted some (egress-network.ts); without it such jobs are refused. */
  egress?: Egress | undefined;
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);

export async function runSandbox(
  deps: SandboxDeps,
  job: Job,
  options: RunOptions = {},
): Promise<ExecResult> {
  const net = await leaseNetwork(deps, job);
  // One-shot jobs take a parked container when there is one; a workspace job
  // needs its own volume mounted, a job with a network its own network, and a
  // system job with other volumes (a checkpoint's) those, so they always start cold.
  const limits = compilePhaseLimits(job);
  const parked =
    job.workspace === undefined && net === undefined && job.mounts === undefined
      ? deps.pool?.take(job.profile, limits)
      : undefined;
  // The proxy's variables last: the request's env cannot point them elsewhere.
  if (net !== undefined) job = { ...job, env: { ...job.env, ...net.env } };
  // A workspace's volume outlives the container; a one-shot job's volume is its own.
  const volume = parked?.volume ?? job.workspace?.volume ?? `airlock-${job.id}`;
  let containerId: string | undefined = parked?.id;
  let killUnconfirmed = false;
  /** The job ended with a result: its process is gone, nothing of it still runs. */
  let ended = false;
  let watch: MeterWatch | undefined;
  try {
    const id = await readyContainer(deps, job, parked, volume, net);
    containerId = id;
    phase(parked === undefined ? "create" : "handoff");
    const workspace = new JobWorkspace(deps, id, job);
    await workspace.uploadOneShot();
    if (job.files.length > 0) phase("upload");
    watch = watchSize(deps, job, id);
    const { prepare } = workspace;
    // The watch is armed as the job's code starts (its files are in by then).
    const prepared =
      prepare === undefined || watch === undefined
        ? prepare
        : async (listing: Parameters<typeof prepare>[0]) => {
            await prepare(listing);
            watch?.arm();
          };
    const run = await runJob(deps.client, id, job, options, parked?.stream, prepared);
    await watch?.stop();
    killUnconfirmed = run.killUnconfirmed;
    const scan = await workspace.readAfter(run);
    const result = resultOf(job, run, workspace.before, scan, watch?.tripped !== undefined);
    phase("diff");
    ended = !killUnconfirmed;
    return net === undefined ? result : { ...result, egress: net.entries() };
  } finally {
    await watch?.stop();
    // With a background hook a one-shot answer does not wait for the engine's
    // removal; a workspace job's waits unless its caller takes the removal
    // (afterAnswer) and holds the workspace's lock until it ends, so the volume
    // is free when the lock is released. So does a job with other volumes
    // mounted (a checkpoint's): those are free once it has answered, unless
    // its caller holds the lock that guards them.
    const handOff =
      job.workspace === undefined && job.mounts === undefined
        ? deps.background
        : options.afterAnswer;
    const waited = deps.background === undefined || handOff === undefined;
    // A parked container goes back to its pool to be removed: a removal the
    // engine refuses (it is restarting) is retried there, not left to the reaper.
    const remove = (): Promise<unknown> =>
      parked !== undefined && deps.pool !== undefined
        ? deps.pool.dispose(parked)
        : removeAll(deps, containerId, job.workspace === undefined ? volume : undefined);
    // Nothing waits for the removal of a job that has ended: the engine's work
    // (and the pool's refill) starts once the answer is on its way, not on the
    // same cores while the answer's last steps (a networked store's write) wait.
    const removal =
      waited || !ended || options.answered === undefined
        ? remove()
        : options.answered.then(remove, remove);
    // The network is removed once the container is gone, after the answer
    // where there is a background (it is no other job's: nothing waits for it).
    const released =
      net === undefined
        ? undefined
        : removal.then(() =>
            net
              .release()
              .catch((err: unknown) => deps.warn(`removing network ${net.network}`, err)),
          );
    const cleanup: Promise<void> = removal.then(() => undefined);
    if (released !== undefined) {
      if (deps.background === undefined) await released;
      else deps.background(released);
    }
    if (deps.background === undefined || handOff === undefined) {
      await cleanup;
      phase("remove");
    } else {
      if (handOff !== deps.background) deps.background(cleanup);
      handOff(cleanup);
    }
    if (killUnconfirmed) deps.holdSlot?.(cleanup);
  }
}

/** The job's own egress network when it was granted networks. */
async function leaseNetwork(deps: SandboxDeps, job: Job): Promise<JobNetwork | undefined> {
  if (job.egress === undefined || job.egress.networks.length === 0) return undefined;
  if (deps.egress === undefined) {
    throw new AirlockError(
      "invalid_request",
      "this gateway runs no egress proxy: networks cannot be used",
      {
        details: { field: "networks" },
      },
    );
  }
  return deps.egress.lease(job.id, job.egress);
}

/** A new container for the job, or the parked one with this job's limits set on it. */
async function readyContainer(
  deps: SandboxDeps,
  job: Job,
  parked: Parked | undefined,
  volume: string,
  net: JobNetwork | undefined,
): Promise<string> {
  if (parked === undefined) {
    const compileMs = job.compile?.limits.timeoutMs ?? 0;
    const deadline = Date.now() + compileMs + job.limits.timeoutMs + deps.orphanGraceMs;
    return deps.client.create(
      containerSpec(job.profile, compilePhaseLimits(job), {
        instanceId: deps.instanceId,
        jobId: job.id,
        volume,
        deadline,
        egress:
          net === undefined
            ? undefined
            : { network: net.network, mounts: net.mounts, runtime: net.runtime(job.profile) },
        mounts: job.mounts,
      }),
    );
  }
  const limits = compilePhaseLimits(job);
  if (!sameContainerLimits(limits, job.profile.limits.default)) {
    // Parked with the profile's defaults: this job's limits are set before its code
    // exists (the pool hands out none whose runtime cannot take them).
    await deps.client.update(parked.id, limitSettings(limits));
  }
  return parked.id;
}

/**
 * A workspace job with a size cap is watched while it runs (workspace-meter.ts):
 * past the cap, its container is killed, and it ends workspace_full.
 */
function watchSize(deps: SandboxDeps, job: Job, containerId: string): MeterWatch | undefined {
  const cap = job.workspace?.sizeCapBytes;
  if (deps.meter === undefined || job.workspace === undefined || cap === undefined) return;
  return deps.meter.watch(
    job.profile,
    job.workspace.volume,
    cap,
    job.limits.timeoutMs + (job.compile?.limits.timeoutMs ?? 0),
    () =>
      void deps.client
        .kill(containerId)
        .catch((err: unknown) => deps.warn(`stopping ${job.id} past its workspace cap`, err)),
  );
}

function resultOf(
  job: Job,
  run: RunOutcome,
  before: Map<string, BeforeEntry>,
  scan: ScanResult,
  /** The meter stopped the run past its workspace's size cap. */
  full: boolean,
): ExecResult {
  const outcome = computeDiff(before, scan.entries, {
    patchMaxBytes: job.profile.diff.patchMaxBytes,
    returnMaxBytes: job.profile.diff.returnMaxBytes,
    returnFiles: job.returnFiles,
    truncated: scan.truncated,
  });
  const killed = run.killedFor !== undefined || full;
  const compile = run.compile === undefined ? undefined : compileStage(run.compile, run);
  if (compile !== undefined && compile.status !== "ok") {
    // Nothing ran: the result is the compile's, and the workspace as the compile left it.
    return {
      id: job.id,
      status: "compile_error",
      exitCode: null,
      signal: null,
      stdout: "",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 0,
      usage: run.usage,
      diff: outcome.diff,
      files: outcome.files,
      filesOmitted: outcome.filesOmitted,
      ...(job.workspace === undefined ? {} : { workspaceBytes: scan.totalBytes }),
      compile,
    };
  }
  return {
    id: job.id,
    status: full ? "workspace_full" : statusOf(job, run, scan),
    exitCode: killed ? null : run.exitCode,
    signal: killed ? "SIGKILL" : signalOf(run.exitCode),
    stdout: run.stdout.toString(),
    stderr: run.stderr.toString(),
    stdoutTruncated: run.stdout.truncated,
    stderrTruncated: run.stderr.truncated,
    durationMs: Math.round(run.endedAt - run.startedAt),
    usage: run.usage,
    diff: outcome.diff,
    files: outcome.files,
    filesOmitted: outcome.filesOmitted,
    ...(job.workspace === undefined ? {} : { workspaceBytes: scan.totalBytes }),
    ...(compile === undefined ? {} : { compile }),
  };
}

/** The compile stage of the result: killed for its time limit, OOM-killed, failed or ok. */
function compileStage(c: CompileOutcome, run: RunOutcome): CompileStage {
  let status: CompileStage["status"] = c.exitCode === 0 ? "ok" : "error";
  if (c.killedFor === "timeout") status = "timeout";
  // The program never ran: an OOM kill of the job is the compiler's.
  else if (c.exitCode !== 0 && run.oom) status = "oom";
  else if (c.exitCode === undefined && c.killedFor === undefined)
    status = run.oom ? "oom" : "error";
  return {
    status,
    exitCode: c.killedFor === undefined ? (c.exitCode ?? null) : null,
    stdout: c.stdout.toString(),
    stderr: c.stderr.toString(),
    durationMs: c.durationMs,
  };
}

/** Removes the job's container and volume; false when the container's removal failed. */
async function removeAll(
  deps: SandboxDeps,
  containerId: string | undefined,
  volume: string | undefined,
): Promise<boolean> {
  let removed = true;
  if (containerId !== undefined) {
    await deps.client.remove(containerId).catch((err: unknown) => {
      removed = false;
      deps.warn(`removing container ${containerId}`, err);
    });
  }
  if (volume !== undefined) {
    await deps.client
      .removeVolume(volume)
      .catch((err: unknown) => deps.warn(`removing volume ${volume}`, err));
  }
  return removed;
}

function statusOf(job: Job, run: RunOutcome, scan: ScanResult): ExecStatus {
  if (run.killedFor === "timeout") return "timeout";
  if (run.killedFor === "output_limit") return "output_limit";
  if (run.oom) return "oom";
  const status = run.exitCode === 0 ? "ok" : "error";
  const cap = job.workspace?.sizeCapBytes;
  return cap !== undefined && scan.totalBytes > cap ? "workspace_full" : status;
}

function signalOf(exitCode: number): string | null {
  if (exitCode <= 128 || exitCode > 128 + 64) return null;
  return SIGNAL_NAMES.get(exitCode - 128) ?? null;
}
