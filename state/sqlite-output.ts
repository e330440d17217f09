// Execution output kept for replay (GET /v1/executions/:id/events). A job
// streams many small chunks, so appending is an in-memory enqueue and the
// queue is written in one transaction every few milliseconds or N events:
// one commit per chunk would cost more than the job. Each execution keeps at
// most maxOutputBytes; from the first event that does not fit, it and every
// later one are counted as dropped, so a replay is always a prefix of the
// output with no holes. The queued bytes are copied into one buffer that each
// batch reuses: a copy per event would leave as much garbage as the jobs print
// (1 GB for 100 streams of 10 MB), and V8 frees such buffers late, once they
// outlive a young collection, so they would set the gateway's peak memory.
import type { OutputEvent, OutputPage, OutputRecords, OutputStream } from "../core/state.ts";
import type { Db } from "./sqlite-db.ts";

export interface OutputOptions {
  maxOutputBytes: number;
  /** Longest an event waits in memory. */
  flushMs: number;
  /** Events, or bytes, queued at which the queue is written at once. */
  batchEvents: number;
  batchBytes: number;
  /** Told of a batch that could not be written (it is also thrown by the next flush). */
  onError: (err: unknown) => void;
}

interface Queued {
  executionId: string;
  event: OutputEvent;
}

export class SqliteOutput implements OutputRecords {
  private readonly db: Db;
  private readonly o: OutputOptions;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  /**
   * Where the queued events' bytes are, the first `queuedBytes` of it; made on
   * the first event. An event larger than it is queued alone and written at once.
   */
  private arena: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;

  constructor(db: Db, options: OutputOptions) {
    this.db = db;
    this.o = options;
  }

  append(executionId: string, event: OutputEvent): void {
    if (!Number.isSafeInteger(event.seq) || event.seq < 1) {
      throw new RangeError(`output seq must be an integer from 1, got ${event.seq}`);
    }
    // A copy: the caller may reuse its buffer before the batch is written.
    const data = this.copy(event.data);
    this.queue.push({ executionId, event: { seq: event.seq, stream: event.stream, data } });
    this.queuedBytes += data.byteLength;
    if (this.queue.length >= this.o.batchEvents || this.queuedBytes >= this.o.batchBytes) {
      this.writeQueued();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.writeQueued(), this.o.flushMs);
      this.timer.unref();
    }
  }

  /** `data` in the arena (the queue written first when it is full), or alone if larger than it. */
  private copy(data: Uint8Array): Uint8Array {
    const size = data.byteLength;
    if (size > this.o.batchBytes) return Uint8Array.prototype.slice.call(data);
    if (this.queuedBytes + size > this.o.batchBytes) this.writeQueued();
    this.arena ??= Buffer.allocUnsafeSlow(this.o.batchBytes);
    const at = this.queuedBytes;
    this.arena.set(data, at);
    return this.arena.subarray(at, at + size);
  }

  async flush(): Promise<void> {
    this.writeQueued();
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** Writes the queue in its own transaction; a failure is kept for flush() and reported. */
  private writeQueued(): void {
    if (this.queue.length === 0) return;
    try {
      this.db.tx(() => this.writePending());
    } catch (err) {
      this.failure ??= err;
      this.o.onError(err);
    }
  }

  hasPending(): boolean {
    return this.queue.length > 0;
  }

  /** Writes the queue inside the caller's transaction (a final transition), then empties it. */
  writePending(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    // The arena is free again once this returns: every write below is synchronous.
    const queue = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    const byExecution = new Map<string, OutputEvent[]>();
    for (const q of queue) {
      const list = byExecution.get(q.executionId);
      if (list === undefined) byExecution.set(q.executionId, [q.event]);
      else list.push(q.event);
    }
    for (const [id, events] of byExecution) this.writeEvents(id, events);
  }

  private writeEvents(executionId: string, events: OutputEvent[]): void {
    const counts = this.db
      .stmt(
        "SELECT output_bytes AS kept, output_dropped_bytes AS dropped FROM executions WHERE id = ?",
      )
      .get(executionId);
    if (counts === undefined) return; // purged, or never recorded: nothing to replay it for
    let kept = counts["kept"] as number;
    let dropped = counts["dropped"] as number;
    const insert = this.db.stmt(
      "INSERT INTO output (execution_id, seq, stream, data) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    );
    for (const e of events) {
      const bytes = e.data.byteLength;
      if (dropped > 0 || kept + bytes > this.o.maxOutputBytes) {
        dropped += bytes;
        continue;
      }
      // A seq written before (a writer's retry) is neither stored nor counted twice.
      if (insert.run(executionId, e.seq, e.stream, e.data).changes) kept += bytes;
    }
    this.db
      .stmt("UPDATE executions SET output_bytes = ?, output_dropped_bytes = ? WHERE id = ?")
      .run(kept, dropped, executionId);
  }

  async read(
    tenant: string,
    executionId: string,
    options: { afterSeq?: number; limit?: number } = {},
  ): Promise<OutputPage | undefined> {
    // What this gateway queued so far becomes readable first.
    this.writeQueued();
    const limit = Math.min(Math.max(1, Math.floor(options.limit ?? 1000)), 10_000);
    return this.db.guard(() => {
      const counts = this.db
        .stmt(
          "SELECT output_bytes AS kept, output_dropped_bytes AS dropped FROM executions WHERE id = ? AND tenant = ?",
        )
        .get(executionId, tenant);
      if (counts === undefined) return undefined;
      const rows = this.db
        .stmt(
          "SELECT seq, stream, data FROM output WHERE execution_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .all(executionId, options.afterSeq ?? 0, limit + 1);
      const more = rows.length > limit;
      return {
        events: rows.slice(0, limit).map((r) => ({
          seq: r["seq"] as number,
          stream: r["stream"] as OutputStream,
          data: r["data"] as Uint8Array,
        })),
        storedBytes: counts["kept"] as number,
        droppedBytes: counts["dropped"] as number,
        more,
      };
    });
  }

  /** Stops the timer; what is queued is written by the caller (close). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
