// The API calls the deployment tests make (socket proxy, compose, the image
// under testcontainers), through the typed client (client/index.ts) as an
// agent's code would make them.
import { expect } from "vitest";
import { createClient, type ExecInput } from "../../client/index.ts";
import type { ExecResult } from "../../core/schemas.ts";

export interface Target {
  url: string;
  key: string;
}

const clientFor = (t: Target) => createClient({ baseUrl: t.url, apiKey: t.key });

/** POST /v1/exec; the client throws AirlockApiError on anything but 200. */
export async function execOnce(t: Target, body: ExecInput): Promise<ExecResult> {
  return clientFor(t).exec(body);
}

/**
 * A workspace's whole life: create with a file, write another, run twice (state
 * carries over), read a result, list, fetch the archive, delete. Asserts each step.
 */
export async function workspaceRoundTrip(t: Target): Promise<void> {
  const client = clientFor(t);
  const { id } = await client.workspaces.create({
    profile: "python",
    files: [{ path: "a.txt", content: "20" }],
  });
  try {
    await client.workspaces.writeFile(id, "b.txt", "22");
    const first = await client.workspaces.exec(id, {
      command: [
        "python3",
        "-c",
        "a = int(open('a.txt').read()); b = int(open('b.txt').read()); open('sum.txt', 'w').write(str(a + b))",
      ],
    });
    expect(first.status).toBe("ok");
    expect(first.diff.added.map((f) => f.path)).toEqual(["sum.txt"]);
    const second = await client.workspaces.exec(id, { command: ["cat", "sum.txt"] });
    expect(second).toMatchObject({ status: "ok", stdout: "42" });
    expect(await client.workspaces.readText(id, "sum.txt")).toBe("42");
    const paths = (await client.workspaces.listFiles(id)).map((e) => e.path).sort();
    expect(paths).toEqual(["a.txt", "b.txt", "sum.txt"]);
    expect((await client.workspaces.exportArchive(id)).byteLength).toBeGreaterThan(512);
  } finally {
    await client.workspaces.delete(id);
  }
}

/** Checkpoint, diff, restore and fork through the typed client (and whatever engine the target uses). */
export async function checkpointRoundTrip(t: Target): Promise<void> {
  const ws = clientFor(t).workspaces;
  const { id } = await ws.create({
    profile: "shell",
    files: [{ path: "a.txt", content: "one\n" }],
  });
  try {
    const cp = await ws.checkpoint(id, { label: "first" });
    expect(cp).toMatchObject({ label: "first", bytes: 4, entries: 1 });
    const step = await ws.exec(id, {
      command: "echo two > a.txt && touch b.txt",
      checkpoint: true,
    });
    expect(step.checkpoint?.id).toMatch(/^cp_/);
    const diff = await ws.diff(id, cp.id);
    expect(diff.modified.map((e) => e.path)).toEqual(["a.txt"]);
    expect(diff.added.map((e) => e.path)).toEqual(["b.txt"]);
    const back = await ws.restore(id, cp.id);
    expect(back.diff.deleted).toEqual([{ path: "b.txt" }]);
    expect(await ws.readText(id, "a.txt")).toBe("one\n");
    const { workspaces } = await ws.fork(id, { checkpoint: step.checkpoint?.id ?? "", count: 2 });
    for (const w of workspaces) {
      expect(await ws.readText(w.id, "a.txt")).toBe("one\n");
      await ws.delete(w.id);
    }
    expect((await ws.checkpoints(id)).checkpoints.map((c) => c.id)).toEqual([
      cp.id,
      step.checkpoint?.id,
    ]);
    await ws.deleteCheckpoint(id, cp.id);
    expect((await ws.checkpoints(id)).checkpoints).toHaveLength(1);
  } finally {
    await ws.delete(id);
  }
}
