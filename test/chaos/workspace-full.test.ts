// A workspace filled past AIRLOCK_WORKSPACE_MAX_BYTES on purpose: the job that
// does it ends `workspace_full` (a 200, not an error), the workspace stays
// readable, deleting files lets it go on, and neither the gateway nor another
// tenant notices. Then every other way to write into a workspace (PUT a file,
// PUT an archive, create with files) is held to the same cap.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { MainProcess } from "../support/main-process.ts";
import { makeTar } from "../support/tar.ts";
import { call, listing, newWorkspace, spawnChaosMain, undocumented } from "./gateway.ts";

const CAP = 1024 * 1024;
const NEIGHBOUR = `neighbour-key-${randomBytes(8).toString("hex")}`;
let gw: MainProcess;

beforeAll(async () => {
  gw = await spawnChaosMain({
    keys: { neighbour: NEIGHBOUR },
    env: { AIRLOCK_WORKSPACE_MAX_BYTES: String(CAP) },
  });
});
afterAll(async () => {
  gw.child.kill("SIGTERM");
  await gw.exited;
  expect(await gw.leftovers()).toEqual({ containers: [], volumes: [] });
  await gw.kill();
});

interface Result {
  status: string;
  stdout: string;
  workspaceBytes?: number;
}

async function exec(id: string, command: string, key?: string): Promise<Result> {
  const res = await call(gw, "POST", `/v1/workspaces/${id}/exec`, { command }, { key });
  const body = await res.json();
  expect(undocumented(res.status, body, [200])).toBeUndefined();
  return body as Result;
}

async function read(id: string, path: string): Promise<string> {
  const res = await call(gw, "GET", `/v1/workspaces/${id}/files/content?path=${path}`);
  expect(res.status).toBe(200);
  return res.text();
}

it("a job that fills the workspace ends workspace_full; it stays readable, deleting lets it go on, nobody else notices", async () => {
  const full = await newWorkspace(gw, [{ path: "small.txt", content: "still here" }]);
  const other = await newWorkspace(gw, [{ path: "mine.txt", content: "neighbour's\n" }], NEIGHBOUR);

  // Well past the cap, in several files, while another tenant and a one-shot job run beside it.
  const [filled, beside, oneShot] = await Promise.all([
    exec(full, "for i in 1 2 3 4; do head -c 2000000 /dev/urandom > fill-$i.bin; done; echo done"),
    exec(other, "cat mine.txt; echo more >> mine.txt", NEIGHBOUR),
    call(gw, "POST", "/v1/exec", { profile: "shell", command: ["echo", "one-shot"] }).then((r) =>
      r.json(),
    ),
  ]);
  expect(filled).toMatchObject({ status: "workspace_full", stdout: "done\n" });
  expect(filled.workspaceBytes).toBeGreaterThan(4 * CAP);
  expect(beside).toMatchObject({ status: "ok", stdout: "neighbour's\n" });
  expect(oneShot).toMatchObject({ status: "ok", stdout: "one-shot\n" });

  // Readable, listable and exportable while full; a run on it still says so.
  expect(await read(full, "small.txt")).toBe("still here");
  expect(await listing(gw, full)).toEqual([
    "fill-1.bin",
    "fill-2.bin",
    "fill-3.bin",
    "fill-4.bin",
    "small.txt",
  ]);
  const archive = await call(gw, "GET", `/v1/workspaces/${full}/archive`);
  expect(archive.status).toBe(200);
  expect((await archive.arrayBuffer()).byteLength).toBeGreaterThan(4 * CAP);
  expect((await exec(full, "true")).status).toBe("workspace_full");

  // Deleting files brings it back under the cap: from a job (still over after
  // it: workspace_full), then over HTTP (under after it), then a job is ok again.
  const removed = await exec(full, "rm fill-1.bin fill-2.bin fill-3.bin; echo removed");
  expect(removed).toMatchObject({ status: "workspace_full", stdout: "removed\n" });
  const del = await call(gw, "DELETE", `/v1/workspaces/${full}/files?path=fill-4.bin`);
  expect(del.status).toBe(204);
  const after = await exec(full, "echo go on > next.txt; cat small.txt");
  expect(after).toMatchObject({ status: "ok", stdout: "still here" });
  expect(after.workspaceBytes).toBeLessThan(CAP);
  expect(await read(full, "next.txt")).toBe("go on\n");

  // The neighbour's workspace is as it left it, and the gateway still serves everyone.
  expect(await exec(other, "cat mine.txt", NEIGHBOUR)).toMatchObject({
    status: "ok",
    stdout: "neighbour's\nmore\n",
  });
  expect((await call(gw, "GET", "/readyz")).status).toBe(200);
  for (const [id, key] of [
    [full, gw.key],
    [other, NEIGHBOUR],
  ] as const) {
    expect((await call(gw, "DELETE", `/v1/workspaces/${id}`, undefined, { key })).status).toBe(204);
  }
});

/**
 * Every write path other than a job: the write is refused with a documented
 * error naming the limit (413 payload_too_large; 429 quota_exceeded would be
 * documented too), and the workspace stays at or under its cap: a run right
 * after is `ok`, not `workspace_full`.
 */
async function expectRefusedWithin(id: string, res: Response): Promise<void> {
  const body = await res.json();
  expect(undocumented(res.status, body, [413, 429])).toBeUndefined();
  const next = await exec(id, "true");
  expect(next.status).toBe("ok");
  expect(next.workspaceBytes).toBeLessThanOrEqual(CAP);
}

const OVER = randomBytes(2 * CAP);

it("PUT files/content past the cap is refused and leaves the workspace within it", async () => {
  const id = await newWorkspace(gw);
  try {
    const res = await call(gw, "PUT", `/v1/workspaces/${id}/files/content?path=big.bin`, OVER);
    await expectRefusedWithin(id, res);
  } finally {
    await call(gw, "DELETE", `/v1/workspaces/${id}`);
  }
});

it("PUT archive past the cap is refused and leaves the workspace within it", async () => {
  const id = await newWorkspace(gw, [{ path: "keep.txt", content: "kept" }]);
  try {
    const tar = await makeTar([{ name: "big.bin", body: OVER }]);
    const res = await call(gw, "PUT", `/v1/workspaces/${id}/archive`, tar, {
      headers: { "content-type": "application/x-tar" },
    });
    await expectRefusedWithin(id, res);
    expect(await read(id, "keep.txt")).toBe("kept");
  } finally {
    await call(gw, "DELETE", `/v1/workspaces/${id}`);
  }
});

it("creating a workspace with files past the cap is refused", async () => {
  const res = await call(gw, "POST", "/v1/workspaces", {
    profile: "shell",
    files: [{ path: "big.bin", content: OVER.toString("base64"), encoding: "base64" }],
  });
  const body = (await res.json()) as { id?: string };
  if (body.id !== undefined) await call(gw, "DELETE", `/v1/workspaces/${body.id}`);
  expect(undocumented(res.status, body, [413, 429])).toBeUndefined();
});

it("deleting one file of a workspace still over its cap answers 204", async () => {
  const id = await newWorkspace(gw);
  try {
    const filled = await exec(id, "head -c 3000000 /dev/zero > big.bin; echo x > small.txt");
    expect(filled.status).toBe("workspace_full");
    const del = await call(gw, "DELETE", `/v1/workspaces/${id}/files?path=small.txt`);
    expect(undocumented(del.status, await del.text(), [204], false)).toBeUndefined();
    expect(await listing(gw, id)).toEqual(["big.bin"]);
  } finally {
    await call(gw, "DELETE", `/v1/workspaces/${id}`);
  }
});

it("whatever a write path lets in past the cap, the next job reports workspace_full", async () => {
  const id = await newWorkspace(gw);
  const put = await call(gw, "PUT", `/v1/workspaces/${id}/files/content?path=big.bin`, OVER);
  if (put.status === 200) {
    expect((await exec(id, "true")).status).toBe("workspace_full");
  } else {
    expect(undocumented(put.status, await put.json(), [413, 429])).toBeUndefined();
  }
  expect((await call(gw, "DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
});
