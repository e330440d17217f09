// One job's container lifecycle, in order, in one place:
// create → copy files in → attach → start → feed stdin → stream output under
// caps and a wall-clock deadline → wait → inspect (OOM?) → copy /workspace out
// → diff → remove container and volume, always, in `finally`.
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import type { Duplex } from "node:stream";
import type { ExecResult, ExecStatus } from "../api/schemas.ts";
import { packFiles, parseOwner, type ScannedEntry, scanArchive, sha256 } from "./archive.ts";
import { containerSpec } from "./container-spec.ts";
import { type BeforeEntry, computeDiff, returnMatcher } from "./diff.ts";
import type { ContainerClient, Usage } from "./docker.ts";
import type { Job, OutputListener } from "./job.ts";
import { jobPreamble, parseTrailer } from "./launcher.ts";
import { CappedBuffer, FrameDemuxer, TrailerScanner } from "./output.ts";
import { WORKSPACE_DIR } from "./paths.ts";

export interface SandboxDeps {
  client: ContainerClient;
  instanceId: string;
  /** Extra time past the job's timeout before its leftovers count as orphans. */
  orphanGraceMs: number;
  /** Logs a cleanup failure; the job's own result is not affected by it. */
  warn: (message: string, err: unknown) => void;
}

export interface RunOptions {
  signal?: AbortSignal | undefined;
  onOutput?: OutputListener | undefined;
}

export class JobCancelledError extends Error {
  override name = "JobCancelledError";
}

type KillReason = "timeout" | "output_limit" | "cancelled";

/** How long to wait for the attach stream to drain once the container has exited. */
const STREAM_DRAIN_MS = 2000;

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);

export async function runSandbox(
  deps: SandboxDeps,
  job: Job,
  options: RunOptions = {},
): Promise<ExecResult> {
  const { client } = deps;
  const owner = parseOwner(job.profile.user);
  // A workspace's volume outlives the container; a one-shot job's volume is its own.
  const volume = job.workspace?.volume ?? `airlock-${job.id}`;
  const deadline = Date.now() + job.limits.timeoutMs + deps.orphanGraceMs;
  const spec = containerSpec(job.profile, job.limits, {
    instanceId: deps.instanceId,
    jobId: job.id,
    volume,
    deadline,
  });
  let containerId: string | undefined;
  try {
    containerId = await client.create(spec);
    // One-shot: /workspace held only the uploaded files. Workspace: whatever it held before this call.
    const before =
      job.workspace === undefined
        ? uploadManifest(job)
        : await scanBefore(client, containerId, job);
    const dirs = job.workdir === "" ? [] : [job.workdir];
    if (job.files.length > 0 || dirs.length > 0) {
      await client.putArchive(containerId, WORKSPACE_DIR, packFiles(job.files, owner, dirs));
    }
    const run = await execute(client, containerId, job, options);
    const exit = await client.inspectExit(containerId);
    const scan = await scanWorkspace(client, containerId, job, before);
    const outcome = computeDiff(before, scan.entries, {
      patchMaxBytes: job.profile.diff.patchMaxBytes,
      returnMaxBytes: job.profile.diff.returnMaxBytes,
      returnFiles: job.returnFiles,
      truncated: scan.truncated,
    });
    let status = statusOf(run, exit, job);
    const cap = job.workspace?.sizeCapBytes;
    if (cap !== undefined && scan.totalBytes > cap && (status === "ok" || status === "error")) {
      status = "workspace_full";
    }
    const killed = run.killedFor !== undefined;
    return {
      id: job.id,
      status,
      exitCode: killed ? null : run.exitCode,
      signal: killed ? "SIGKILL" : signalOf(run.exitCode),
      stdout: run.stdout.toString(),
      stderr: run.stderr.toString(),
      stdoutTruncated: run.stdout.overflowed,
      stderrTruncated: run.stderr.overflowed,
      durationMs: Math.round(run.endedAt - run.startedAt),
      usage: run.usage,
      diff: outcome.diff,
      files: outcome.files,
      filesOmitted: outcome.filesOmitted,
      ...(job.workspace === undefined ? {} : { workspaceBytes: scan.totalBytes }),
    };
  } finally {
    if (containerId !== undefined) {
      await client
        .remove(containerId)
        .catch((err: unknown) => deps.warn(`removing container ${containerId}`, err));
    }
    if (job.workspace === undefined) {
      await client
        .removeVolume(volume)
        .catch((err: unknown) => deps.warn(`removing volume ${volume}`, err));
    }
  }
}

interface RunOutcome {
  exitCode: number;
  killedFor: KillReason | undefined;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  usage: Usage;
  startedAt: number;
  endedAt: number;
}

async function execute(
  client: ContainerClient,
  id: string,
  job: Job,
  options: RunOptions,
): Promise<RunOutcome> {
  const nonce = randomBytes(16).toString("hex");
  const stdout = new CappedBuffer(job.limits.outputBytes);
  const stderr = new CappedBuffer(job.limits.outputBytes);
  const scanner = new TrailerScanner(nonce);
  let killedFor: KillReason | undefined;
  let usage: Usage = { cpuMs: null, memoryPeakBytes: null };
  let killing: Promise<void> | undefined;

  const killFor = (reason: KillReason): void => {
    if (killedFor !== undefined) return;
    killedFor = reason;
    // Sample the cgroup before the kill: once stopped, the engine has nothing to report.
    killing = client
      .usage(id)
      .then((u) => {
        usage = u;
      })
      .catch(() => undefined)
      .then(() => client.kill(id));
  };

  const emit = (name: "stdout" | "stderr", data: Buffer): void => {
    if (data.length === 0) return;
    const sink = name === "stdout" ? stdout : stderr;
    // Streamed output obeys the same cap as the result: nothing past it goes out.
    const kept = sink.push(data);
    if (kept.length > 0) options.onOutput?.(name, kept);
    if (sink.overflowed) killFor("output_limit");
  };
  const demux = new FrameDemuxer((name, payload) => {
    emit(name, name === "stdout" ? scanner.push(payload) : payload);
  });

  const stream = await client.attach(id);
  const drained = streamEnd(stream);
  stream.on("data", (chunk: Buffer) => demux.push(chunk));

  const onAbort = () => killFor("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    if (options.signal?.aborted)
      throw new JobCancelledError("the client went away before the job started");
    await client.start(id);
    const startedAt = performance.now();
    timer = setTimeout(() => killFor("timeout"), job.limits.timeoutMs);
    const cwd = job.workdir === "" ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${job.workdir}`;
    stream.write(jobPreamble(nonce, { cwd, env: job.env, argv: job.argv }));
    if (job.stdin.length > 0) stream.write(job.stdin);
    stream.end();
    const exitCode = await client.wait(id);
    const endedAt = performance.now();
    clearTimeout(timer);
    await killing;
    await Promise.race([drained, sleep(STREAM_DRAIN_MS)]);
    emit("stdout", scanner.flush());
    if (killedFor === "cancelled")
      throw new JobCancelledError("the client went away; the job was killed");
    const trailer = scanner.found ? parseTrailer(scanner.trailerText()) : undefined;
    if (trailer !== undefined)
      usage = { cpuMs: trailer.cpuMs, memoryPeakBytes: trailer.memoryPeakBytes };
    return { exitCode, killedFor, stdout, stderr, usage, startedAt, endedAt };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    stream.destroy();
  }
}

function streamEnd(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

const SIGKILL_EXIT = 128 + 9;

/**
 * OOM needs two witnesses: the engine's OOMKilled flag and a SIGKILL-shaped exit
 * (or a peak at the limit) — neither alone is trusted, since user code can exit
 * 137 by itself and the flag can be set for a child whose parent then exits 0.
 */
function statusOf(run: RunOutcome, exit: { oomKilled: boolean }, job: Job): ExecStatus {
  if (run.killedFor === "timeout") return "timeout";
  if (run.killedFor === "output_limit") return "output_limit";
  const limit = job.limits.memoryMb * 1024 * 1024;
  const atLimit = run.usage.memoryPeakBytes !== null && run.usage.memoryPeakBytes >= limit * 0.95;
  if (
    run.exitCode !== 0 &&
    (exit.oomKilled || atLimit) &&
    (run.exitCode === SIGKILL_EXIT || exit.oomKilled)
  ) {
    return "oom";
  }
  return run.exitCode === 0 ? "ok" : "error";
}

function signalOf(exitCode: number): string | null {
  if (exitCode <= 128 || exitCode > 128 + 64) return null;
  return SIGNAL_NAMES.get(exitCode - 128) ?? null;
}

function uploadManifest(job: Job): Map<string, BeforeEntry> {
  const max = job.profile.diff.patchMaxBytes;
  const map = new Map<string, BeforeEntry>();
  for (const file of job.files) {
    const entry: BeforeEntry = { sha256: sha256(file.content) };
    if (file.content.length <= max) entry.content = file.content;
    map.set(file.path, entry);
  }
  return map;
}

/** The workspace as it is before this call, keeping small files (within the patch budget) to patch against. */
async function scanBefore(
  client: ContainerClient,
  id: string,
  job: Job,
): Promise<Map<string, BeforeEntry>> {
  const { diff } = job.profile;
  let kept = 0;
  const scan = await scanArchive(await client.getArchive(id, WORKSPACE_DIR), {
    prefix: "workspace/",
    maxBytes: diff.scanMaxBytes,
    maxEntries: diff.scanMaxEntries,
    keep: (_path, size) => size <= diff.patchMaxBytes,
    retain: (_entry, content) => {
      if (kept + content.length > diff.patchTotalBytes) return false;
      kept += content.length;
      return true;
    },
  });
  const map = new Map<string, BeforeEntry>();
  for (const [path, entry] of scan.entries) {
    map.set(
      path,
      entry.content === undefined
        ? { sha256: entry.sha256 }
        : { sha256: entry.sha256, content: entry.content },
    );
  }
  return map;
}

async function scanWorkspace(
  client: ContainerClient,
  id: string,
  job: Job,
  before: ReadonlyMap<string, BeforeEntry>,
) {
  const { diff } = job.profile;
  const wantReturn = returnMatcher(job.returnFiles);
  let patchBytes = 0;
  let returnBytes = 0;
  const archive = await client.getArchive(id, WORKSPACE_DIR);
  return scanArchive(archive, {
    prefix: "workspace/",
    maxBytes: diff.scanMaxBytes,
    maxEntries: diff.scanMaxEntries,
    keep: (path, size) =>
      size <= diff.patchMaxBytes || (wantReturn(path) && size <= diff.returnMaxBytes),
    // Only changed files are worth their bytes, and only within the profile's budgets.
    retain: (entry: ScannedEntry, content: Buffer) => {
      if (before.get(entry.path)?.sha256 === entry.sha256) return false;
      if (wantReturn(entry.path) && returnBytes + content.length <= diff.returnMaxBytes) {
        returnBytes += content.length;
        return true;
      }
      if (
        content.length <= diff.patchMaxBytes &&
        patchBytes + content.length <= diff.patchTotalBytes
      ) {
        patchBytes += content.length;
        return true;
      }
      return false;
    },
  });
}
