// Execution output kept for replay in the PostgreSQL store. As in the embedded
// store (sqlite-output.ts), append is an in-memory enqueue and the queue is
// written every few milliseconds or N events, one statement per execution;
// batches are written one after another, in order, so a replay is always a prefix of the
// output with no holes, capped at maxOutputBytes per execution.
import type { OutputEvent, OutputPage, OutputRecords, OutputStream } from "../core/state.ts";
import { type PgDb, prepared } from "./pg-db.ts";

/** Prepared (pg-db.ts): a streaming job writes a batch every few milliseconds. */
const WRITE = prepared("SELECT airlock_write_output($1, $2, $3, $4, $5)");

import type { OutputOptions } from "./sqlite-output.ts";

interface Queued {
  executionId: string;
  event: OutputEvent;
}

export class PgOutput implements OutputRecords {
  private readonly db: PgDb;
  private readonly o: OutputOptions;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  /** The batches being written, chained: each starts when the one before it ended. */
  private writing: Promise<void> = Promise.resolve();

  constructor(db: PgDb, options: OutputOptions) {
    this.db = db;
    this.o = options;
  }

  append(executionId: string, event: OutputEvent): void {
    if (!Number.isSafeInteger(event.seq) || event.seq < 1) {
      throw new RangeError(`output seq must be an integer from 1, got ${event.seq}`);
    }
    const data = Uint8Array.prototype.slice.call(event.data);
    this.queue.push({ executionId, event: { seq: event.seq, stream: event.stream, data } });
    this.queuedBytes += data.byteLength;
    if (this.queue.length >= this.o.batchEvents || this.queuedBytes >= this.o.batchBytes) {
      this.writeQueued();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.writeQueued(), this.o.flushMs);
      this.timer.unref();
    }
  }

  async flush(): Promise<void> {
    await this.flushQuietly();
    const failure = this.failure;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** Writes what is queued and waits for every batch under way; failures stay for flush(). */
  async flushQuietly(): Promise<void> {
    this.writeQueued();
    await this.writing;
  }

  private writeQueued(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.writing = this.writing.then(() =>
      this.writeBatch(batch).catch((err: unknown) => {
        this.failure ??= err;
        this.o.onError(err);
      }),
    );
  }

  private async writeBatch(batch: Queued[]): Promise<void> {
    const byExecution = new Map<string, OutputEvent[]>();
    for (const item of batch) {
      const list = byExecution.get(item.executionId);
      if (list === undefined) byExecution.set(item.executionId, [item.event]);
      else list.push(item.event);
    }
    for (const [id, events] of byExecution) await this.writeEvents(id, events);
  }

  /**
   * One statement per execution and batch (one round trip, airlock_write_output
   * in pg-schema.ts): the events that still fit under maxOutputBytes — a
   * prefix, by their running total — are inserted, the rest counted as
   * dropped, under the execution row's lock. An event whose seq was written
   * before (a writer's retry) is neither stored nor counted twice. An unknown
   * execution's events are dropped.
   */
  private async writeEvents(executionId: string, events: OutputEvent[]): Promise<void> {
    await this.db.query(WRITE, [executionId, ...outputColumns(events), this.o.maxOutputBytes]);
  }

  /**
   * An execution's queued events, taken out of the queue to be written with
   * its end (one round trip: pg-executions.ts), once every batch written
   * before them is in.
   */
  async takeQueued(executionId: string): Promise<OutputEvent[]> {
    const mine = this.queue.filter((q) => q.executionId === executionId);
    if (mine.length > 0) {
      this.queue = this.queue.filter((q) => q.executionId !== executionId);
      this.queuedBytes -= mine.reduce((n, q) => n + q.event.data.byteLength, 0);
    }
    await this.writing;
    return mine.map((q) => q.event);
  }

  get maxOutputBytes(): number {
    return this.o.maxOutputBytes;
  }

  async read(
    tenant: string,
    executionId: string,
    options: { afterSeq?: number; limit?: number } = {},
  ): Promise<OutputPage | undefined> {
    // What this gateway queued so far becomes readable first.
    await this.flushQuietly();
    const limit = Math.min(Math.max(1, Math.floor(options.limit ?? 1000)), 10_000);
    const counts = (
      await this.db.query(
        "SELECT output_bytes AS kept, output_dropped_bytes AS dropped FROM executions WHERE id = $1 AND tenant = $2",
        [executionId, tenant],
      )
    )[0];
    if (counts === undefined) return undefined;
    const rows = await this.db.query(
      "SELECT seq, stream, data FROM output WHERE execution_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
      [executionId, options.afterSeq ?? 0, limit + 1],
    );
    return {
      events: rows.slice(0, limit).map((r) => ({
        seq: r["seq"] as number,
        stream: r["stream"] as OutputStream,
        data: new Uint8Array(r["data"] as Buffer),
      })),
      storedBytes: counts["kept"] as number,
      droppedBytes: counts["dropped"] as number,
      more: rows.length > limit,
    };
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Events as the three arrays airlock_write_output takes (seqs, streams, bytes). */
export function outputColumns(events: OutputEvent[]): [number[], string[], never] {
  return [
    events.map((e) => e.seq),
    events.map((e) => e.stream),
    events.map((e) => Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength)) as never,
  ];
}
