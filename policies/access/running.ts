// The jobs admitted and not yet finished, for the operators' view (GET
// /v1/admin/jobs, the dashboard). Admission adds each job when it takes the
// tenant's job slot and removes it when the slot is released; the executor
// says when the job left the queue for its container. In memory: it shows
// this gateway's jobs only.
import { randomBytes } from "node:crypto";
import type { Limits } from "../../core/profile.ts";

export interface JobEntry {
  tenant: string;
  keyId: string;
  profile: string;
  workspace?: string | undefined;
  approvalId?: string | undefined;
}

export interface RunningJobView extends JobEntry {
  /** This gateway's handle of the admitted job. */
  id: string;
  /** "queued": admitted, waiting for an executor slot (or the workspace's lock). */
  state: "queued" | "running";
  admittedAt: string;
  startedAt?: string;
  /** Milliseconds since the container started. */
  runningMs?: number;
  /** The container's job id (its `airlock.job` label), once running. */
  jobId?: string;
  /** Milliseconds since admission. */
  ageMs: number;
  /** The gateway it runs on (replicas). */
  gateway?: string;
  /** The limits the container runs with, once running; before that the timeout the policy allows. */
  limits: Partial<Limits> & { timeoutMs: number };
}

interface Tracked {
  entry: JobEntry;
  admittedAt: number;
  startedAt?: number;
  jobId?: string;
  limits: Partial<Limits> & { timeoutMs: number };
}

export class RunningJobs {
  private readonly jobs = new Map<string, Tracked>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Tracks an admitted job; call the returned functions when it starts and when it ends (done is idempotent). */
  add(
    entry: JobEntry,
    timeoutMs: number,
  ): { started: (jobId: string, limits: Limits) => void; done: () => void } {
    const id = `run_${randomBytes(8).toString("hex")}`;
    const tracked: Tracked = { entry, admittedAt: this.now(), limits: { timeoutMs } };
    this.jobs.set(id, tracked);
    return {
      started: (jobId, limits) => {
        tracked.startedAt = this.now();
        tracked.jobId = jobId;
        tracked.limits = { ...limits };
      },
      done: () => {
        this.jobs.delete(id);
      },
    };
  }

  /** Oldest first. */
  list(): RunningJobView[] {
    const now = this.now();
    return [...this.jobs].map(([id, t]) => ({
      id,
      ...t.entry,
      state: t.startedAt === undefined ? "queued" : "running",
      admittedAt: new Date(t.admittedAt).toISOString(),
      ...(t.startedAt === undefined
        ? {}
        : { startedAt: new Date(t.startedAt).toISOString(), runningMs: now - t.startedAt }),
      ...(t.jobId === undefined ? {} : { jobId: t.jobId }),
      ageMs: now - t.admittedAt,
      limits: t.limits,
    }));
  }
}
