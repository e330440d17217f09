// Workspace manifests in the PostgreSQL store (core/state.ts ManifestRecords),
// as in the embedded store (sqlite-manifests.ts): one row per workspace, its
// bytes replaced at each write, rows unwritten past the retention purged. The
// gateways of a workspace's engine share it; an entry is trusted only while
// its stat records match the workspace, so another gateway's stale one costs speed only.
import type { ManifestRecords } from "../core/state.ts";
import type { PgDb } from "./pg-db.ts";

export class PgManifests implements ManifestRecords {
  private readonly db: PgDb;
  private readonly now: () => number;

  constructor(db: PgDb, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async get(workspace: string): Promise<Uint8Array | undefined> {
    const rows = await this.db.query("SELECT data FROM workspace_manifests WHERE workspace = $1", [
      workspace,
    ]);
    const data = rows[0]?.["data"] as Buffer | undefined;
    return data === undefined ? undefined : new Uint8Array(data);
  }

  async put(workspace: string, data: Uint8Array): Promise<void> {
    await this.db.query(
      `INSERT INTO workspace_manifests (workspace, data, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (workspace) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
      [workspace, Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.now()],
    );
  }

  async delete(workspace: string): Promise<void> {
    await this.db.query("DELETE FROM workspace_manifests WHERE workspace = $1", [workspace]);
  }

  /** Rows not written for `olderThanMs`; how many were removed. */
  async purge(olderThanMs: number): Promise<number> {
    const rows = await this.db.query(
      "DELETE FROM workspace_manifests WHERE updated_at < $1 RETURNING workspace",
      [this.now() - olderThanMs],
    );
    return rows.length;
  }
}
