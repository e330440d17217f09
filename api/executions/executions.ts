// Executions (DESIGN.md "Executions"): every job an exec route runs (or an
// approval releases) is recorded from queued to its end in the state store,
// its output kept for replay, so a client that lost its connection reads the
// result, follows the output, or cancels it later. The records are the
// store's; what only this process can do lives here: the abort switch of each
// job it runs (DELETE) and the wake-ups of those following one.
import { AirlockError } from "../../core/errors.ts";
import type { ExecResult } from "../../core/schemas.ts";
import {
  type Execution,
  type ExecutionQuery,
  type ExecutionStatus,
  type ExecutionSummary,
  isFinalExecutionStatus,
  type OutputPage,
  type StateStore,
  type StoredError,
  StoreUnavailableError,
  type TransitionOptions,
} from "../../core/state.ts";
import { phase } from "../../core/timing.ts";
import type { ExecutorRunOptions } from "../../executor/executor.ts";
import { JobCancelledError } from "../../executor/sandbox.ts";
import { ExecutionOutput, type OutputSink } from "./output.ts";

/** What an execution is recorded with when it starts. */
export interface ExecutionMeta {
  id: string;
  tenant: string;
  profile: string;
  workspace?: string | undefined;
}

/** Runs the job with the execution's options (signal, output, start hook). */
export type JobRunner = (options: ExecutorRunOptions) => Promise<ExecResult>;

export interface StartOptions {
  /** The client's own signal: its going away cancels the job (a synchronous JSON request). */
  signal?: AbortSignal | undefined;
  /** The live client of a streamed request. */
  sink?: OutputSink | undefined;
}

export interface Started {
  id: string;
  /** Settles once the end is recorded, as the job did (a result, or its error). */
  result: Promise<ExecResult>;
}

export interface ExecutionsDeps {
  state: StateStore;
  instanceId: string;
  warn: (message: string, err: unknown) => void;
}

type Change = "status" | "output";

/**
 * A started job is written `running` once it has run this long: one that
 * ends sooner (an echo: a few ms) goes from `queued` to its end in one write,
 * instead of waiting at its end for the `running` write still under way. A
 * reader on this gateway has it written first (get, list), so only a
 * sibling gateway can see a job this young still `queued`.
 */
export const RUNNING_AFTER_MS = 50;

/** The longest a job's container waits for its end to be recorded before it is removed anyway. */
const REMOVAL_WAITS_AT_MOST_MS = 1000;

/**
 * How long after the answer a job's container is removed (and the pool's
 * refill begins). The engine's work for them (~80 ms of dockerd's and
 * containerd's CPU here) would otherwise start on the same cores while the
 * client reads the answer, and the gateway's own calls to the engine would
 * run before it does when the client is in this process: an echo's answer
 * took 1–5 ms to be read after it was sent, and 0.5–1 ms with this pause.
 */
const REMOVAL_AFTER_ANSWER_MS = 5;

interface Live {
  controller: AbortController;
  output: ExecutionOutput;
}

/** A store failure as the API answers it: 503 state_unavailable, with the store's sentence. */
export function stateUnavailable(err: StoreUnavailableError): AirlockError {
  return new AirlockError("state_unavailable", err.message, {
    cause: err,
    details: { reason: err.reason },
    retryAfterSeconds: 5,
  });
}

/** Runs a store call; its failures of the disk or the file become 503 state_unavailable. */
export async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw err instanceof StoreUnavailableError ? stateUnavailable(err) : err;
  }
}

/** How a job that threw ended, as its record says. */
function endOf(err: unknown): [ExecutionStatus, StoredError | undefined] {
  if (err instanceof JobCancelledError) return ["cancelled", undefined];
  if (err instanceof AirlockError) {
    const body = err.toBody().error;
    // An emergency stop kills the job: cancelled, and the record says by what.
    return [err.code === "stopped" ? "cancelled" : "failed", body];
  }
  return ["failed", { code: "internal", message: "the job failed inside airlock" }];
}

export class Executions {
  readonly state: StateStore;
  private readonly deps: ExecutionsDeps;
  /** The jobs this process runs now. */
  private readonly live = new Map<string, Live>();
  /** Who waits for a change of an execution (its end, or more output). */
  private readonly watchers = new Map<string, Set<(change: Change) => void>>();
  /** Jobs started here whose `running` is not written yet: each writes it now. */
  private readonly unwrittenStarts = new Map<string, () => Promise<unknown>>();

  constructor(deps: ExecutionsDeps) {
    this.deps = deps;
    this.state = deps.state;
  }

  /**
   * Records the execution (queued), then starts the job. A store that cannot
   * record it refuses the job (503): nothing runs unrecorded. Later writes
   * (running once it has run RUNNING_AFTER_MS, the end) are chained in order
   * and never hold up the job; a store that fails then is logged, and the
   * job's answer still goes out.
   */
  async start(meta: ExecutionMeta, run: JobRunner, options: StartOptions = {}): Promise<Started> {
    const { id } = meta;
    await guarded(() =>
      this.state.executions.create({ ...meta, instanceId: this.deps.instanceId }),
    );
    phase("store");
    const controller = new AbortController();
    const output = new ExecutionOutput(id, this.state.output, () => this.notify(id, "output"));
    output.sink = options.sink;
    this.live.set(id, { controller, output });
    let writes: Promise<unknown> = Promise.resolve();
    let started = false;
    const record = (to: ExecutionStatus, o?: TransitionOptions) => {
      writes = writes
        .then(() => this.state.executions.transition(id, to, o))
        .then(
          () => this.notify(id, "status"),
          (err: unknown) => this.deps.warn(`recording execution ${id} as ${to} failed`, err),
        );
      return writes;
    };
    let runningTimer: NodeJS.Timeout | undefined;
    // The deferred `running` is written now, or made moot by the end (which stamps startedAt).
    const forgetStart = () => {
      clearTimeout(runningTimer);
      this.unwrittenStarts.delete(id);
    };
    const writeRunning = () => {
      forgetStart();
      return record("running");
    };
    // The engine removes the job's container once its end is recorded (or in a second).
    const answered = Promise.withResolvers<void>();
    const ending = () => {
      forgetStart();
      output.end();
      setTimeout(answered.resolve, REMOVAL_WAITS_AT_MOST_MS).unref();
    };
    const signal =
      options.signal === undefined
        ? controller.signal
        : AbortSignal.any([options.signal, controller.signal]);
    const result = run({
      signal,
      onOutput: output.write,
      outputDrained: output.drained,
      // Only a live client gets the output as events: for anyone else the result carries it.
      fullResult: options.sink === undefined,
      answered: answered.promise,
      onStart: () => {
        started = true;
        runningTimer = setTimeout(writeRunning, RUNNING_AFTER_MS);
        this.unwrittenStarts.set(id, writeRunning);
      },
    }).then(
      async (value) => {
        ending();
        // A result means it ran: from `queued`, the end stamps startedAt too.
        await record("done", { result: value, started: true });
        phase("store");
        return value;
      },
      async (err: unknown) => {
        ending();
        const [status, error] = endOf(err);
        await record(status, { error, started });
        throw err;
      },
    );
    const ended = result.finally(() => {
      this.live.delete(id);
      setTimeout(answered.resolve, REMOVAL_AFTER_ANSWER_MS);
    });
    // Nobody may be waiting (an async request): the end is recorded either way.
    ended.catch(() => {});
    return { id, result: ended };
  }

  /** The execution, or undefined for an unknown one or another tenant's. */
  async get(tenant: string, id: string): Promise<Execution | undefined> {
    await this.unwrittenStarts.get(id)?.();
    return guarded(() => this.state.executions.get(tenant, id));
  }

  /** The execution, or 404 for an unknown one or another tenant's (never revealed to exist). */
  async find(tenant: string, id: string): Promise<Execution> {
    const found = await this.get(tenant, id);
    if (found === undefined) {
      throw new AirlockError("not_found", `execution ${JSON.stringify(id)} does not exist`);
    }
    return found;
  }

  async list(tenant: string, query: ExecutionQuery): Promise<ExecutionSummary[]> {
    // Jobs younger than RUNNING_AFTER_MS: a reader here sees them as they are.
    await Promise.all([...this.unwrittenStarts.values()].map((write) => write()));
    return guarded(() => this.state.executions.list(tenant, query));
  }

  /** Output after `afterSeq`; 404 when it is not the tenant's. */
  async output(tenant: string, id: string, afterSeq: number): Promise<OutputPage> {
    const page = await guarded(() => this.state.output.read(tenant, id, { afterSeq }));
    if (page === undefined) {
      throw new AirlockError("not_found", `execution ${JSON.stringify(id)} does not exist`);
    }
    return page;
  }

  /** The execution once it has ended, or as it is after `ms` (or when `signal` aborts). */
  async wait(tenant: string, id: string, ms: number, signal?: AbortSignal): Promise<Execution> {
    const end = performance.now() + ms;
    for (;;) {
      const change = this.next(id, ["status"]);
      const execution = await this.find(tenant, id).catch((err: unknown) => {
        change.cancel();
        throw err;
      });
      const left = end - performance.now();
      if (isFinalExecutionStatus(execution.status) || left <= 0 || signal?.aborted === true) {
        change.cancel();
        return execution;
      }
      // Woken by this process's own jobs; polled for a sibling gateway's.
      await change.wait(Math.min(left, 1000), signal);
    }
  }

  /**
   * Kills the job (DELETE). One this process runs is aborted and its record
   * says cancelled once it has stopped; an open one no live process runs (left
   * by this instance) is marked cancelled at once; an ended one is 409.
   */
  async cancel(tenant: string, id: string): Promise<Execution> {
    const execution = await this.find(tenant, id);
    if (isFinalExecutionStatus(execution.status)) {
      if (execution.status === "cancelled") return execution;
      throw new AirlockError(
        "conflict",
        `execution ${id} has already ended (${execution.status}): there is nothing to cancel`,
        { details: { status: execution.status } },
      );
    }
    const live = this.live.get(id);
    if (live !== undefined) {
      live.controller.abort(new JobCancelledError("cancelled by DELETE /v1/executions/:id"));
      // Answer once the record says so (the kill is quick), but never hang on it.
      return this.wait(tenant, id, 10_000);
    }
    if (execution.instanceId !== this.deps.instanceId) {
      throw new AirlockError(
        "conflict",
        `execution ${id} runs on another gateway (instance ${execution.instanceId}): cancel it there`,
        { details: { instanceId: execution.instanceId } },
      );
    }
    const outcome = await guarded(() =>
      this.state.executions.transition(id, "cancelled", { tenant }),
    );
    this.notify(id, "status");
    return outcome?.record ?? execution;
  }

  /**
   * Waits for the next change of an execution (`kinds`), at most `ms`.
   * Subscribe before reading what you will compare with, then wait: a change
   * between the two is not missed.
   */
  next(
    id: string,
    kinds: Change[],
  ): { wait(ms: number, signal?: AbortSignal): Promise<void>; cancel(): void } {
    let fired = false;
    let wake: (() => void) | undefined;
    const watcher = (change: Change) => {
      if (!kinds.includes(change)) return;
      fired = true;
      wake?.();
    };
    const set = this.watchers.get(id) ?? new Set();
    this.watchers.set(id, set);
    set.add(watcher);
    const cancel = () => {
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(id) === set) this.watchers.delete(id);
    };
    const wait = (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          cancel();
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal?.addEventListener("abort", done, { once: true });
        wake = done;
        if (fired || signal?.aborted === true) done();
      });
    return { wait, cancel };
  }

  /** The jobs this process runs now. */
  get running(): number {
    return this.live.size;
  }

  private notify(id: string, change: Change): void {
    const set = this.watchers.get(id);
    if (set === undefined) return;
    for (const watcher of [...set]) watcher(change);
  }
}

/**
 * At start: what this instance left open when it died (or was killed) is
 * `lost`, its in-flight idempotency keys are free again, its running approvals failed.
 */
export async function recoverState(
  state: StateStore,
  instanceId: string,
): Promise<{ lost: number; keys: number; approvals: number }> {
  const error: StoredError = {
    code: "internal",
    message: `the gateway running it (instance ${instanceId}) stopped before it ended; its outcome is unknown`,
  };
  return guarded(async () => ({
    lost: await state.executions.markLost(instanceId, error),
    keys: await state.idempotency.releaseInstance(instanceId),
    approvals: await state.approvals.failRunning(instanceId, error),
  }));
}
