// How big a workspace is, read from outside the job that writes into it, and
// the watch that stops a run taking its workspace past its size cap while it
// runs (status workspace_full; sandbox.ts), where before only the result said so.
//
// Why a meter container: nothing below the gateway enforces a volume's size
// here. The engine's local driver takes `--opt size=` only on XFS with project
// quotas (on this engine, ext4: "quota size requested but no quota support");
// `--storage-opt size` caps a container's own layer, not a volume, and also
// needs XFS; a loop-mounted image per workspace (`o=loop`) is refused by the
// driver ("invalid argument": it does no losetup) and would otherwise need
// mount privileges in the gateway; a tmpfs volume keeps a persistent workspace
// in memory; and the engine counts no block I/O for a container here
// (blkio_stats is empty), nor would buffered writes and deletes make a size.
// A watcher inside the job's container would run as the job's user, which can
// kill it. So the meter is a small container of its own (the profile's image,
// hardening and runtime, the workspace's volume, limits of its own,
// container-spec.ts meterContainerSpec) whose find and awk add up /workspace
// as the sandbox user and print one line per pass on stdout. Its PID namespace
// is its own, so the job can neither stop nor see it.
//
// What it counts is what a listing counts (workspace-size.ts): regular files'
// apparent sizes. What it cannot count counts as full: a directory the sandbox
// user cannot read (a job could hide bytes behind chmod 000). Space held by a
// file the job deleted but keeps open is invisible to any walk of the tree; it
// is bounded by the fsize ulimit per file and freed when the job ends.
//
// Cost: one container per watched run. A run is watched only once it has run
// `delayMs` (default 1 s), so the many short runs of an agent's session never
// pay for it; a run that fills its workspace faster than that is still caught
// by the check after the run. Measured here: README "Workspace size cap".
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import type { LoadedProfile } from "../core/profile.ts";
import { meterContainerSpec } from "./container-spec.ts";
import type { ContainerClient } from "./docker.ts";
import { FrameDemuxer } from "./output.ts";

/**
 * $1: `once` (one line, then exit) or `watch` (a line per pass). Each line:
 * "<bytes> <unreadable>", the regular files' bytes and how many paths find
 * could not read. The C locale fixes find's message; a file name cannot fake a
 * line of digits into the sum in its favour, since an error line only ever
 * adds to "unreadable". Between two passes of a watch it sleeps $2 ms, or nine
 * times as long as the pass took when that is longer, so that a large
 * workspace costs at most a tenth of the meter's (already throttled) CPU.
 */
export const METER_SCRIPT = [
  "while :; do",
  "  t=$(/usr/bin/date +%s%N)",
  "  /usr/bin/env -i LC_ALL=C /usr/bin/find /workspace -type f -printf '%s\\n' 2>&1 |",
  "    /usr/bin/env -i LC_ALL=C /usr/bin/awk '/^[0-9]+$/ { s += $1; next } /Permission denied/ { d++ } END { printf \"%.0f %d\\n\", s, d }'",
  '  [ "$1" = once ] && exit 0',
  "  ms=$(( ($(/usr/bin/date +%s%N) - t) / 1000000 * 9 ))",
  '  [ "$ms" -lt "$2" ] && ms=$2',
  '  /usr/bin/sleep "$((ms / 1000)).$((ms % 1000 / 100))$((ms % 100 / 10))$((ms % 10))"',
  "done",
].join("\n");

export interface MeterReading {
  /** The regular files' bytes that could be read. */
  bytes: number;
  /** Paths the sandbox user could not read (their bytes are unknown). */
  unreadable: number;
}

export interface WorkspaceMeterDeps {
  client: ContainerClient;
  instanceId: string;
  orphanGraceMs: number;
  warn: (message: string, err: unknown) => void;
  /** How long a run goes unwatched first (default 1000 ms). */
  delayMs?: number;
  /** The shortest pause between two passes of a watch (default 250 ms; longer after a long pass). */
  periodMs?: number;
}

const LINE = /^(\d+) (\d+)$/;

export class WorkspaceMeter {
  readonly deps: WorkspaceMeterDeps;

  constructor(deps: WorkspaceMeterDeps) {
    this.deps = deps;
  }

  /** One reading of the workspace now (a meter container's single pass), within the profile's longest timeout. */
  async measure(profile: LoadedProfile, volume: string): Promise<MeterReading> {
    const limitMs = profile.limits.max.timeoutMs;
    const meter = await MeterContainer.start(this, profile, volume, ["once"], limitMs, undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        meter.next(),
        meter.exited.then(async () => {
          // Its line may still be on its way when the exit is seen.
          await Promise.race([meter.ended, new Promise((r) => setTimeout(r, 2000))]);
          const reading = meter.got();
          if (reading === undefined) throw new Error("the workspace meter ended without a reading");
          return reading;
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`measuring the workspace took longer than ${limitMs} ms`)),
            limitMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await meter.remove();
    }
  }

  /** A watch of a run's workspace; armed when the job's code starts, stopped when it ends. */
  watch(
    profile: LoadedProfile,
    volume: string,
    capBytes: number,
    timeoutMs: number,
    onFull: (reading: MeterReading) => void,
  ): MeterWatch {
    return new MeterWatch(this, { profile, volume, capBytes, timeoutMs, onFull });
  }
}

interface WatchPlan {
  profile: LoadedProfile;
  volume: string;
  capBytes: number;
  timeoutMs: number;
  onFull: (reading: MeterReading) => void;
}

/** Watches one run: past `delayMs`, a meter container reads the workspace every `periodMs`. */
export class MeterWatch {
  /** The reading that stopped the run, if one did. */
  tripped: MeterReading | undefined;
  private readonly meter: WorkspaceMeter;
  private readonly plan: WatchPlan;
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private container: MeterContainer | undefined;
  private stopped = false;

  constructor(meter: WorkspaceMeter, plan: WatchPlan) {
    this.meter = meter;
    this.plan = plan;
  }

  /** The job's code starts now: past the delay, the meter starts. */
  arm(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.starting = this.begin().catch((err: unknown) => {
        this.meter.deps.warn(
          "the workspace meter could not watch a run; it is checked after it ends only",
          err,
        );
      });
    }, this.meter.deps.delayMs ?? 1000);
  }

  private async begin(): Promise<void> {
    const { profile, volume, capBytes, timeoutMs, onFull } = this.plan;
    const period = String(Math.max(1, Math.round(this.meter.deps.periodMs ?? 250)));
    const onReading = (reading: MeterReading) => {
      if (this.tripped !== undefined || this.stopped) return;
      if (reading.bytes <= capBytes && reading.unreadable === 0) return;
      this.tripped = reading;
      onFull(reading);
    };
    const args = ["watch", period];
    this.container = await MeterContainer.start(
      this.meter,
      profile,
      volume,
      args,
      timeoutMs,
      onReading,
    );
  }

  /** The run is over (or was never started): the meter goes, and nothing trips any more. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.starting;
    await this.container?.remove();
  }
}

/** One started meter container and the readings on its stdout. */
class MeterContainer {
  readonly exited: Promise<number>;
  /** The attach stream ended or closed (all output is in). */
  readonly ended: Promise<void>;
  private readonly deps: WorkspaceMeterDeps;
  private readonly id: string;
  private readonly stream: Duplex;
  private pending = "";
  private waiting: ((reading: MeterReading) => void) | undefined;
  /** The first reading, kept for next() when it came before anyone asked (a fast `once`). */
  private first: MeterReading | undefined;
  private removed: Promise<void> | undefined;
  private readonly onReading: ((reading: MeterReading) => void) | undefined;

  private constructor(
    deps: WorkspaceMeterDeps,
    id: string,
    stream: Duplex,
    onReading: ((reading: MeterReading) => void) | undefined,
  ) {
    this.deps = deps;
    this.id = id;
    this.stream = stream;
    this.onReading = onReading;
    const demux = new FrameDemuxer((name, payload) => {
      if (name === "stdout") this.take(payload);
    });
    stream.on("data", (chunk: Buffer) => demux.push(chunk));
    stream.on("error", () => undefined);
    this.ended = new Promise((resolve) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
    });
    this.exited = deps.client.wait(id);
    this.exited.catch(() => undefined);
  }

  static async start(
    meter: WorkspaceMeter,
    profile: LoadedProfile,
    volume: string,
    args: string[],
    timeoutMs: number,
    onReading: ((reading: MeterReading) => void) | undefined,
  ): Promise<MeterContainer> {
    const { client, instanceId, orphanGraceMs } = meter.deps;
    const spec = meterContainerSpec(
      profile,
      {
        instanceId,
        jobId: `meter-${randomBytes(6).toString("hex")}`,
        volume,
        deadline: Date.now() + timeoutMs + orphanGraceMs,
      },
      ["/bin/sh", "-c", METER_SCRIPT, "airlock-meter", ...args],
    );
    const id = await client.create(spec);
    let started: MeterContainer | undefined;
    try {
      started = new MeterContainer(meter.deps, id, await client.attach(id), onReading);
      await client.start(id);
      return started;
    } catch (err) {
      if (started !== undefined) await started.remove();
      else await client.remove(id).catch((e: unknown) => meter.deps.warn("removing a meter", e));
      throw err;
    }
  }

  /** The first reading: at once when it is in; a promise of it otherwise. */
  next(): Promise<MeterReading> {
    if (this.first !== undefined) return Promise.resolve(this.first);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  /** The first reading if it has come, else undefined. */
  got(): MeterReading | undefined {
    return this.first;
  }

  private take(payload: Buffer): void {
    this.pending += payload.toString("latin1");
    // One short line per pass; anything else (a runaway line) is dropped.
    if (this.pending.length > 4096) this.pending = "";
    for (let nl = this.pending.indexOf("\n"); nl >= 0; nl = this.pending.indexOf("\n")) {
      const match = LINE.exec(this.pending.slice(0, nl));
      this.pending = this.pending.slice(nl + 1);
      if (match === null) continue;
      const reading = { bytes: Number(match[1]), unreadable: Number(match[2]) };
      this.first ??= reading;
      this.waiting?.(reading);
      this.waiting = undefined;
      this.onReading?.(reading);
    }
  }

  remove(): Promise<void> {
    this.removed ??= (async () => {
      this.stream.destroy();
      await this.deps.client
        .remove(this.id)
        .catch((err: unknown) => this.deps.warn(`removing the workspace meter ${this.id}`, err));
    })();
    return this.removed;
  }
}
