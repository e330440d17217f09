// One job's run inside its started (or parked) container, through the
// launcher (launcher.ts): the job goes in on stdin; its output, the listings
// and the tar come back through the protocol (job-stream.ts,
// launcher-stream.ts); a deadline, the output cap or a client that left kills
// it (kill-switch.ts). The run ends at the launcher's trailer (the container
// stays up, idle), or when the container exits, or a second after a kill the
// engine has not confirmed. The launcher's report then stands on its own (the
// fast path), or the engine is asked how the job ended.
import { randomBytes } from "node:crypto";
import type { Duplex, Readable } from "node:stream";
import { AirlockError } from "../core/errors.ts";
import type { Job, OutputListener } from "../core/job.ts";
import type { Limits } from "../core/profile.ts";
import { phase } from "../core/timing.ts";
import { limitSettings, limitsUpdatable } from "./container-spec.ts";
import type { ContainerClient, Usage } from "./docker.ts";
import { JobStream } from "./job-stream.ts";
import { type KillReason, KillSwitch } from "./kill-switch.ts";
import type { Trailer } from "./launcher.ts";
import type { RawListing } from "./launcher-stream.ts";
import type { CappedBuffer } from "./output.ts";
import { beginOutsideUsage, jobUsage, type OutsideUsage } from "./outside-usage.ts";

export interface RunOptions {
  signal?: AbortSignal | undefined;
  onOutput?: OutputListener | undefined;
  /** Resolves when a consumer that said it was full (onOutput returned false) can take more. */
  outputDrained?: (() => Promise<void>) | undefined;
  /**
   * Whether the result keeps all of each stream within the cap even though
   * onOutput is set (a listener that records the output rather than streams
   * it to the caller). By default a streamed result keeps STREAMED_RESULT_BYTES.
   */
  fullResult?: boolean | undefined;
  /**
   * A workspace job: takes the removal of its container, so the answer need
   * not wait for it; the caller holds the workspace's lock until it ends (the
   * volume is free once the lock is released). Without it the job waits.
   */
  afterAnswer?: ((removal: Promise<void>) => void) | undefined;
  /**
   * Settles once the job's answer is on its way (its end recorded). A job
   * that ended and whose removal nobody waits for is removed (and its pool
   * refilled) then, rather than while the answer's last steps compete with
   * the engine for the cores. Without it the removal starts at once.
   */
  answered?: Promise<unknown> | undefined;
}

export class JobCancelledError extends Error {
  override name = "JobCancelledError";
}

/**
 * A streamed job's output has gone out as events already: its final result
 * keeps only this much of each stream, so that many large streams at once do
 * not hold their whole output in the gateway (the cap that kills still counts it all).
 */
export const STREAMED_RESULT_BYTES = 64 * 1024;

/** How long to wait for the attach stream to drain once the container has exited. */
const STREAM_DRAIN_MS = 2000;

const SIGKILL_EXIT = 128 + 9;

/** A compiled job's compile stage, as the run saw it. */
export interface CompileOutcome {
  /** The compiler's exit code; undefined when it never reported one (killed, or the container died). */
  exitCode: number | undefined;
  /** Killed while compiling (its time limit, the output cap, a client gone). */
  killedFor: KillReason | undefined;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  durationMs: number;
}

export interface RunOutcome {
  /** A compiled job's compile stage; when its exitCode is not 0, the program never ran. */
  compile?: CompileOutcome | undefined;
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

interface Run {
  client: ContainerClient;
  id: string;
  job: Job;
  io: JobStream;
  kill: KillSwitch;
  exited: Promise<number>;
  /** gVisor shows the launcher no cgroup: the job's usage is read from outside. */
  outside?: OutsideUsage | undefined;
}

type First = "trailer" | "exit" | "gave up";

export async function runJob(
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
  const kill = new KillSwitch(client, id);
  const io = new JobStream(attached ?? (await client.attach(id)), job, {
    // 128 bits in 22 characters (hex takes 32): the launcher reads it twice, a byte per system call.
    nonce: randomBytes(16).toString("base64url"),
    mode: prepare === undefined ? "tar" : "list",
    keep:
      options.onOutput === undefined || options.fullResult === true
        ? job.limits.outputBytes
        : STREAMED_RESULT_BYTES,
    onOutput: options.onOutput,
    outputDrained: options.outputDrained,
    overflow: () => kill.kill("output_limit"),
  });
  const onAbort = () => kill.kill("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let handedOver = false;
  try {
    if (options.signal?.aborted)
      throw new JobCancelledError("the client went away before the job started");
    if (attached === undefined) {
      await client.start(id);
      phase("start");
    }
    const exited = attached === undefined ? client.wait(id) : exitOfParked(client, id, io, kill);
    exited.catch(() => undefined);
    const run: Run = { client, id, job, io, kill, exited };
    io.sendHeader();
    if (prepare !== undefined) {
      await listFirst(run, prepare, options.signal);
      phase("listing");
    }
    if (job.profile.runtime === "runsc") run.outside = await beginOutsideUsage(client, id);
    const compile = job.compile === undefined ? undefined : await compileFirst(run);
    const startedAt = performance.now();
    if (compile === undefined) {
      kill.armDeadline(job.limits.timeoutMs);
      io.sendJob(job);
    } else if (compile.exitCode === 0 && compile.killedFor === undefined) {
      kill.armDeadline(job.limits.timeoutMs);
      io.sendRun(job);
    }
    const first: First = await Promise.race([
      io.trailerIn,
      exited.then(() => "exit" as const),
      kill.gaveUp,
    ]);
    const times = { startedAt, endedAt: performance.now() };
    phase("run");
    kill.disarmDeadline();
    const { trailer } = io.launcher;
    const mustJudge = engineMustJudge(trailer);
    if (first === "trailer" && trailer !== undefined && kill.reason === undefined && !mustJudge) {
      // No await for runc's figures: the launcher's are the job's own.
      const usage =
        run.outside === undefined ? usageOf(trailer) : await jobUsage(run.outside, trailer);
      handedOver = true;
      return {
        ...launcherOutcome(io, trailer, { usage, killedFor: kill.reason, ...times }),
        compile,
      };
    }
    return { ...(await engineOutcome(run, first, mustJudge, times)), compile };
  } finally {
    kill.dispose();
    options.signal?.removeEventListener("abort", onAbort);
    if (!handedOver) io.release();
  }
}

/**
 * A parked container's exit, without a wait request on every job's critical
 * path: its attach stream ends when it does, and only then is the engine
 * asked for the code. Once the run is over (the stream released by us, not
 * ended by the container) nobody asks: the promise never settles.
 */
function exitOfParked(
  client: ContainerClient,
  id: string,
  io: JobStream,
  kill: KillSwitch,
): Promise<number> {
  return io.ended.then(() =>
    kill.disposed ? new Promise<number>(() => undefined) : client.wait(id),
  );
}

/**
 * A compiled job's compile stage, under its own time limit: the job's lines go
 * in, the compiler runs with the container's memory at the compile limit, and
 * once it reports success the run's limits are set (where the runtime can take
 * them) before the program may start (the caller sends RUN_LINE). A failed
 * compile ends the job itself; a killed one is over with the kill.
 */
async function compileFirst({ client, id, job, io, kill, exited }: Run): Promise<CompileOutcome> {
  const compile = job.compile;
  const output = io.compileOutput;
  if (compile === undefined || output === undefined) throw new Error("not a compiled job");
  const startedAt = performance.now();
  kill.armDeadline(compile.limits.timeoutMs);
  io.sendJob(job);
  const got = await Promise.race([
    io.compiledIn.then((code) => ({ code })),
    exited.then(() => undefined),
    kill.gaveUp.then(() => undefined),
  ]);
  const durationMs = Math.round(performance.now() - startedAt);
  const exitCode = got?.code;
  if (exitCode === 0 && kill.reason === undefined) {
    kill.disarmDeadline();
    if (
      compilePhaseLimits(job).memoryMb !== job.limits.memoryMb &&
      limitsUpdatable(job.profile.runtime)
    ) {
      await client.update(id, limitSettings(job.limits));
    }
  }
  return { exitCode, killedFor: kill.reason, ...output, durationMs };
}

/**
 * The container's limits while a job compiles: the run's, with the compile's
 * memory. A runtime whose started containers cannot take new limits (runsc)
 * keeps one memory limit for both stages: the larger.
 */
export function compilePhaseLimits(job: Job): Limits {
  if (job.compile === undefined) return job.limits;
  const memoryMb = limitsUpdatable(job.profile.runtime)
    ? job.compile.limits.memoryMb
    : Math.max(job.compile.limits.memoryMb, job.limits.memoryMb);
  return { ...job.limits, memoryMb };
}

/**
 * The container ended before its launcher listed /workspace, so before any of
 * the job's code ran: the engine stopped or restarted under it (start-up
 * checks prove the images' launchers work). An engine still away answers with
 * its own failure (the client's decorator); one already back is told as the
 * same retryable docker_unavailable, never as a fault of airlock's.
 */
async function sandboxLost(client: Run["client"]): Promise<never> {
  await client.ping();
  throw new AirlockError(
    "docker_unavailable",
    "the sandbox's container ended before its job started (the Docker engine stopped or restarted it); retry shortly",
    { retryAfterSeconds: 5 },
  );
}

/**
 * A workspace job: waits for the launcher's listing of /workspace (it runs
 * before the job's clock: the time limit is for the job's own code), then
 * `prepare` reads what it needs and puts the job's files in.
 */
async function listFirst(
  { client, id, job, io, kill, exited }: Run,
  prepare: (listing: RawListing) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  let late: NodeJS.Timeout | undefined;
  const tooLate = new Promise<"late">((resolve) => {
    late = setTimeout(() => resolve("late"), job.limits.timeoutMs);
  });
  const got = await Promise.race([io.listedBefore, exited.then(() => "exit" as const), tooLate]);
  clearTimeout(late);
  if (got === "exit" || got === "late") {
    await client.kill(id).catch(() => undefined);
    if (kill.reason === "cancelled")
      throw new JobCancelledError("the client went away; the job was killed");
    if (got === "exit") await sandboxLost(client);
    throw new AirlockError(
      "internal",
      `listing /workspace took longer than the job's time limit (${job.limits.timeoutMs} ms)`,
    );
  }
  try {
    await prepare(got);
  } catch (err) {
    if (kill.reason !== "cancelled") throw err;
  }
  // The client left while the workspace was read (the container may be killed already).
  if (kill.reason === "cancelled" || signal?.aborted)
    throw new JobCancelledError("the client went away before the job started");
}

/**
 * Only the engine can tell an OOM kill from a SIGKILL-shaped exit under a
 * runtime that shows no cgroup inside (gVisor): there the launcher's report
 * does not stand on its own.
 */
function engineMustJudge(trailer: Trailer | undefined): boolean {
  return trailer?.oomKills === null && trailer.exitCode === SIGKILL_EXIT;
}

function usageOf(trailer: Trailer): Usage {
  return { cpuMs: trailer.cpuMs, memoryPeakBytes: trailer.memoryPeakBytes };
}

/** The fast path: the launcher's trailer says how the job ended; its tar (and listing) are handed on. */
function launcherOutcome(
  io: JobStream,
  trailer: Trailer,
  rest: Pick<RunOutcome, "usage" | "killedFor" | "startedAt" | "endedAt">,
): RunOutcome {
  return {
    workspaceTar: io.tar,
    afterListing: io.mode === "list" ? io.listedAfter : undefined,
    release: () => io.release(),
    exitCode: trailer.exitCode,
    killUnconfirmed: false,
    // Two witnesses: a SIGKILL-shaped exit and the cgroup's own OOM kill count.
    oom: trailer.exitCode === SIGKILL_EXIT && (trailer.oomKills ?? 0) > 0,
    stdout: io.output.stdout,
    stderr: io.output.stderr,
    ...rest,
  };
}

/**
 * The engine's word: killed, no usable trailer (the launcher itself died), or
 * a SIGKILL-shaped exit only the engine can judge. The container is ended and
 * waited for, but after a kill no longer than KILL_CONFIRM_MS; its /workspace
 * then comes through the engine's archive API.
 */
async function engineOutcome(
  { client, id, job, io, kill, exited, outside }: Run,
  first: First,
  /** The trailer came with a SIGKILL-shaped exit and no cgroup figures (engineMustJudge). */
  mustJudge: boolean,
  times: { startedAt: number; endedAt: number },
): Promise<RunOutcome> {
  io.abandonTar();
  // gVisor kills inside its own kernel when the sandbox runs out of memory,
  // and the host's OOMKilled flag never sees it: the sandbox's peak, read
  // from the engine while it still runs, is the second witness then.
  const sampled = mustJudge ? await client.usage(id).catch(() => undefined) : undefined;
  if (first === "trailer") await client.kill(id);
  const confirmed = await kill.confirmExit(exited);
  const killUnconfirmed = confirmed === undefined;
  await kill.sent();
  // A container the engine has not stopped keeps its stream open: its end is not worth waiting for.
  if (!killUnconfirmed) await Promise.race([io.ended, sleep(STREAM_DRAIN_MS)]);
  io.launcher.flush();
  if (kill.reason === "cancelled")
    throw new JobCancelledError("the client went away; the job was killed");
  const { trailer } = io.launcher;
  // Killed and never confirmed: SIGKILL is what was sent, and what the engine would report.
  const code =
    first === "trailer" && trailer !== undefined ? trailer.exitCode : (confirmed ?? SIGKILL_EXIT);
  const sample = sampled ?? kill.usage ?? { cpuMs: null, memoryPeakBytes: null };
  // The meter's or the launcher's figures, unless neither had one and the engine's sample stands.
  const usage =
    trailer !== undefined && !mustJudge ? await jobUsage(outside, trailer, sample) : sample;
  const state = killUnconfirmed ? { oomKilled: false } : await client.inspectExit(id);
  // Two witnesses: a SIGKILL-shaped exit, and the engine's OOMKilled flag or a peak at the limit.
  // "At the limit" is generous: gVisor kills by its own accounting, measured here
  // as the sandbox's host-side peak at 80-90% of the limit.
  const limit = job.limits.memoryMb * 1024 * 1024;
  const atLimit = (usage.memoryPeakBytes ?? 0) >= limit * 0.75;
  return {
    workspaceTar: undefined,
    afterListing: undefined,
    release: () => io.release(),
    exitCode: code,
    killedFor: kill.reason,
    killUnconfirmed,
    oom: kill.reason === undefined && code === SIGKILL_EXIT && (state.oomKilled || atLimit),
    stdout: io.output.stdout,
    stderr: io.output.stderr,
    usage,
    ...times,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
