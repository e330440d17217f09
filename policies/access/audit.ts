// The audit trail: one JSON line per operation, written to a file or stdout
// and kept where GET /v1/audit reads it: the state store's audit records (so
// every gateway on a shared store reads every gateway's, across restarts), or,
// without a store (unit tests), a bounded in-memory ring. A record holds
// who (tenant, key id — never the key), what (scope, profile, a digest of the
// command — never the command, its env or its output) and how it ended.
import { createHash } from "node:crypto";
import type { AuditQuery, AuditRecord, AuditRecords } from "../../core/state.ts";

// The record and the query are the state store's (core/state.ts): one shape
// for the ring here and the store's audit table.
export type { AuditQuery, AuditRecord } from "../../core/state.ts";

export function commandDigest(parts: {
  command?: string | readonly string[] | undefined;
  code?: string | undefined;
  language?: string | undefined;
}): string | null {
  if (parts.command === undefined && parts.code === undefined) return null;
  const canonical = JSON.stringify([
    parts.command ?? null,
    parts.code ?? null,
    parts.language ?? null,
  ]);
  return `sha256:${createHash("sha256").update(canonical).digest("hex")}`;
}

export interface AuditLogOptions {
  /** Records kept in the ring when there is no store (0: none). */
  ringSize?: number;
  /** The state store's audit records: kept there instead of the ring. */
  records?: AuditRecords | undefined;
  /** Told of a record the store could not keep (its line was still written). */
  onError?: (err: unknown) => void;
}

export class AuditLog {
  private readonly ring: AuditRecord[] = [];
  private readonly write: (line: string) => void;
  private readonly ringSize: number;
  private readonly records: AuditRecords | undefined;
  private readonly onError: (err: unknown) => void;
  /** Appends under way: a query waits for them, so a gateway reads its own records at once. */
  private readonly pending = new Set<Promise<void>>();

  constructor(write: (line: string) => void, options: AuditLogOptions = {}) {
    this.write = write;
    this.ringSize = options.ringSize ?? 10_000;
    this.records = options.records;
    this.onError = options.onError ?? (() => {});
  }

  record(r: AuditRecord): void {
    this.write(`${JSON.stringify(r)}\n`);
    if (this.records !== undefined) {
      // Never holds back the answer; a store that cannot keep it still has the line.
      const p = this.records
        .append(r)
        .catch((err: unknown) => this.onError(err))
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
      return;
    }
    if (this.ringSize === 0) return;
    this.ring.push(r);
    if (this.ring.length > this.ringSize) this.ring.splice(0, this.ring.length - this.ringSize);
  }

  /** Newest first. */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    if (this.records !== undefined) {
      await Promise.all(this.pending);
      return this.records.query(q);
    }
    return this.ringQuery(q);
  }

  private ringQuery(q: AuditQuery): AuditRecord[] {
    const out: AuditRecord[] = [];
    const limit = q.limit ?? 100;
    for (let i = this.ring.length - 1; i >= 0 && out.length < limit; i--) {
      const r = this.ring[i] as AuditRecord;
      // Not a break: records are written when operations end, so their start times interleave.
      if (q.since !== undefined && Date.parse(r.time) < q.since) continue;
      if (q.tenant !== undefined && r.tenant !== q.tenant) continue;
      if (q.scope !== undefined && !(r.scope ?? "").split(",").includes(q.scope)) continue;
      if (q.status !== undefined && r.status !== q.status) continue;
      if (q.op !== undefined && r.op !== q.op) continue;
      out.push(r);
    }
    return out;
  }
}
