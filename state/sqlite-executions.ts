// Execution records in the embedded store. Every status change is one UPDATE
// whose WHERE clause holds EXECUTION_TRANSITIONS, so two gateways (or a cancel
// racing the job's end) cannot both win, and a final status is never left.
import {
  EXECUTION_TRANSITIONS,
  type Execution,
  type ExecutionQuery,
  type ExecutionRecords,
  type ExecutionStatus,
  type ExecutionSummary,
  endStampsStart,
  isFinalExecutionStatus,
  type NewExecution,
  type Outcome,
  StoreConflictError,
  type StoredError,
  type TransitionOptions,
} from "../core/state.ts";
import { newExecutionValues, toExecution, toSummary } from "./rows.ts";
import { capJson, type Db } from "./sqlite-db.ts";
import type { SqliteOutput } from "./sqlite-output.ts";

const SUMMARY_COLUMNS =
  "id, tenant, status, profile, workspace, instance_id, created_at, started_at, ended_at, " +
  "result_dropped_bytes, error, output_bytes, output_dropped_bytes";
const ALL_COLUMNS = `${SUMMARY_COLUMNS}, result`;

/** Per target status, the statuses it may be reached from. */
function sourcesOf(to: ExecutionStatus): ExecutionStatus[] {
  return (Object.keys(EXECUTION_TRANSITIONS) as ExecutionStatus[]).filter((from) =>
    EXECUTION_TRANSITIONS[from].includes(to),
  );
}

/** `started`: an end that also stamps startedAt when the record has none (endStampsStart). */
function transitionSql(to: ExecutionStatus, started: boolean): string {
  const from = sourcesOf(to)
    .map((s) => `'${s}'`)
    .join(", ");
  // Only the columns that change are SET: SQLite rewrites every index that
  // names a SET column, and each index page is one more page in the log.
  const stamp =
    to === "running"
      ? "started_at = ?1,"
      : isFinalExecutionStatus(to)
        ? `ended_at = ?1,${started ? " started_at = coalesce(started_at, ?1)," : ""}`
        : "";
  return `UPDATE executions SET status = '${to}', ${stamp}
      result = coalesce(?2, result),
      result_dropped_bytes = coalesce(?3, result_dropped_bytes),
      error = coalesce(?4, error)
    WHERE id = ?5 AND status IN (${from || "NULL"}) AND (?6 IS NULL OR tenant = ?6)
    RETURNING ${SUMMARY_COLUMNS}, result IS NOT NULL AS has_result`;
}

/** Per target status: the statement without, then with, the start stamp. */
const TRANSITION_SQL = Object.fromEntries(
  (Object.keys(EXECUTION_TRANSITIONS) as ExecutionStatus[]).map((to) => [
    to,
    [transitionSql(to, false), transitionSql(to, true)],
  ]),
) as Record<ExecutionStatus, [string, string]>;

export class SqliteExecutions implements ExecutionRecords {
  private readonly db: Db;
  private readonly output: SqliteOutput;
  private readonly now: () => number;
  private readonly maxResultBytes: number;

  constructor(db: Db, output: SqliteOutput, now: () => number, maxResultBytes: number) {
    this.db = db;
    this.output = output;
    this.now = now;
    this.maxResultBytes = maxResultBytes;
  }

  async create(n: NewExecution): Promise<Execution> {
    const row = this.db.guard(() =>
      this.db
        .stmt(
          `INSERT INTO executions (id, tenant, status, profile, workspace, instance_id, created_at, started_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING ${ALL_COLUMNS}`,
        )
        .get(...newExecutionValues(n, this.now())),
    );
    if (row === undefined) throw new StoreConflictError(`execution ${n.id} exists already`);
    return toExecution(row);
  }

  async transition(
    id: string,
    to: ExecutionStatus,
    options: TransitionOptions = {},
  ): Promise<Outcome<Execution> | undefined> {
    const result = capJson(options.result, this.maxResultBytes);
    const error = options.error === undefined ? null : JSON.stringify(options.error);
    const tenant = options.tenant ?? null;
    const sql = TRANSITION_SQL[to][endStampsStart(to, options) ? 1 : 0];
    const change = () =>
      this.db.stmt(sql).get(this.now(), result.json, result.droppedBytes, error, id, tenant);
    // A final status and the output before it become visible together.
    const row =
      isFinalExecutionStatus(to) && this.output.hasPending()
        ? this.db.tx(() => {
            this.output.writePending();
            return change();
          })
        : this.db.guard(change);
    if (row === undefined) {
      const current = await this.find(id, tenant);
      return current === undefined ? undefined : { changed: false, record: current };
    }
    const record: Execution = toSummary(row);
    // The result just written is the caller's value: not parsed back from its JSON.
    if (result.json !== null) record.result = options.result;
    else if (row["has_result"] === 1) record.result = (await this.find(id, null))?.result;
    return { changed: true, record };
  }

  async get(tenant: string, id: string): Promise<Execution | undefined> {
    return this.find(id, tenant);
  }

  private async find(id: string, tenant: string | null): Promise<Execution | undefined> {
    const row = this.db.guard(() =>
      this.db
        .stmt(`SELECT ${ALL_COLUMNS} FROM executions WHERE id = ?1 AND (?2 IS NULL OR tenant = ?2)`)
        .get(id, tenant),
    );
    return row === undefined ? undefined : toExecution(row);
  }

  async list(tenant: string, q: ExecutionQuery): Promise<ExecutionSummary[]> {
    const where = ["tenant = ?"];
    const params: (string | number)[] = [tenant];
    if (q.status !== undefined) {
      where.push("status = ?");
      params.push(q.status);
    }
    if (q.workspace !== undefined) {
      where.push("workspace = ?");
      params.push(q.workspace);
    }
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM executions WHERE ${where.join(" AND ")}
      ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    const rows = this.db.guard(() =>
      this.db.stmt(sql).all(...params, Math.max(0, Math.floor(q.limit))),
    );
    return rows.map(toSummary);
  }

  async markLost(instanceId: string, error?: StoredError): Promise<number> {
    const r = this.db.guard(() =>
      this.db
        .stmt(
          `UPDATE executions SET status = 'lost', ended_at = ?, error = coalesce(?, error)
           WHERE instance_id = ? AND ended_at IS NULL`,
        )
        .run(this.now(), error === undefined ? null : JSON.stringify(error), instanceId),
    );
    return Number(r.changes);
  }

  async purge(olderThanMs: number): Promise<number> {
    // Output rows go with their execution (ON DELETE CASCADE). An execution
    // ends after it is created, so created_at < cutoff adds nothing but the
    // index to find them by (one that no status change has to rewrite).
    return this.db.deleteInChunks(
      `DELETE FROM executions WHERE id IN (SELECT id FROM executions
         WHERE created_at < ?1 AND ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)`,
      [this.now() - olderThanMs],
      500,
    );
  }
}
