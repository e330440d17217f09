// The audit trail: one JSON line per operation, written to a file or stdout
// and kept in a bounded in-memory ring that GET /v1/audit reads. A record holds
// who (tenant, key id — never the key), what (scope, profile, a digest of the
// command — never the command, its env or its output) and how it ended.
import { createHash } from "node:crypto";
import type { AuditQuery, AuditRecord } from "../../core/state.ts";

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

export class AuditLog {
  private readonly ring: AuditRecord[] = [];
  private readonly write: (line: string) => void;
  private readonly ringSize: number;

  constructor(write: (line: string) => void, ringSize = 10_000) {
    this.write = write;
    this.ringSize = ringSize;
  }

  record(r: AuditRecord): void {
    this.write(`${JSON.stringify(r)}\n`);
    if (this.ringSize === 0) return;
    this.ring.push(r);
    if (this.ring.length > this.ringSize) this.ring.splice(0, this.ring.length - this.ringSize);
  }

  /** Newest first. */
  query(q: AuditQuery): AuditRecord[] {
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
