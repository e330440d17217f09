// Workspace manifests in the embedded store (core/state.ts ManifestRecords):
// one row per workspace, its bytes replaced at each write. Rows of workspaces
// not written for longer than the retention are purged with the executions
// (a workspace that lived on unused meets a full read once, as after any loss).
import type { ManifestRecords } from "../core/state.ts";
import type { Db } from "./sqlite-db.ts";

export class SqliteManifests implements ManifestRecords {
  private readonly db: Db;
  private readonly now: () => number;

  constructor(db: Db, now: () => number) {
    this.db = db;
    this.now = now;
  }

  async get(workspace: string): Promise<Uint8Array | undefined> {
    const row = this.db.guard(() =>
      this.db.stmt("SELECT data FROM workspace_manifests WHERE workspace = ?").get(workspace),
    );
    return row === undefined ? undefined : (row["data"] as Uint8Array);
  }

  async put(workspace: string, data: Uint8Array): Promise<void> {
    this.db.tx(() =>
      this.db
        .stmt(
          `INSERT INTO workspace_manifests (workspace, data, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (workspace) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
        )
        .run(workspace, data, this.now()),
    );
  }

  async delete(workspace: string): Promise<void> {
    this.db.tx(() =>
      this.db.stmt("DELETE FROM workspace_manifests WHERE workspace = ?").run(workspace),
    );
  }

  /** Rows not written for `olderThanMs`; how many were removed. */
  async purge(olderThanMs: number): Promise<number> {
    return this.db.deleteInChunks(
      `DELETE FROM workspace_manifests WHERE rowid IN
         (SELECT rowid FROM workspace_manifests WHERE updated_at < ? LIMIT ?)`,
      [this.now() - olderThanMs],
    );
  }
}
