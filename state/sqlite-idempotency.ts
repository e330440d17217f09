// Idempotency-Key entries in the embedded store. begin() reads and takes the
// key in one write transaction, so of two requests with the same key (on one
// gateway or two) exactly one runs; the other sees it in flight, then its
// answer. The owner holds a token, so an owner whose entry expired or was
// released cannot overwrite the next owner's.
import { randomUUID } from "node:crypto";
import type {
  CompleteOutcome,
  IdempotencyBegin,
  IdempotencyBeginOptions,
  IdempotencyRecords,
  StoredAnswer,
} from "../core/state.ts";
import type { Db } from "./sqlite-db.ts";

export class SqliteIdempotency implements IdempotencyRecords {
  private readonly db: Db;
  private readonly now: () => number;
  private readonly maxAnswerBytes: number;

  constructor(db: Db, now: () => number, maxAnswerBytes: number) {
    this.db = db;
    this.now = now;
    this.maxAnswerBytes = maxAnswerBytes;
  }

  async begin(
    tenant: string,
    key: string,
    fingerprint: string,
    options: IdempotencyBeginOptions,
  ): Promise<IdempotencyBegin> {
    const now = this.now();
    return this.db.tx((): IdempotencyBegin => {
      const row = this.db
        .stmt(
          `SELECT fingerprint, state, status, headers, body FROM idempotency
           WHERE tenant = ? AND key = ? AND expires_at > ?`,
        )
        .get(tenant, key, now);
      if (row !== undefined) {
        if (row["fingerprint"] !== fingerprint) return { state: "mismatch" };
        if (row["state"] === "in_flight") return { state: "in_flight" };
        return {
          state: "done",
          status: row["status"] as number,
          headers: JSON.parse(row["headers"] as string) as Record<string, string>,
          body: row["body"] as Uint8Array,
        };
      }
      // Absent, or expired: the key is free again.
      const token = randomUUID();
      this.db
        .stmt(
          `INSERT OR REPLACE INTO idempotency
             (tenant, key, fingerprint, state, token, instance_id, ttl_ms, expires_at)
           VALUES (?, ?, ?, 'in_flight', ?, ?, ?, ?)`,
        )
        .run(
          tenant,
          key,
          fingerprint,
          token,
          options.instanceId,
          options.ttlMs,
          now + options.ttlMs,
        );
      return { state: "new", token };
    });
  }

  async complete(
    tenant: string,
    key: string,
    token: string,
    answer: StoredAnswer,
  ): Promise<CompleteOutcome> {
    if (answer.body.byteLength > this.maxAnswerBytes) {
      // Not kept: drop the entry, so a retry runs rather than waiting forever.
      return (await this.abandon(tenant, key, token)) ? "too_large" : "not_owner";
    }
    const r = this.db.guard(() =>
      this.db
        .stmt(
          `UPDATE idempotency SET state = 'done', token = NULL, status = ?, headers = ?, body = ?,
             expires_at = ? + ttl_ms
           WHERE tenant = ? AND key = ? AND token = ? AND state = 'in_flight'`,
        )
        .run(
          answer.status,
          JSON.stringify(answer.headers),
          answer.body,
          this.now(),
          tenant,
          key,
          token,
        ),
    );
    return r.changes ? "stored" : "not_owner";
  }

  async abandon(tenant: string, key: string, token: string): Promise<boolean> {
    const r = this.db.guard(() =>
      this.db
        .stmt(
          "DELETE FROM idempotency WHERE tenant = ? AND key = ? AND token = ? AND state = 'in_flight'",
        )
        .run(tenant, key, token),
    );
    return r.changes > 0;
  }

  async releaseInstance(instanceId: string): Promise<number> {
    const r = this.db.guard(() =>
      this.db
        .stmt("DELETE FROM idempotency WHERE instance_id = ? AND state = 'in_flight'")
        .run(instanceId),
    );
    return Number(r.changes);
  }

  async purge(): Promise<number> {
    return this.db.deleteInChunks(
      `DELETE FROM idempotency WHERE (tenant, key) IN
         (SELECT tenant, key FROM idempotency WHERE expires_at <= ? LIMIT ?)`,
      [this.now()],
    );
  }
}
