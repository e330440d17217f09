// The shared state a gateway keeps beyond one request (DESIGN.md "Executions",
// "Replicas"): execution records and their output for replay, idempotency
// entries, approvals, audit records, and what replicas share (the gateways'
// registry, workspaces' engines, rate counters, stops). Interfaces and record
// types only; the embedded store is state/sqlite.ts, PostgreSQL's state/pg.ts. So
// every method is async, and every decision that must be atomic (a status
// transition, taking an idempotency key, approving once) is one call, never a
// read the caller follows with a write.

// ---------------------------------------------------------------- executions

export type ExecutionStatus = "queued" | "running" | "done" | "failed" | "cancelled" | "lost";

/**
 * Where each status may go. A final status goes nowhere. A result means the
 * job ran, so `done` stamps startedAt when it comes from `queued`: a job that
 * ends before it was recorded running (a short one) is ended in one write.
 * Every store enforces this table in the same statement that changes the status.
 */
export const EXECUTION_TRANSITIONS: Readonly<Record<ExecutionStatus, readonly ExecutionStatus[]>> =
  {
    queued: ["running", "done", "failed", "cancelled", "lost"],
    running: ["done", "failed", "cancelled", "lost"],
    done: [],
    failed: [],
    cancelled: [],
    lost: [],
  };

export function isFinalExecutionStatus(status: ExecutionStatus): boolean {
  return EXECUTION_TRANSITIONS[status].length === 0;
}

/** Whether an end to `to` stamps startedAt on a record that has none (TransitionOptions.started). */
export function endStampsStart(to: ExecutionStatus, options: { started?: boolean | undefined }) {
  return isFinalExecutionStatus(to) && (to === "done" || options.started === true);
}

/** A service fault that ended an execution (codes from core/errors.ts). */
export interface StoredError {
  code: string;
  message: string;
  details?: unknown;
}

export interface Execution {
  id: string;
  tenant: string;
  status: ExecutionStatus;
  profile: string;
  workspace?: string;
  /** The gateway that runs (or ran) it: a sibling's jobs are not this gateway's to cancel or mark lost. */
  instanceId: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** Any JSON value; absent when none was given or it was over the store's `maxResultBytes`. */
  result?: unknown;
  /** Bytes of a result that was too large to keep (then `result` is absent). */
  resultDroppedBytes?: number;
  error?: StoredError;
  /** Output bytes kept for replay, and bytes dropped past the store's `maxOutputBytes`. */
  outputBytes: number;
  outputDroppedBytes: number;
}

/** What `list` returns: records without their (possibly large) results. */
export type ExecutionSummary = Omit<Execution, "result">;

export interface NewExecution {
  id: string;
  tenant: string;
  profile: string;
  workspace?: string | undefined;
  instanceId: string;
  /** `queued` unless the job starts at once. */
  status?: "queued" | "running";
}

export interface TransitionOptions {
  /** When given, another tenant's execution is not found. */
  tenant?: string | undefined;
  /**
   * The job ran (its sandbox started): an end that finds the record still
   * `queued` stamps startedAt too. `done` always does (a result means it ran).
   */
  started?: boolean | undefined;
  result?: unknown;
  error?: StoredError | undefined;
}

/** The answer of a compare-and-set: whether this call changed it, and the record as it now is. */
export interface Outcome<T> {
  changed: boolean;
  record: T;
}

export interface ExecutionQuery {
  status?: ExecutionStatus | undefined;
  workspace?: string | undefined;
  limit: number;
}

export interface ExecutionRecords {
  /** Throws StoreConflictError when the id exists already. */
  create(execution: NewExecution): Promise<Execution>;
  /**
   * Moves an execution to `to` if EXECUTION_TRANSITIONS allows it from where it
   * is now (checked and written atomically); sets startedAt on `running` (and
   * on an end of a job that ran, when it has none yet: `started`) and endedAt
   * on a final status. A final transition first makes the output
   * appended so far readable, so a reader that sees the end sees all of it.
   * undefined: no such execution (for that tenant).
   */
  transition(
    id: string,
    to: ExecutionStatus,
    options?: TransitionOptions,
  ): Promise<Outcome<Execution> | undefined>;
  /** Another tenant's execution → undefined, as if it did not exist. */
  get(tenant: string, id: string): Promise<Execution | undefined>;
  /** Newest first. */
  list(tenant: string, query: ExecutionQuery): Promise<ExecutionSummary[]>;
  /** Executions an instance left queued or running (it died) become `lost`; returns how many. */
  markLost(instanceId: string, error?: StoredError): Promise<number>;
  /** Deletes executions (and their output) that ended more than `olderThanMs` ago; never open ones. */
  purge(olderThanMs: number): Promise<number>;
}

// ---------------------------------------------------------------- output

export type OutputStream = "stdout" | "stderr";

export interface OutputEvent {
  /** Numbered by the writer from 1, increasing per execution: the SSE event id. */
  seq: number;
  stream: OutputStream;
  data: Uint8Array;
}

export interface OutputPage {
  /** In seq order. */
  events: OutputEvent[];
  /** Bytes kept for this execution, and bytes dropped once `maxOutputBytes` was reached. */
  storedBytes: number;
  droppedBytes: number;
  /** Whether more events follow the page (read again after the last one). */
  more: boolean;
}

export interface OutputRecords {
  /**
   * Queues an event for the execution's replay log: a cheap enqueue for the
   * hot path, written in batches (a few ms or N events). Once the kept bytes
   * would pass `maxOutputBytes`, this event and every later one of the
   * execution are dropped and counted. Events of an unknown execution are
   * dropped. A batch that cannot be written (disk full) is lost for replay;
   * its error is thrown by the next `flush()` (and a final transition).
   */
  append(executionId: string, event: OutputEvent): void;
  /** Writes what is queued; rejects with the first write error since the last flush. */
  flush(): Promise<void>;
  /** Events with seq > afterSeq (0: from the start). Another tenant's → undefined. */
  read(
    tenant: string,
    executionId: string,
    options?: { afterSeq?: number; limit?: number },
  ): Promise<OutputPage | undefined>;
}

// ---------------------------------------------------------------- idempotency

/** The answer a POST/PUT gave, kept so that a retry gets it again. */
export interface StoredAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export type IdempotencyBegin =
  /** The caller now owns the key: run, then complete() or abandon() with this token. */
  | { state: "new"; token: string }
  /** The same request is running (here or on a sibling gateway): wait and begin again. */
  | { state: "in_flight" }
  | ({ state: "done" } & StoredAnswer)
  /** Same key, different request: 422 idempotency_key_reused. */
  | { state: "mismatch" };

export interface IdempotencyBeginOptions {
  /** How long the entry lives, from begin and again from complete. */
  ttlMs: number;
  /** The gateway that runs it, so its in-flight keys can be released after a crash. */
  instanceId: string;
}

export type CompleteOutcome =
  | "stored"
  /** The entry was abandoned, expired or taken by another owner. */
  | "not_owner"
  /** Over the store's `maxAnswerBytes`: not kept, and the entry was dropped as by abandon(). */
  | "too_large";

export interface IdempotencyRecords {
  /** Atomically: take the key, or report it running, answered, or used for another request. */
  begin(
    tenant: string,
    key: string,
    fingerprint: string,
    options: IdempotencyBeginOptions,
  ): Promise<IdempotencyBegin>;
  complete(
    tenant: string,
    key: string,
    token: string,
    answer: StoredAnswer,
  ): Promise<CompleteOutcome>;
  /** Drops an in-flight entry (a 5xx is not kept, so a retry may run). false: not the owner. */
  abandon(tenant: string, key: string, token: string): Promise<boolean>;
  /** Drops the in-flight entries of an instance that died; returns how many. */
  releaseInstance(instanceId: string): Promise<number>;
  /** Deletes expired entries; returns how many. (Expired ones are ignored before that.) */
  purge(): Promise<number>;
}

// ---------------------------------------------------------------- approvals

export type ApprovalStatus =
  | "pending"
  | "running"
  | "done"
  | "failed"
  | "denied"
  | "expired"
  | "cancelled";

export interface ApprovalRequest {
  tenant: string;
  keyId: string;
  profile: string;
  /** Why the policy asks for a human: "network", "jobsOverSeconds", … */
  reasons: string[];
  commandDigest: string;
  timeoutMs: number;
  workspace?: string | undefined;
  /**
   * The scopes the held job was admitted with: reading the approval (which
   * carries its result) needs them, or admin (api/routes/admin.ts).
   */
  scopes?: string[] | undefined;
}

export interface ApprovalRecord extends ApprovalRequest {
  id: string;
  /** A pending approval past expiresAt reads as `expired`. */
  status: ApprovalStatus;
  createdAt: string;
  expiresAt: string;
  decidedAt?: string;
  decidedBy?: string;
  /** The gateway that runs the approved job. */
  instanceId?: string;
  result?: unknown;
  resultDroppedBytes?: number;
  error?: StoredError;
}

export interface NewApproval {
  request: ApprovalRequest;
  ttlMs: number;
  /** Past this many pending approvals of the tenant, nothing is created. */
  maxPendingPerTenant: number;
  /**
   * What to run once approved, as the API serialises it (the request survives
   * a restart this way). Any JSON; returned by approve() only, never by reads.
   */
  job?: unknown;
}

export type ApprovalCreate =
  | { created: true; approval: ApprovalRecord }
  | { created: false; pending: number };

export interface ApprovalRecords {
  /** Checks the tenant's pending count and creates in one step. */
  create(approval: NewApproval): Promise<ApprovalCreate>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** Oldest first; status defaults to `pending`, "all" lists every status. */
  list(query?: {
    status?: ApprovalStatus | "all";
    tenant?: string;
    limit?: number;
  }): Promise<ApprovalRecord[]>;
  /**
   * pending (and unexpired) → running, exactly once however many call it;
   * only the call that changed it gets `job`. undefined: no such approval.
   */
  approve(
    id: string,
    by: string,
    instanceId: string,
  ): Promise<(Outcome<ApprovalRecord> & { job?: unknown }) | undefined>;
  /** pending → denied. */
  deny(id: string, by: string): Promise<Outcome<ApprovalRecord> | undefined>;
  /** pending → cancelled for a tenant (or all of them); returns how many. */
  cancelPending(tenant: string | undefined, by: string): Promise<number>;
  /** running → done (with a result) or failed (with an error). */
  finish(
    id: string,
    status: "done" | "failed",
    outcome: { result?: unknown; error?: StoredError },
  ): Promise<Outcome<ApprovalRecord> | undefined>;
  /** The running approvals of an instance that died → failed with `error`; returns how many. */
  failRunning(instanceId: string, error: StoredError): Promise<number>;
  /** Deletes approvals settled (or expired) more than `olderThanMs` ago. */
  purge(olderThanMs: number): Promise<number>;
}

// ---------------------------------------------------------------- audit

/** One operation, as policies/access/audit.ts writes it (never the command, env or output). */
export interface AuditRecord {
  time: string;
  requestId: string | null;
  /** What was done: "exec", "workspace.exec", "files.read", "admin.stop", "approval.run", … */
  op: string;
  method: string;
  path: string;
  tenant: string | null;
  keyId: string | null;
  /** The scopes the operation needed, comma-separated. */
  scope: string | null;
  profile: string | null;
  workspace: string | null;
  /** sha256 of the command (argv, code or language), so equal commands can be matched without showing them. */
  commandDigest: string | null;
  /** The result's status (ok, timeout, …), pending_approval, or the error code. */
  status: string;
  httpStatus: number;
  exitCode: number | null;
  durationMs: number;
  /** Bytes of the request body. */
  bytesIn: number | null;
  /** Bytes of output: stdout + stderr of a job, the size of a file or archive read. */
  bytesOut: number | null;
  approvalId: string | null;
  /** A job granted networks: its connections through the egress proxy, counted. */
  egress?: { allowed: number; denied: number; bytesOut: number; bytesIn: number };
}

/** The filters of GET /v1/audit. */
export interface AuditQuery {
  tenant?: string | undefined;
  /** One scope: records whose comma-separated `scope` includes it. */
  scope?: string | undefined;
  status?: string | undefined;
  op?: string | undefined;
  /** Epoch ms: records whose `time` is at or after it. */
  since?: number | undefined;
  limit?: number | undefined;
}

export interface AuditRecords {
  append(record: AuditRecord): Promise<void>;
  /** The most recently appended first (records are written when operations end). */
  query(query: AuditQuery): Promise<AuditRecord[]>;
  /** Deletes records older than `olderThanMs`, and the oldest past `keepAtMost`. */
  purge(olderThanMs: number, keepAtMost?: number): Promise<number>;
}

// ---------------------------------------------------------------- workspace manifests

/**
 * What a gateway last saw of each workspace (executor/manifest-cache.ts: per
 * path, its stat record, hash and perhaps small content), kept so that the
 * first job on a workspace after a restart reads only what changed. Opaque
 * bytes to the store, written only by the gateway (no tenant writes them);
 * the engine trusts an entry only while its stat record matches a listing
 * taken before the job's code exists, so a stale or lost one costs only speed.
 */
export interface ManifestRecords {
  get(workspace: string): Promise<Uint8Array | undefined>;
  /** Replaces the workspace's manifest. */
  put(workspace: string, data: Uint8Array): Promise<void>;
  delete(workspace: string): Promise<void>;
}

// ---------------------------------------------------------------- replicas

/** A gateway as the registry knows it (DESIGN.md "Replicas"). */
export interface GatewayRecord {
  instanceId: string;
  /** The Docker engine it drives: gateways with one engine id share workspaces' volumes. */
  engineId: string;
  /** Where sibling gateways reach it, for requests forwarded to its engine. */
  url: string;
  startedAt: string;
  /** The store's clock, not the gateway's: gateways on several hosts compare one clock. */
  heartbeatAt: string;
}

export interface GatewayRecords {
  /** Registers the gateway, or renews its heartbeat. */
  heartbeat(gateway: { instanceId: string; engineId: string; url: string }): Promise<void>;
  /** Gateways heard from within `maxAgeMs`, oldest first. */
  live(maxAgeMs: number): Promise<GatewayRecord[]>;
  /**
   * Removes the gateways not heard from for `maxAgeMs` and returns their ids;
   * each id is returned to one caller only, which ends what it left behind.
   */
  claimDead(maxAgeMs: number): Promise<string[]>;
  /** Removes a gateway that stops cleanly. */
  leave(instanceId: string): Promise<void>;
}

/** Which engine holds a workspace's volume. */
export interface WorkspacePlacements {
  place(workspaceId: string, tenant: string, engineId: string): Promise<void>;
  /** undefined: not recorded (made before the store knew, or gone). */
  engineOf(workspaceId: string): Promise<string | undefined>;
  remove(workspaceId: string): Promise<void>;
}

/** One sliding-window limit: at most `limit` takes of `key` within `windowMs`. */
export interface RateCheck {
  key: string;
  windowMs: number;
  limit: number;
}

export interface RateCounters {
  /**
   * Atomically, across every gateway on the store: when every check has room,
   * counts one take against each and returns undefined; otherwise counts
   * nothing and names the check that refused (the one whose room comes back last).
   */
  take(checks: readonly RateCheck[]): Promise<{ index: number; retryAfterMs: number } | undefined>;
  /** Forgets takes older than `olderThanMs` (longer than the longest window). */
  purge(olderThanMs: number): Promise<number>;
}

/** What a finished job used, for the hourly budgets. */
export interface UsageRecord {
  at: number;
  cpuMs: number;
  containerMs: number;
}

export interface QuotaCounters {
  /**
   * Atomically, across every gateway on the store: takes one of the tenant's
   * `max` job slots (an id to release), or says how many are taken.
   */
  acquireSlot(
    tenant: string,
    max: number,
    instanceId: string,
  ): Promise<{ slot: string } | { running: number }>;
  releaseSlot(slot: string): Promise<void>;
  /** The slots a gateway that died held; returns how many. */
  releaseInstance(instanceId: string): Promise<number>;
  running(tenant: string): Promise<number>;
  recordUsage(tenant: string, usage: UsageRecord): Promise<void>;
  /** The tenant's usage records since `sinceMs`, oldest first. */
  usageSince(tenant: string, sinceMs: number): Promise<UsageRecord[]>;
  /** Forgets usage older than `olderThanMs`. */
  purge(olderThanMs: number): Promise<number>;
}

/** An emergency stop: of a tenant, or of everything ("*"). */
export interface StopRecord {
  target: string;
  since: string;
}

export interface StopRecords {
  list(): Promise<StopRecord[]>;
  /** Records a stop; one in force already keeps its `since`. Returns the stop in force. */
  add(target: string, since: string): Promise<StopRecord>;
  remove(target: string): Promise<void>;
}

/**
 * What several gateways share beyond executions and approvals: the registry
 * of live gateways, where workspaces live, rate-limit counters and the
 * emergency stops. A store that serves one gateway may leave it out.
 */
export interface ClusterRecords {
  readonly gateways: GatewayRecords;
  readonly workspaces: WorkspacePlacements;
  readonly rates: RateCounters;
  readonly quotas: QuotaCounters;
  readonly stops: StopRecords;
  /** Every tenant's queued and running executions, oldest first (the operators' view). */
  openExecutions(limit: number): Promise<ExecutionSummary[]>;
  /** The gateway running an open execution (any tenant's), to send its cancel there. */
  runnerOf(executionId: string): Promise<string | undefined>;
}

// ---------------------------------------------------------------- the store

export interface StateLimits {
  /** A result (execution or approval) larger than this, as JSON, is not kept. */
  maxResultBytes: number;
  /** Output kept per execution for replay. */
  maxOutputBytes: number;
  /** An idempotent answer's body larger than this is not kept. */
  maxAnswerBytes: number;
}

export interface Retention {
  /** Finished executions and settled approvals. */
  executionsMs: number;
  auditMs: number;
  auditKeepAtMost?: number;
}

export interface PurgeReport {
  executions: number;
  idempotency: number;
  approvals: number;
  audit: number;
}

export interface StateStore {
  readonly executions: ExecutionRecords;
  readonly output: OutputRecords;
  readonly idempotency: IdempotencyRecords;
  readonly approvals: ApprovalRecords;
  readonly audit: AuditRecords;
  readonly limits: StateLimits;
  /** Workspace manifests; a store without them costs a full read of each workspace after a restart. */
  readonly manifests?: ManifestRecords;
  /** Shared by the gateways on this store (DESIGN.md "Replicas"). */
  readonly cluster?: ClusterRecords;
  /** Everything past its retention, and expired idempotency entries. */
  purge(retention: Retention): Promise<PurgeReport>;
  /** Writes queued output and closes; later calls fail. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- errors

/**
 * The store cannot be used now: disk full, a read-only file or directory, an
 * I/O error, a lock held past the busy timeout, a damaged file. The API
 * answers 503 with this message; nothing of the request was recorded.
 */
export class StoreUnavailableError extends Error {
  readonly reason: "full" | "read_only" | "io" | "busy" | "corrupt";

  constructor(reason: StoreUnavailableError["reason"], message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreUnavailableError";
    this.reason = reason;
  }
}

/** The store's data was written by a newer airlock: refused at open, nothing changed. */
export class StoreVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreVersionError";
  }
}

/** A record with this id exists already (ids are random: a caller's bug, not a user's). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreConflictError";
  }
}
