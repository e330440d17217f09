// One job's container lifecycle, in order, in one place:
// create → attach → start (or take a parked container from the warm pool, and
// set this job's limits on it) → [a workspace job: the launcher lists
// /workspace, the gateway reads what its manifest cache cannot vouch for] →
// copy files in → feed the job on stdin → stream output under caps and a
// wall-clock deadline → wait → inspect (OOM?) → copy /workspace out (a
// workspace job: only what changed) → diff → remove container and volume,
// always, in `finally`.
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import { type Duplex, PassThrough, type Readable } from "node:stream";
import { AirlockError } from "../core/errors.ts";
import type { Job, OutputListener } from "../core/job.ts";
import { WORKSPACE_DIR } from "../core/paths.ts";
import type { Limits } from "../core/profile.ts";
import type { ExecResult, ExecStatus } from "../core/schemas.ts";
import { packFiles, parseOwner, type ScanResult, sha256 } from "./archive.ts";
import { containerSpec, limitSettings } from "./container-spec.ts";
import { type BeforeEntry, computeDiff } from "./diff.ts";
import type { ContainerClient, Usage } from "./docker.ts";
import { jobHeader, jobLines, parseListingEnd, parseTrailer, type Trailer } from "./launcher.ts";
import { type Listing, ListingBuffer, listingCap, parseListing } from "./listing.ts";
import type { ManifestCache } from "./manifest-cache.ts";
import { CappedBuffer, FrameDemuxer, TrailerScanner } from "./output.ts";
import { beginOutsideUsage, jobUsage } from "./outside-usage.ts";
import type { WarmPool } from "./pool.ts";
import {
  afterFromListings,
  beforeFromListing,
  manifestOf,
  scanBefore,
  scanWorkspace,
} from "./workspace-scan.ts";

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
}

export interface RunOptions {
  signal?: AbortSignal | undefined;
  onOutput?: OutputListener | undefined;
  /** Resolves when a consumer that said it was full (onOutput returned false) can take more. */
  outputDrained?: (() => Promise<void>) | undefined;
}

export class JobCancelledError extends Error {
  override name = "JobCancelledError";
}

type KillReason = "timeout" | "output_limit" | "cancelled";

/**
 * A streamed job's output has gone out as events already: its final result
 * keeps only this much of each stream, so that many large streams at once do
 * not hold their whole output in the gateway (the cap that kills still counts it all).
 */
export const STREAMED_RESULT_BYTES = 64 * 1024;

/** How long to wait for the attach stream to drain once the container has exited. */
const STREAM_DRAIN_MS = 2000;

/**
 * How long an answer waits, after a kill, for the engine to say the container
 * has ended. gVisor sometimes needs ~30 s to tear down a sandbox a fork bomb
 * has filled (plain `docker kill` and `docker rm -f` alike, about one time in
 * six here): past this the job is answered as killed, and its container keeps
 * the job's slot until the engine has removed it (SandboxDeps.holdSlot).
 */
const KILL_CONFIRM_MS = 1000;

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
  // One-shot jobs take a parked container when there is one; a workspace job
  // needs its own volume mounted, so it always starts cold.
  const parked = job.workspace === undefined ? deps.pool?.take(job.profile.name) : undefined;
  // A workspace's volume outlives the container; a one-shot job's volume is its own.
  const volume = parked?.volume ?? job.workspace?.volume ?? `airlock-${job.id}`;
  const deadline = Date.now() + job.limits.timeoutMs + deps.orphanGraceMs;
  const spec = containerSpec(job.profile, job.limits, {
    instanceId: deps.instanceId,
    jobId: job.id,
    volume,
    deadline,
  });
  let containerId: string | undefined = parked?.id;
  let killUnconfirmed = false;
  try {
    if (containerId === undefined) containerId = await client.create(spec);
    else if (!sameLimits(job.limits, job.profile.limits.default)) {
      // Parked with the profile's defaults: this job's limits are set before its code exists.
      await client.update(containerId, limitSettings(job.limits));
    }
    const cid = containerId;
    const dirs = job.workdir === "" ? [] : [job.workdir];
    const upload = async () => {
      if (job.files.length > 0 || dirs.length > 0) {
        await client.putArchive(cid, WORKSPACE_DIR, packFiles(job.files, owner, dirs));
      }
    };
    // One-shot: /workspace held only the uploaded files. Workspace: whatever it
    // held before this call, told by the launcher's listing (made before the
    // job's files go in and before its code runs) and the manifest cache.
    let before: Map<string, BeforeEntry> | undefined;
    let beforeListing: Listing | undefined;
    let prepare: ((listing: RawListing) => Promise<void>) | undefined;
    if (job.workspace === undefined) {
      before = uploadManifest(job);
      await upload();
    } else {
      const ws = job.workspace;
      prepare = async (raw) => {
        beforeListing = usableListing(job, raw);
        before =
          beforeListing === undefined
            ? await scanBefore(client, cid, job)
            : await beforeFromListing(client, cid, job, beforeListing, deps.manifests?.get(ws.id));
        await upload();
      };
    }
    const run = await execute(client, cid, job, options, parked?.stream, prepare);
    killUnconfirmed = run.killUnconfirmed;
    if (before === undefined) throw new Error("the workspace before the run was never read");
    let scan: ScanResult;
    // What the launcher sends after the run gets as long as the job itself had;
    // past that, the engine reads /workspace instead.
    const stalled = setTimeout(
      () => run.workspaceTar?.destroy(new Error("the launcher's report did not end in time")),
      job.limits.timeoutMs,
    );
    try {
      scan = await scanAfter(deps, cid, job, before, beforeListing, run);
    } catch (err) {
      if (run.workspaceTar === undefined) throw err;
      // The launcher's tar was unreadable (an image without /bin/tar, say): ask the engine.
      deps.warn("the launcher's /workspace tar was unreadable; using the archive API", err);
      if (job.workspace !== undefined) deps.manifests?.delete(job.workspace.id);
      scan = await scanWorkspace(client, cid, job, before);
    } finally {
      clearTimeout(stalled);
      run.release();
    }
    const outcome = computeDiff(before, scan.entries, {
      patchMaxBytes: job.profile.diff.patchMaxBytes,
      returnMaxBytes: job.profile.diff.returnMaxBytes,
      returnFiles: job.returnFiles,
      truncated: scan.truncated,
    });
    let status = statusOf(run);
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
      stdoutTruncated: run.stdout.truncated,
      stderrTruncated: run.stderr.truncated,
      durationMs: Math.round(run.endedAt - run.startedAt),
      usage: run.usage,
      diff: outcome.diff,
      files: outcome.files,
      filesOmitted: outcome.filesOmitted,
      ...(job.workspace === undefined ? {} : { workspaceBytes: scan.totalBytes }),
    };
  } finally {
    const cleanup = removeAll(deps, containerId, job.workspace === undefined ? volume : undefined);
    // With a background hook a one-shot answer does not wait for the engine's
    // removal; a workspace job waits, so its volume is free when its lock is released.
    if (deps.background === undefined || job.workspace !== undefined) await cleanup;
    else deps.background(cleanup);
    if (killUnconfirmed) deps.holdSlot?.(cleanup);
  }
}

/**
 * The workspace after the run. A workspace job with both listings reads only
 * what changed and leaves its manifest in the cache; otherwise (a kill, a
 * timeout, a listing it cannot use) the whole workspace is read and the cache
 * forgets it, since nothing vouches for its stat records any more.
 */
async function scanAfter(
  deps: SandboxDeps,
  id: string,
  job: Job,
  before: Map<string, BeforeEntry>,
  beforeListing: Listing | undefined,
  run: RunOutcome,
): Promise<ScanResult> {
  const ws = job.workspace;
  if (ws === undefined) return scanWorkspace(deps.client, id, job, before, run.workspaceTar);
  const raw = await run.afterListing;
  const afterListing = raw === undefined ? undefined : usableListing(job, raw);
  if (beforeListing === undefined || afterListing === undefined || run.workspaceTar === undefined) {
    deps.manifests?.delete(ws.id);
    return scanWorkspace(deps.client, id, job, before);
  }
  const { scan, listed } = await afterFromListings(deps.client, id, job, before, {
    beforeListing,
    afterListing,
    tar: run.workspaceTar,
  });
  if (listed) deps.manifests?.set(ws.id, manifestOf(job, afterListing, scan.entries, before));
  else deps.manifests?.delete(ws.id);
  return scan;
}

/** The launcher's listing as it came, before it is judged usable. */
interface RawListing {
  data: Buffer;
  /** find's exit status; undefined when the end marker never came whole. */
  status: number | undefined;
  overflowed: boolean;
}

/** A listing find made without error, within the caps, and well-formed; otherwise undefined. */
function usableListing(job: Job, raw: RawListing): Listing | undefined {
  if (raw.status !== 0 || raw.overflowed) return undefined;
  return parseListing(raw.data, job.profile.diff.scanMaxEntries, job.profile.runtime !== "runsc");
}

async function removeAll(
  deps: SandboxDeps,
  containerId: string | undefined,
  volume: string | undefined,
) {
  if (containerId !== undefined) {
    await deps.client
      .remove(containerId)
      .catch((err: unknown) => deps.warn(`removing container ${containerId}`, err));
  }
  if (volume !== undefined) {
    await deps.client
      .removeVolume(volume)
      .catch((err: unknown) => deps.warn(`removing volume ${volume}`, err));
  }
}

interface RunOutcome {
  /**
   * On the fast path: /workspace as the launcher sent it (read it before
   * release); for a workspace job, only the entries it saw change.
   */
  workspaceTar: Readable | undefined;
  /** A workspace job on the fast path: the launcher's listing after the run, once it is in (undefined if it never is). */
  afterListing: Promise<RawListing | undefined> | undefined;
  /** Closes the attach stream; called once the workspace tar has been read. */
  release: () => void;
  exitCode: number;
  killedFor: KillReason | undefined;
  /** Killed, and the engine had not said the container ended within KILL_CONFIRM_MS. */
  killUnconfirmed: boolean;
  oom: boolean;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  usage: Usage;
  startedAt: number;
  endedAt: number;
}

const SIGKILL_EXIT = 128 + 9;

async function execute(
  client: ContainerClient,
  id: string,
  job: Job,
  options: RunOptions,
  /** A parked container's stream: attached and started already. */
  attached?: Duplex,
  /**
   * A workspace job: the launcher lists /workspace first, and this runs with
   * that listing before the rest of the job is sent (so before its code exists).
   */
  prepare?: (listing: RawListing) => Promise<void>,
): Promise<RunOutcome> {
  const nonce = randomBytes(16).toString("hex");
  const keep = options.onOutput === undefined ? job.limits.outputBytes : STREAMED_RESULT_BYTES;
  const stdout = new CappedBuffer(job.limits.outputBytes, keep);
  const stderr = new CappedBuffer(job.limits.outputBytes, keep);
  // The launcher marks the end of both streams; stderr's marker is just the nonce.
  const outScan = new TrailerScanner(nonce);
  const errScan = new TrailerScanner(nonce);
  // After the trailer, a one-shot job's launcher sends /workspace as a tar, ended by the nonce.
  const sendWorkspace = job.workspace === undefined;
  const tarEnd = new TrailerScanner(nonce);
  const workspaceTar = new PassThrough();
  // A workspace job's launcher lists /workspace before the job and again after it:
  // each listing ends with the nonce and find's status.
  const listing = prepare !== undefined;
  const cap = listingCap(job.profile.diff.scanMaxEntries);
  const beforeScan = listing ? new TrailerScanner(nonce) : undefined;
  const beforeList = new ListingBuffer(cap);
  let beforeListed: ((value: "listing") => void) | undefined;
  const beforeDone = new Promise<"listing">((resolve) => {
    beforeListed = resolve;
  });
  const afterScan = new TrailerScanner(nonce);
  const afterList = new ListingBuffer(cap);
  let afterListed: ((value: RawListing | undefined) => void) | undefined;
  const afterDone = new Promise<RawListing | undefined>((resolve) => {
    afterListed = resolve;
  });
  const rawListing = (buffer: ListingBuffer, scanner: TrailerScanner): RawListing => ({
    data: buffer.data(),
    status: parseListingEnd(scanner.trailerText()),
    overflowed: buffer.overflowed,
  });
  let killedFor: KillReason | undefined;
  let usage: Usage = { cpuMs: null, memoryPeakBytes: null };
  let killing: Promise<void> | undefined;
  let trailer: Trailer | undefined;
  let trailerSeen: (() => void) | undefined;
  const trailerDone = new Promise<"trailer">((resolve) => {
    trailerSeen = () => resolve("trailer");
  });

  let gaveUpTimer: NodeJS.Timeout | undefined;
  let giveUp: (() => void) | undefined;
  const gaveUp = new Promise<"gave up">((resolve) => {
    giveUp = () => resolve("gave up");
  });
  const killFor = (reason: KillReason): void => {
    if (killedFor !== undefined) return;
    killedFor = reason;
    gaveUpTimer = setTimeout(() => giveUp?.(), KILL_CONFIRM_MS);
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
    const within = sink.push(data);
    if (within.length > 0 && options.onOutput?.(name, within) === false) {
      const drained = options.outputDrained;
      if (drained !== undefined && !holds.has("consumer")) {
        hold("consumer");
        void drained().then(() => letGo("consumer"));
      }
    }
    if (sink.overflowed) killFor("output_limit");
  };
  const output = (name: "stdout" | "stderr", payload: Buffer) => {
    emit(name, (name === "stdout" ? outScan : errScan).push(payload));
    if (trailer === undefined && outScan.found && errScan.found) {
      trailer = parseTrailer(outScan.trailerText());
      if (trailer !== undefined) trailerSeen?.();
    }
  };
  if (beforeScan !== undefined) beforeScan.onAfter = (chunk) => output("stdout", chunk);
  const demux = new FrameDemuxer((name, payload) => {
    // Until the first listing is whole, stdout is the launcher's alone: no code of the job runs yet.
    if (name === "stdout" && beforeScan !== undefined && !beforeScan.complete) {
      beforeList.push(beforeScan.push(payload));
      if (beforeScan.complete) beforeListed?.("listing");
      return;
    }
    output(name, payload);
  });

  const stream = attached ?? (await client.attach(id));
  const drained = streamEnd(stream);
  // The attach stream is paused while anyone downstream is full (the diff
  // reading the launcher's tar, or a slow SSE client), and flows when none is.
  const holds = new Set<"tar" | "consumer">();
  const hold = (why: "tar" | "consumer") => {
    holds.add(why);
    stream.pause();
  };
  const letGo = (why: "tar" | "consumer") => {
    holds.delete(why);
    if (holds.size === 0) stream.resume();
  };
  stream.on("data", (chunk: Buffer) => demux.push(chunk));
  const feedTar = (chunk: Buffer) => {
    // Done, or the diff stopped reading (past its caps) and closed the tar.
    if (tarEnd.found || workspaceTar.destroyed) return;
    const bytes = tarEnd.push(chunk);
    // Backpressure: the attach stream waits while the diff reads the tar.
    if (bytes.length > 0 && !workspaceTar.write(bytes) && !holds.has("tar")) {
      hold("tar");
      workspaceTar.once("drain", () => letGo("tar"));
    }
    if (tarEnd.found) workspaceTar.end();
  };
  if (sendWorkspace) outScan.onAfter = feedTar;
  else if (listing) {
    // After the trailer: the listing after the run, then the tar of what changed.
    outScan.onAfter = (chunk) => {
      if (afterScan.complete) {
        feedTar(chunk);
        return;
      }
      afterList.push(afterScan.push(chunk));
      if (afterScan.complete) afterListed?.(rawListing(afterList, afterScan));
    };
    afterScan.onAfter = feedTar;
  }
  // A stream that ends before the listing is whole leaves none; nor does a tar given up on.
  void drained.then(() => afterListed?.(undefined));
  workspaceTar.once("close", () => afterListed?.(undefined));
  let handedOver = false;
  const release = () => {
    workspaceTar.destroy();
    afterListed?.(undefined);
    stream.destroy();
  };

  const onAbort = () => killFor("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    if (options.signal?.aborted)
      throw new JobCancelledError("the client went away before the job started");
    if (attached === undefined) await client.start(id);
    const exited = client.wait(id);
    exited.catch(() => undefined);
    stream.write(jobHeader(nonce, listing ? "list" : "tar"));
    if (prepare !== undefined && beforeScan !== undefined) {
      // The listing runs before the job's clock: its time limit is for its own code.
      let late: NodeJS.Timeout | undefined;
      const tooLate = new Promise<"late">((resolve) => {
        late = setTimeout(() => resolve("late"), job.limits.timeoutMs);
      });
      const got = await Promise.race([beforeDone, exited.then(() => "exit" as const), tooLate]);
      clearTimeout(late);
      if (got !== "listing") {
        await client.kill(id).catch(() => undefined);
        if (killedFor === "cancelled")
          throw new JobCancelledError("the client went away; the job was killed");
        throw new AirlockError(
          "internal",
          got === "late"
            ? `listing /workspace took longer than the job's time limit (${job.limits.timeoutMs} ms)`
            : "the sandbox ended before it listed /workspace",
        );
      }
      try {
        await prepare(rawListing(beforeList, beforeScan));
      } catch (err) {
        if (killedFor !== "cancelled") throw err;
      }
      // The client left while the workspace was read (the container may be killed already).
      if (killedFor === "cancelled" || options.signal?.aborted)
        throw new JobCancelledError("the client went away before the job started");
    }
    // gVisor shows the launcher no cgroup: the job's usage is read from outside.
    const outside =
      job.profile.runtime === "runsc" ? await beginOutsideUsage(client, id) : undefined;
    const startedAt = performance.now();
    timer = setTimeout(() => killFor("timeout"), job.limits.timeoutMs);
    const cwd = job.workdir === "" ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${job.workdir}`;
    stream.write(jobLines(nonce, { cwd, env: job.env, argv: job.argv }));
    if (job.stdin.length > 0) stream.write(job.stdin);
    stream.end();
    // Done when the launcher's trailer is in (the container stays up, idle) or,
    // when it never comes (killed, or the launcher itself died), when the container exits.
    const first = await Promise.race([trailerDone, exited.then(() => "exit" as const), gaveUp]);
    const endedAt = performance.now();
    clearTimeout(timer);
    let killUnconfirmed = false;
    const outcome = (exitCode: number, oom: boolean, tar: Readable | undefined): RunOutcome => ({
      workspaceTar: tar,
      afterListing: tar !== undefined && listing ? afterDone : undefined,
      release,
      exitCode,
      killedFor,
      killUnconfirmed,
      oom,
      stdout,
      stderr,
      usage,
      startedAt,
      endedAt,
    });
    // The fast path: the launcher's report stands on its own, unless only the
    // engine can tell an OOM kill (a SIGKILL-shaped exit under a runtime that
    // shows no cgroup inside, such as gVisor).
    const engineMustJudge = trailer?.oomKills === null && trailer.exitCode === SIGKILL_EXIT;
    if (
      first === "trailer" &&
      trailer !== undefined &&
      killedFor === undefined &&
      !engineMustJudge
    ) {
      usage = await jobUsage(outside, trailer);
      // Two witnesses: a SIGKILL-shaped exit and the cgroup's own OOM kill count.
      const oom = trailer.exitCode === SIGKILL_EXIT && (trailer.oomKills ?? 0) > 0;
      handedOver = true;
      return outcome(trailer.exitCode, oom, sendWorkspace || listing ? workspaceTar : undefined);
    }
    // Nobody will read the launcher's tar now: drop it, and let the stream flow
    // (it may be paused for backpressure) so the engine can finish with it.
    workspaceTar.destroy();
    holds.clear();
    stream.resume();
    if (engineMustJudge) {
      // gVisor kills inside its own kernel when the sandbox runs out of memory,
      // and the host's OOMKilled flag never sees it: the sandbox's peak, read
      // from the engine while it still runs, is the second witness then.
      usage = await client.usage(id).catch(() => usage);
    }
    // No usable trailer (or a runtime without cgroup files inside, where only the
    // engine can say OOM): end the container and ask the engine.
    if (first === "trailer") await client.kill(id);
    const confirmedExit = await Promise.race([exited, gaveUp.then(() => undefined)]);
    killUnconfirmed = confirmedExit === undefined;
    // Killed and never confirmed: SIGKILL is what was sent, and what the engine would report.
    const exitCode = confirmedExit ?? SIGKILL_EXIT;
    await Promise.race([killing, gaveUp]);
    // A container the engine has not stopped keeps its stream open: its end is not worth waiting for.
    if (!killUnconfirmed) await Promise.race([drained, sleep(STREAM_DRAIN_MS)]);
    emit("stdout", outScan.flush());
    emit("stderr", errScan.flush());
    if (killedFor === "cancelled")
      throw new JobCancelledError("the client went away; the job was killed");
    const code = first === "trailer" && trailer !== undefined ? trailer.exitCode : exitCode;
    // The meter's or the launcher's figures, unless neither had one and the engine's sample stands.
    if (trailer !== undefined && !engineMustJudge) {
      usage = await jobUsage(outside, trailer, usage);
    }
    const state = killUnconfirmed ? { oomKilled: false } : await client.inspectExit(id);
    // Two witnesses: a SIGKILL-shaped exit, and the engine's OOMKilled flag or a peak at the limit.
    // "At the limit" is generous: gVisor kills by its own accounting, measured here
    // as the sandbox's host-side peak at 80-90% of the limit.
    const limit = job.limits.memoryMb * 1024 * 1024;
    const atLimit = (usage.memoryPeakBytes ?? 0) >= limit * 0.75;
    const oom = killedFor === undefined && code === SIGKILL_EXIT && (state.oomKilled || atLimit);
    // The container has stopped: its /workspace comes through the engine's archive API.
    return outcome(code, oom, undefined);
  } finally {
    clearTimeout(timer);
    clearTimeout(gaveUpTimer);
    options.signal?.removeEventListener("abort", onAbort);
    if (!handedOver) release();
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

function statusOf(run: RunOutcome): ExecStatus {
  if (run.killedFor === "timeout") return "timeout";
  if (run.killedFor === "output_limit") return "output_limit";
  if (run.oom) return "oom";
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

function sameLimits(a: Limits, b: Limits): boolean {
  return a.memoryMb === b.memoryMb && a.cpus === b.cpus && a.pids === b.pids;
}
