// A state store (state/sqlite.ts) in a fresh temporary directory, for tests
// that build an app or a gateway: each gets its own, closed and removed when
// the test file ends (or earlier, by the returned `remove`).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import type { StateStore } from "../../core/state.ts";
import { openSqliteStateSync, type SqliteStateOptions } from "../../state/sqlite.ts";

export interface TempState {
  state: StateStore;
  dataDir: string;
  /** Closes the store and removes its directory (idempotent). */
  remove(): Promise<void>;
}

const open = new Set<TempState>();

// Registered once per test file (vitest loads this module again for each file).
afterAll(async () => {
  for (const t of [...open]) await t.remove();
});

/** A new store in its own temporary directory; `dataDir` reuses one (a restart). */
export function tempState(options: SqliteStateOptions = {}): TempState {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "airlock-state-"));
  const state = openSqliteStateSync({ ...options, dataDir });
  const t: TempState = {
    state,
    dataDir,
    async remove() {
      if (!open.delete(t)) return;
      await state.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  open.add(t);
  return t;
}
