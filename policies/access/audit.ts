// The audit trail: one JSON line per operation, written to a file or stdout
// and kept in a bounded in-memory ring that GET /v1/audit reads. A record holds
// who (tenant, key id — never the key), what (scope, profile, a digest of the
// command — never the command, its env or its output) and how it ended.
import { createHash } from "node:crypto";

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
}

export interface AuditQuery {
  tenant?: string | undefined;
  scope?: string | undefined;
  status?: string | undefined;
  op?: string | undefined;
  /** ISO time or epoch ms: records at or after it. */
  since?: number | undefined;
  limit?: number | undefined;
}

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
