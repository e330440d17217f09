// Ending a job early, once: at its deadline, past its output cap, or when its
// client goes away. The cgroup is sampled first (once stopped, the engine has
// nothing to report), then the container is killed — after USAGE_SAMPLE_MS at
// the latest: an engine whose stats call hangs must not keep the job running
// until the reaper's deadline, and the kill matters more than the figure
// (without one, quotas count the job's wall time). After a kill the answer
// waits at most KILL_CONFIRM_MS for the engine to say the container has ended:
// gVisor sometimes needs ~30 s to tear down a sandbox a fork bomb has filled
// (plain `docker kill` and `docker rm -f` alike, about one time in six here).
// Past that the job is answered as killed, and its container keeps the job's
// slot until the engine has removed it (SandboxDeps.holdSlot).
import type { ContainerClient, Usage } from "./docker.ts";

export type KillReason = "timeout" | "output_limit" | "cancelled";

/** How long an answer waits, after a kill, for the engine to say the container has ended. */
export const KILL_CONFIRM_MS = 1000;

/**
 * How long the kill waits for the usage sample. Measured here: a one-shot
 * stats call answers in ~10 ms, or in ~1 s when another is in flight (the
 * engine's collector ticks once a second) — not worth a second more of the
 * job, so that figure is lost then.
 */
export const USAGE_SAMPLE_MS = 250;

export class KillSwitch {
  /** Why the job was killed; undefined while it was not. */
  reason: KillReason | undefined;
  /** The cgroup's figures sampled just before the kill, when the engine gave them in time. */
  usage: Usage | undefined;
  /** Resolves `confirmMs` after the kill began: the answer stops waiting for the engine then. */
  readonly gaveUp: Promise<"gave up">;
  private readonly giveUp: (value: "gave up") => void;
  private readonly client: ContainerClient;
  private readonly id: string;
  private readonly confirmMs: number;
  private readonly sampleMs: number;
  private killing: Promise<void> | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private confirmTimer: NodeJS.Timeout | undefined;
  /** The run is over (dispose). */
  disposed = false;

  constructor(
    client: ContainerClient,
    id: string,
    confirmMs: number = KILL_CONFIRM_MS,
    sampleMs: number = USAGE_SAMPLE_MS,
  ) {
    this.client = client;
    this.id = id;
    this.confirmMs = confirmMs;
    this.sampleMs = sampleMs;
    const gaveUp = Promise.withResolvers<"gave up">();
    this.gaveUp = gaveUp.promise;
    this.giveUp = gaveUp.resolve;
  }

  /** Kills the container for `reason`, unless it was killed already. */
  kill(reason: KillReason): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.confirmTimer = setTimeout(() => this.giveUp("gave up"), this.confirmMs);
    this.killing = this.sample().then(() => this.client.kill(this.id));
    // Awaited by sent() when the run gets that far; never an unhandled rejection otherwise.
    this.killing.catch(() => undefined);
  }

  /** Settles when the engine's sample is in, or failed, or sampleMs have passed; a late figure is dropped. */
  private async sample(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.sampleMs);
    });
    const usage = await Promise.race([this.client.usage(this.id).catch(() => undefined), late]);
    clearTimeout(timer);
    this.usage = usage;
  }

  /** The job's time limit starts now: past `ms`, it is killed. */
  armDeadline(ms: number): void {
    this.deadline = setTimeout(() => this.kill("timeout"), ms);
  }

  /** The job ended in time (or its end is being judged): the deadline no longer kills. */
  disarmDeadline(): void {
    clearTimeout(this.deadline);
  }

  /**
   * The container's exit status; undefined when it was killed and the engine
   * did not confirm its end within `confirmMs` (the engine would say SIGKILL).
   */
  confirmExit(exited: Promise<number>): Promise<number | undefined> {
    return Promise.race([exited, this.gaveUp.then(() => undefined)]);
  }

  /** Settles once the kill has been sent, or given up on; at once when there was none. A failed kill rejects. */
  async sent(): Promise<void> {
    await Promise.race([this.killing, this.gaveUp]);
  }

  /** Clears the timers (the run is over, whichever way). */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.deadline);
    clearTimeout(this.confirmTimer);
  }
}
