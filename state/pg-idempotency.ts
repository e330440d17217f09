// Idempotency-Key entries in the PostgreSQL store. begin() takes the key in
// one statement — an insert that may replace only an expired entry — so of two
// requests with the same key on any gateways exactly one runs; the other reads
// the entry: in flight, answered, or another request's.
import { randomUUID } from "node:crypto";
import type {
  CompleteOutcome,
  IdempotencyBegin,
  IdempotencyBeginOptions,
  IdempotencyRecords,
  StoredAnswer,
} from "../core/state.ts";
import type { PgDb } from "./pg-db.ts";

export class PgIdempotency implements IdempotencyRecords {
  private readonly db: PgDb;
  private readonly now: () => number;
  private readonly maxAnswerBytes: number;

  constructor(db: PgDb, now: () => number, maxAnswerBytes: number) {
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
    // An entry dropped between the two statements (abandoned, purged) frees the key: take it again.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.now();
      const token = randomUUID();
      const taken = await this.db.query(
        `INSERT INTO idempotency AS i (tenant, key, fingerprint, state, token, instance_id, ttl_ms, expires_at)
         VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7)
         ON CONFLICT (tenant, key) DO UPDATE SET fingerprint = excluded.fingerprint,
           state = 'in_flight', token = excluded.token, instance_id = excluded.instance_id,
           ttl_ms = excluded.ttl_ms, expires_at = excluded.expires_at,
           status = NULL, headers = NULL, body = NULL
         WHERE i.expires_at <= $8
         RETURNING token`,
        [
          tenant,
          key,
          fingerprint,
          token,
          options.instanceId,
          options.ttlMs,
          now + options.ttlMs,
          now,
        ],
      );
      if (taken.length > 0) return { state: "new", token };
      const row = (
        await this.db.query(
          `SELECT fingerprint, state, status, headers, body FROM idempotency
           WHERE tenant = $1 AND key = $2 AND expires_at > $3`,
          [tenant, key, now],
        )
      )[0];
      if (row === undefined) continue;
      if (row["fingerprint"] !== fingerprint) return { state: "mismatch" };
      if (row["state"] === "in_flight") return { state: "in_flight" };
      return {
        state: "done",
        status: row["status"] as number,
        headers: JSON.parse(row["headers"] as string) as Record<string, string>,
        body: new Uint8Array(row["body"] as Buffer),
      };
    }
    // Taken and dropped again five times in a row: as good as in flight.
    return { state: "in_flight" };
  }

  async complete(
    tenant: string,
    key: string,
    token: string,
    answer: StoredAnswer,
  ): Promise<CompleteOutcome> {
    if (answer.body.byteLength > this.maxAnswerBytes) {
      return (await this.abandon(tenant, key, token)) ? "too_large" : "not_owner";
    }
    const rows = await this.db.query(
      `UPDATE idempotency SET state = 'done', token = NULL, status = $1, headers = $2, body = $3,
         expires_at = $4 + ttl_ms
       WHERE tenant = $5 AND key = $6 AND token = $7 AND state = 'in_flight' RETURNING key`,
      [
        answer.status,
        JSON.stringify(answer.headers),
        Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength),
        this.now(),
        tenant,
        key,
        token,
      ],
    );
    return rows.length > 0 ? "stored" : "not_owner";
  }

  async abandon(tenant: string, key: string, token: string): Promise<boolean> {
    const rows = await this.db.query(
      "DELETE FROM idempotency WHERE tenant = $1 AND key = $2 AND token = $3 AND state = 'in_flight' RETURNING key",
      [tenant, key, token],
    );
    return rows.length > 0;
  }

  async releaseInstance(instanceId: string): Promise<number> {
    const rows = await this.db.query(
      "DELETE FROM idempotency WHERE instance_id = $1 AND state = 'in_flight' RETURNING key",
      [instanceId],
    );
    return rows.length;
  }

  async purge(): Promise<number> {
    const rows = await this.db.query(
      "DELETE FROM idempotency WHERE expires_at <= $1 RETURNING key",
      [this.now()],
    );
    return rows.length;
  }
}
