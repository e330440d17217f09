// Execution records in the PostgreSQL store. As in the embedded store, every
// status change is one UPDATE whose WHERE clause holds EXECUTION_TRANSITIONS,
// so of two gateways (or a cancel racing the job's end) only one wins.
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
import { type Param, type PgDb, type Prepared, prepared, type Row } from "./pg-db.ts";
import { outputColumns, type PgOutput } from "./pg-output.ts";
import { newExecutionValues, toExecution, toSummary } from "./rows.ts";
import { capJson } from "./sqlite-db.ts";

export const SUMMARY_COLUMNS =
  "id, tenant, status, profile, workspace, instance_id, created_at, started_at, ended_at, " +
  "result_dropped_bytes, error, output_bytes, output_dropped_bytes";
const ALL_COLUMNS = `${SUMMARY_COLUMNS}, result`;

function sourcesOf(to: ExecutionStatus): ExecutionStatus[] {
  return (Object.keys(EXECUTION_TRANSITIONS) as ExecutionStatus[]).filter((from) =>
    EXECUTION_TRANSITIONS[from].includes(to),
  );
}

function transitionSql(to: ExecutionStatus): string {
  const from = sourcesOf(to)
    .map((s) => `'${s}'`)
    .join(", ");
  const stamp =
    to === "running" ? "started_at = $1," : isFinalExecutionStatus(to) ? "ended_at = $1," : "";
  return `UPDATE executions SET status = '${to}', ${stamp}
      result = coalesce($2, result),
      result_dropped_bytes = coalesce($3::bigint, result_dropped_bytes),
      error = coalesce($4, error)
    WHERE id = $5 AND status IN (${from || "NULL"}) AND ($6::text IS NULL OR tenant = $6)
    RETURNING ${SUMMARY_COLUMNS}, result IS NOT NULL AS has_result`;
}

const TRANSITION_SQL = Object.fromEntries(
  (Object.keys(EXECUTION_TRANSITIONS) as ExecutionStatus[]).map((to) => [
    to,
    prepared(transitionSql(to)),
  ]),
) as Record<ExecutionStatus, Prepared>;

const CREATE_SQL = prepared(
  `INSERT INTO executions (id, tenant, status, profile, workspace, instance_id, created_at, started_at)
   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING ${ALL_COLUMNS}`,
);
const END_SQL = prepared(
  `SELECT ${SUMMARY_COLUMNS}, result IS NOT NULL AS has_result
   FROM airlock_end_execution($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
);
const FIND_SQL = prepared(
  `SELECT ${ALL_COLUMNS} FROM executions WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)`,
);

export class PgExecutions implements ExecutionRecords {
  private readonly db: PgDb;
  private readonly output: PgOutput;
  private readonly now: () => number;
  private readonly maxResultBytes: number;

  constructor(db: PgDb, output: PgOutput, now: () => number, maxResultBytes: number) {
    this.db = db;
    this.output = output;
    this.now = now;
    this.maxResultBytes = maxResultBytes;
  }

  async create(n: NewExecution): Promise<Execution> {
    const rows = await this.db.query(CREATE_SQL, newExecutionValues(n, this.now()));
    const row = rows[0];
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
    const params = [this.now(), result.json, result.droppedBytes, error, id, tenant];
    const rows = isFinalExecutionStatus(to)
      ? await this.end(to, params, endStampsStart(to, options))
      : await this.db.query(TRANSITION_SQL[to], params);
    const row = rows[0];
    if (row === undefined) {
      const current = await this.find(id, tenant);
      return current === undefined ? undefined : { changed: false, record: current };
    }
    const record: Execution = toSummary(row);
    if (result.json !== null) record.result = options.result;
    else if (row["has_result"] === true) record.result = (await this.find(id, null))?.result;
    return { changed: true, record };
  }

  /**
   * A final status, in one round trip with the output still queued for it
   * (airlock_end_execution in pg-schema.ts): the output is written first, so
   * a reader that sees the end sees all of it; `started` stamps started_at
   * when the record has none (a job that ran, ended straight from queued).
   */
  private async end(to: ExecutionStatus, params: Param[], started: boolean): Promise<Row[]> {
    const [now, json, dropped, error, id, tenant] = params;
    const events = await this.output.takeQueued(id as string);
    const rows = await this.db.query(END_SQL, [
      id as string,
      to,
      sourcesOf(to),
      now as number,
      json as string | null,
      dropped as number | null,
      error as string | null,
      tenant as string | null,
      started,
      ...outputColumns(events),
      this.output.maxOutputBytes,
    ]);
    return rows;
  }

  async get(tenant: string, id: string): Promise<Execution | undefined> {
    return this.find(id, tenant);
  }

  private async find(id: string, tenant: string | null): Promise<Execution | undefined> {
    const rows = await this.db.query(FIND_SQL, [id, tenant]);
    return rows[0] === undefined ? undefined : toExecution(rows[0]);
  }

  async list(tenant: string, q: ExecutionQuery): Promise<ExecutionSummary[]> {
    const rows = await this.db.query(
      `SELECT ${SUMMARY_COLUMNS} FROM executions
       WHERE tenant = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR workspace = $3)
       ORDER BY created_at DESC, seq DESC LIMIT $4`,
      [tenant, q.status ?? null, q.workspace ?? null, Math.max(0, Math.floor(q.limit))],
    );
    return rows.map(toSummary);
  }

  async markLost(instanceId: string, error?: StoredError): Promise<number> {
    const rows = await this.db.query(
      `UPDATE executions SET status = 'lost', ended_at = $1, error = coalesce($2, error)
       WHERE instance_id = $3 AND ended_at IS NULL RETURNING id`,
      [this.now(), error === undefined ? null : JSON.stringify(error), instanceId],
    );
    return rows.length;
  }

  async purge(olderThanMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.db.query(
        `DELETE FROM executions WHERE id IN (SELECT id FROM executions
           WHERE created_at < $1 AND ended_at IS NOT NULL AND ended_at < $1 LIMIT 500) RETURNING id`,
        [this.now() - olderThanMs],
      );
      total += rows.length;
      if (rows.length < 500) return total;
    }
  }
}
