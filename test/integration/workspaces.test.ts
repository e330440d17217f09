// Workspaces against a real engine: state in a Docker volume, every operation
// in its own throwaway container, tenant isolation, serialisation, TTL, restart.
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { POLICIES_DIR } from "../../policies/load.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { makeTar, readTar, type TarEntry } from "../support/tar.ts";

const OTHER_KEY = "other-tenant-key-0123456789";
let gw: TestGateway;
const created: string[] = [];

beforeAll(async () => {
  gw = await startGateway({
    workspaceMaxBytes: 1024 * 1024,
    uploadMaxEntries: 50,
    keys: { other: OTHER_KEY },
  });
});
afterAll(async () => {
  for (const id of created) await call("DELETE", `/v1/workspaces/${id}`);
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  key = gw.key,
  contentType = "application/json",
) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${key}` } };
  if (body !== undefined) {
    (init.headers as Record<string, string>)["content-type"] = contentType;
    init.body = Buffer.isBuffer(body) || typeof body === "string" ? body : JSON.stringify(body);
  }
  return fetch(`${gw.url}${path}`, init);
}

async function newWorkspace(body: unknown = { profile: "python" }): Promise<string> {
  const res = await call("POST", "/v1/workspaces", body);
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  created.push(id);
  return id;
}

async function exec(id: string, body: unknown): Promise<ExecResult> {
  const res = await call("POST", `/v1/workspaces/${id}/exec`, body);
  expect(res.status).toBe(200);
  return (await res.json()) as ExecResult;
}

async function snapshot(id: string) {
  const res = await call("GET", `/v1/workspaces/${id}/archive`);
  expect(res.status).toBe(200);
  return readTar(Buffer.from(await res.arrayBuffer()));
}

describe("a multi-step session", () => {
  it("writes a file, runs a script on it, reads the result back, with a diff per step", async () => {
    const id = await newWorkspace();
    const info = (await (await call("GET", `/v1/workspaces/${id}`)).json()) as {
      id: string;
      profile: string;
    };
    expect(info).toMatchObject({ id, profile: "python" });

    const put = await call(
      "PUT",
      `/v1/workspaces/${id}/files/content?path=data/numbers.txt`,
      "1\n2\n3\n",
      gw.key,
      "application/octet-stream",
    );
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ path: "data/numbers.txt", size: 6 });

    const first = await exec(id, {
      code: "n = [int(x) for x in open('data/numbers.txt')]\nopen('sum.txt', 'w').write(str(sum(n)) + '\\n')\nprint('ok')",
    });
    expect(first).toMatchObject({ status: "ok", stdout: "ok\n" });
    expect(first.diff.added.map((e) => e.path)).toEqual(["main.py", "sum.txt"]);
    expect(first.diff.modified).toEqual([]);

    const second = await exec(id, { command: "echo 7 >> data/numbers.txt && rm main.py" });
    expect(second.status).toBe("ok");
    expect(second.diff.modified.map((e) => e.path)).toEqual(["data/numbers.txt"]);
    expect(second.diff.modified[0]?.patch).toContain("+7");
    expect(second.diff.deleted).toEqual([{ path: "main.py" }]);

    const read = await call("GET", `/v1/workspaces/${id}/files/content?path=sum.txt`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("6\n");

    const list = (await (await call("GET", `/v1/workspaces/${id}/files`)).json()) as {
      path: string;
      type: string;
      size: number;
    }[];
    expect(list.map((e) => `${e.type} ${e.path}`).sort()).toEqual([
      "directory data",
      "file data/numbers.txt",
      "file sum.txt",
    ]);

    expect((await call("DELETE", `/v1/workspaces/${id}/files?path=sum.txt`)).status).toBe(204);
    expect((await call("GET", `/v1/workspaces/${id}/files/content?path=sum.txt`)).status).toBe(404);
  });

  it("creates a workspace with files, owned by the sandbox user", async () => {
    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "in/a.txt", content: "hi" }],
    });
    const r = await exec(id, { command: "stat -c '%u %n' . in in/a.txt && touch new" });
    expect(r.stdout).toBe("1000 .\n1000 in\n1000 in/a.txt\n");
    expect(r.diff.added.map((e) => e.path)).toEqual(["new"]);
  });
});

describe("archives", () => {
  it("round-trips a tar with nested folders and modes", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const tar = await makeTar([
      { name: "bin/", type: "directory", mode: 0o755 },
      { name: "bin/run.sh", mode: 0o755, body: "#!/bin/sh\necho run\n" },
      { name: "deep/er/still/", type: "directory", mode: 0o750 },
      { name: "deep/er/still/notes.md", mode: 0o600, body: "# notes\n" },
      { name: "link-to-notes", type: "symlink", linkname: "deep/er/still/notes.md" },
    ]);
    const res = await call("PUT", `/v1/workspaces/${id}/archive`, tar, gw.key, "application/x-tar");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ entries: 5, bytes: 27 });
    const back = await snapshot(id);
    const byName = new Map(back.map((e) => [e.name.replace(/\/$/, ""), e]));
    expect(byName.get("bin/run.sh")).toMatchObject({
      type: "file",
      mode: 0o755,
      body: "#!/bin/sh\necho run\n",
    });
    expect(byName.get("deep/er/still/notes.md")).toMatchObject({
      type: "file",
      mode: 0o600,
      body: "# notes\n",
    });
    expect(byName.get("deep/er/still")).toMatchObject({ type: "directory", mode: 0o750 });
    expect(byName.get("link-to-notes")).toMatchObject({
      type: "symlink",
      linkname: "deep/er/still/notes.md",
    });
    const run = await exec(id, { command: "./bin/run.sh" });
    expect(run.stdout).toBe("run\n");
  });

  const malicious: [string, TarEntry[], string][] = [
    ["a .. path", [{ name: "../evil.txt", body: "x" }], "'..'"],
    ["an absolute path", [{ name: "/etc/evil", body: "x" }], "absolute"],
    [
      "a symlink to an absolute path",
      [{ name: "passwd", type: "symlink", linkname: "/etc/passwd" }],
      "absolute path",
    ],
    [
      "a symlink that climbs out",
      [{ name: "a/up", type: "symlink", linkname: "../../etc" }],
      "outside /workspace",
    ],
    [
      "a hard link to a file outside",
      [{ name: "h", type: "link", linkname: "../etc/passwd" }],
      "'..'",
    ],
    [
      "a hard link to a file not in the archive",
      [{ name: "h", type: "link", linkname: "etc/passwd" }],
      "not a file earlier",
    ],
    [
      "a file written through a symlink",
      [
        { name: "d", type: "symlink", linkname: "sub" },
        { name: "d/x", body: "x" },
      ],
      "passes through the symlink",
    ],
    [
      "a character device",
      [{ name: "null", type: "character-device", devmajor: 1, devminor: 3 }],
      "character-device",
    ],
    ["a FIFO", [{ name: "pipe", type: "fifo" }], "fifo"],
    ["a NUL-free but backslashed name", [{ name: "a\\b", body: "x" }], "backslash"],
    [
      "too many entries",
      Array.from({ length: 60 }, (_, i) => ({ name: `f${i}`, body: "x" })),
      "past the limit of 50 entries",
    ],
  ];

  it.each(malicious)(
    "rejects %s with 400 naming the entry, leaving the workspace unchanged",
    async (_label, entries, message) => {
      const id = await newWorkspace({
        profile: "shell",
        files: [{ path: "keep.txt", content: "precious" }],
      });
      const before = await snapshot(id);
      const good: TarEntry[] = [{ name: "ok-first.txt", body: "this one is fine" }];
      const res = await call(
        "PUT",
        `/v1/workspaces/${id}/archive`,
        await makeTar([...good, ...entries]),
        gw.key,
        "application/x-tar",
      );
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("invalid_request");
      expect(body.error.message).toContain(message);
      expect(await snapshot(id)).toEqual(before);
    },
  );

  it("streams an import as it arrives, and answers 429 busy past the bound of imports in flight", async () => {
    const bounded = await startGateway({
      importBounds: { concurrency: 1, maxQueue: 0 },
      maxBodyBytes: 64 * 1024,
    });
    const made: string[] = [];
    try {
      const mk = async () =>
        (
          (await (await bounded.post("/v1/workspaces", { profile: "shell" })).json()) as {
            id: string;
          }
        ).id;
      const [slow, other] = [await mk(), await mk()];
      made.push(slow, other);
      const tar = await makeTar([{ name: "data.txt", body: "streamed\n" }]);
      // The first import's body comes in two halves; the second half waits for the go-ahead.
      let send!: () => void;
      const goAhead = new Promise<void>((resolve) => {
        send = resolve;
      });
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(tar.subarray(0, 512));
          await goAhead;
          controller.enqueue(tar.subarray(512));
          controller.close();
        },
      });
      const put = (id: string, b: Buffer | ReadableStream<Uint8Array>) =>
        fetch(`${bounded.url}/v1/workspaces/${id}/archive`, {
          method: "PUT",
          headers: { authorization: `Bearer ${bounded.key}`, "content-type": "application/x-tar" },
          body: b,
          duplex: "half",
        } as RequestInit);
      const first = put(slow, body);
      // The first is in flight (its body half read): the second has no slot and no room to wait.
      await new Promise((r) => setTimeout(r, 1000));
      const second = await put(other, tar);
      expect(second.status).toBe(429);
      expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await second.json()).toMatchObject({
        error: { code: "busy", message: expect.stringContaining("archive import queue is full") },
      });
      send();
      expect((await first).status).toBe(200);
      const read = await fetch(`${bounded.url}/v1/workspaces/${slow}/files/content?path=data.txt`, {
        headers: { authorization: `Bearer ${bounded.key}` },
      });
      expect(await read.text()).toBe("streamed\n");
      expect((await put(other, tar)).status).toBe(200);
      // A body of unknown length is counted as it streams in: past the limit, 413, the workspace as it was.
      // (Empty files: their headers alone take the body past 64 KiB.)
      const big = await makeTar(
        Array.from({ length: 200 }, (_, i) => ({ name: `e${i}`, body: "" })),
      );
      const chunked = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < big.length; at += 8192)
            controller.enqueue(big.subarray(at, at + 8192));
          controller.close();
        },
      });
      const over = await put(other, chunked);
      expect(over.status).toBe(413);
      expect(await over.json()).toMatchObject({
        error: { code: "payload_too_large", details: { maxBytes: 64 * 1024 } },
      });
      const listing = await fetch(`${bounded.url}/v1/workspaces/${other}/files`, {
        headers: { authorization: `Bearer ${bounded.key}` },
      });
      expect(((await listing.json()) as { path: string }[]).map((e) => e.path)).toEqual([
        "data.txt",
      ]);
    } finally {
      for (const id of made)
        await fetch(`${bounded.url}/v1/workspaces/${id}`, {
          method: "DELETE",
          headers: { authorization: `Bearer ${bounded.key}` },
        });
      await bounded.close();
    }
  });

  it("an upload cut off half-way leaves the workspace as it was, and the gateway serving", async () => {
    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "keep.txt", content: "kept" }],
    });
    const tar = await makeTar([
      { name: "first.txt", body: "in before the cut" },
      { name: "big.bin", body: Buffer.alloc(16 * 1024 * 1024, 9) },
    ]);
    const { port } = new URL(gw.url);
    for (const chunked of [false, true]) {
      // Half the body, then the connection is dropped.
      await new Promise<void>((resolve) => {
        const req = request({
          host: "127.0.0.1",
          port: Number(port),
          method: "PUT",
          path: `/v1/workspaces/${id}/archive`,
          headers: {
            authorization: `Bearer ${gw.key}`,
            "content-type": "application/x-tar",
            ...(chunked ? {} : { "content-length": String(tar.length) }),
          },
        });
        req.on("error", () => resolve());
        req.on("close", () => resolve());
        req.write(tar.subarray(0, tar.length >> 1), () => setTimeout(() => req.destroy(), 300));
      });
    }
    // The refused imports drop their staging directories under the workspace's lock.
    const r = await exec(id, { command: "ls -A; cat keep.txt" });
    expect(r).toMatchObject({ status: "ok", stdout: "keep.txt\nkept" });
  });

  it("rejects a body that is not a tar", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const res = await call(
      "PUT",
      `/v1/workspaces/${id}/archive`,
      Buffer.alloc(1024, 7),
      gw.key,
      "application/x-tar",
    );
    expect(res.status).toBe(400);
  });
});

/** Reads a response body to the end, keeping nothing; returns its length. */
async function drain(res: Response): Promise<number> {
  let bytes = 0;
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.length;
  }
}

describe("large files", () => {
  it("streams a 200 MB file and the workspace archive out with the gateway's memory bounded", async () => {
    const id = await newWorkspace({ profile: "shell" });
    // Written through a gateway with room for it (this one's meter would stop the
    // run past 1 MiB), then read through this one: past its cap, still readable.
    const roomy = await startGateway({ key: gw.key, workspaceMaxBytes: 512 * 1024 * 1024 });
    try {
      const made = await roomy.post(`/v1/workspaces/${id}/exec`, {
        command: "head -c 200000000 /dev/zero > big.bin",
        limits: { timeoutMs: 30_000 },
      });
      expect(((await made.json()) as ExecResult).status).toBe("ok");
    } finally {
      await roomy.close();
    }
    expect(await roomy.leftovers()).toEqual({ containers: 0, volumes: 0 });
    expect((await exec(id, { command: "true" })).status).toBe("workspace_full");
    // One read first, so the baseline holds what any stream of this size leaves
    // until the next GC (V8 collects external buffers in ~64 MB steps), whatever
    // the exec before it allocated; buffering would still show as 200 MB more.
    await drain(await call("GET", `/v1/workspaces/${id}/files/content?path=big.bin`));
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    try {
      for (const path of [
        `/v1/workspaces/${id}/files/content?path=big.bin`,
        `/v1/workspaces/${id}/archive`,
      ]) {
        const res = await call("GET", path);
        expect(res.status).toBe(200);
        expect(await drain(res)).toBeGreaterThanOrEqual(200_000_000);
      }
    } finally {
      clearInterval(sample);
    }
    // Streamed, not buffered: far less than the 200 MB that went through, twice.
    expect(peak - before).toBeLessThan(80 * 1024 * 1024);
  });
});

describe("symlinks", () => {
  it("never reads through a symlink out of /workspace, and lists links as links", async () => {
    const id = await newWorkspace({ profile: "shell" });
    await exec(id, {
      command: "ln -s /etc/passwd passwd && ln -s /etc etc && mkdir d && ln -s ../passwd d/up",
    });
    for (const path of ["passwd", "etc/passwd", "d/up"]) {
      const res = await call(
        "GET",
        `/v1/workspaces/${id}/files/content?path=${encodeURIComponent(path)}`,
      );
      expect(res.status, path).toBe(400);
      expect(await res.text()).not.toContain("root:x:0:0");
    }
    const put = await call(
      "PUT",
      `/v1/workspaces/${id}/files/content?path=etc/evil`,
      "x",
      gw.key,
      "application/octet-stream",
    );
    expect(put.status).toBe(400);
    const list = (await (await call("GET", `/v1/workspaces/${id}/files`)).json()) as {
      path: string;
      type: string;
      target?: string;
    }[];
    expect(list.find((e) => e.path === "passwd")).toMatchObject({
      type: "symlink",
      target: "/etc/passwd",
    });
    expect((await call("GET", `/v1/workspaces/${id}/files?path=etc`)).status).toBe(400);
  });
});

const hashOf = (text: string) => createHash("sha256").update(text).digest("hex");
const paths = (entries: { path: string }[]) => entries.map((e) => e.path);

describe("diffs from the launcher's listings and the manifest cache", () => {
  it("sees modifications, deletions, retargeted links and same-content rewrites with a warm cache", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const first = await exec(id, {
      command:
        "printf 'a\\nb\\n' > t.txt && echo same > s.txt && echo gone > g.txt && ln -s t.txt link && mkdir -p 'sp ace' && echo 1 > 'sp ace/n'",
    });
    expect(paths(first.diff.added)).toEqual(["g.txt", "link", "s.txt", "sp ace/n", "t.txt"]);
    expect(first.diff.added.find((e) => e.path === "link")).toMatchObject({
      type: "symlink",
      sha256: hashOf("t.txt"),
    });
    // The gateway now vouches for every entry by its stat record.
    expect([...(gw.manifests.get(id)?.keys() ?? [])].sort()).toEqual(paths(first.diff.added));

    const second = await exec(id, {
      command:
        "echo c >> t.txt && echo same > s.txt && touch -d 2001-01-01 s.txt && rm g.txt && ln -sfn s.txt link && echo 2 > 'sp ace/n'",
    });
    expect(second.status).toBe("ok");
    expect(second.diff.added).toEqual([]);
    // s.txt was rewritten with the same bytes (and a new mtime): not a modification.
    expect(paths(second.diff.modified)).toEqual(["link", "sp ace/n", "t.txt"]);
    expect(second.diff.modified[0]).toMatchObject({ type: "symlink", sha256: hashOf("s.txt") });
    expect(second.diff.modified[2]?.patch).toContain(" a\n b\n+c\n");
    expect(second.diff.deleted).toEqual([{ path: "g.txt" }]);

    // The launcher's own temporary file never lands in the workspace, whatever TMPDIR says.
    const third = await exec(id, { command: "true", env: { TMPDIR: "/workspace" } });
    expect(third.diff).toEqual({ added: [], modified: [], deleted: [], truncated: false });
    expect(third.workspaceBytes).toBe("a\nb\nc\n".length + "same\n".length + "2\n".length);
  });

  it("uses a cached entry only while its stat record matches the listing", async () => {
    const id = await newWorkspace({ profile: "shell" });
    await exec(id, { command: "echo real > kept.txt && echo real > moved.txt" });
    const manifest = new Map(gw.manifests.get(id));
    const kept = manifest.get("kept.txt");
    const moved = manifest.get("moved.txt");
    if (kept === undefined || moved === undefined) throw new Error("no manifest cached");
    // Mark the cached contents, so the diff shows which side it took; moved.txt's record is stale.
    manifest.set("kept.txt", { ...kept, content: Buffer.from("cached\n") });
    manifest.set("moved.txt", {
      ...moved,
      stat: `${moved.stat}1`,
      content: Buffer.from("cached\n"),
    });
    gw.manifests.set(id, manifest);
    const run = await exec(id, { command: "echo new > kept.txt && echo new > moved.txt" });
    expect(paths(run.diff.modified)).toEqual(["kept.txt", "moved.txt"]);
    expect(run.diff.modified[0]?.patch).toContain("-cached\n+new\n");
    expect(run.diff.modified[1]?.patch).toContain("-real\n+new\n");
  });

  it("sees a file changed through the files API between two execs, cached or not", async () => {
    const id = await newWorkspace({ profile: "shell" });
    await exec(id, { command: "echo v1 > a.txt" });
    const put = await call(
      "PUT",
      `/v1/workspaces/${id}/files/content?path=a.txt`,
      "v2\n",
      gw.key,
      "application/octet-stream",
    );
    expect(put.status).toBe(200);
    // The cache still holds v1, but a.txt's stat record changed: it is read again.
    const next = await exec(id, { command: "cat a.txt && echo v3 > a.txt" });
    expect(next.stdout).toBe("v2\n");
    expect(paths(next.diff.modified)).toEqual(["a.txt"]);
    expect(next.diff.modified[0]?.patch).toContain("-v2\n+v3\n");

    // A gateway that never saw the workspace (restarted, or another replica).
    gw.manifests.delete(id);
    const cold = await exec(id, { command: "echo v4 > a.txt && echo new > b.txt" });
    expect(paths(cold.diff.modified)).toEqual(["a.txt"]);
    expect(cold.diff.modified[0]?.patch).toContain("-v3\n+v4\n");
    expect(paths(cold.diff.added)).toEqual(["b.txt"]);
  });

  it("after a restart, reads only what changed: the manifest comes from the state store, trusted only where its stat records match", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "airlock-manifests-"));
    const key = `restart-key-${randomUUID()}`;
    let first: TestGateway | undefined = await startGateway({ dataDir, key });
    let second: TestGateway | undefined;
    const on = (g: TestGateway, path: string, body?: unknown) =>
      g.call(key, body === undefined ? "DELETE" : "POST", path, body);
    let id: string | undefined;
    try {
      id = (
        (await (await on(first, "/v1/workspaces", { profile: "shell" })).json()) as { id: string }
      ).id;
      await on(first, `/v1/workspaces/${id}/exec`, {
        command: "echo real > kept.txt && echo real > moved.txt",
      });
      // Mark the cached contents, so the diff shows which side it took; moved.txt's record is stale.
      const manifest = new Map(first.manifests.get(id));
      const kept = manifest.get("kept.txt");
      const moved = manifest.get("moved.txt");
      if (kept === undefined || moved === undefined) throw new Error("no manifest cached");
      manifest.set("kept.txt", { ...kept, content: Buffer.from("cached\n") });
      manifest.set("moved.txt", {
        ...moved,
        stat: `${moved.stat}1`,
        content: Buffer.from("cached\n"),
      });
      first.manifests.set(id, manifest);
      await first.close();
      first = undefined;
      second = await startGateway({ dataDir, key });
      expect(second.manifests.get(id)).toBeUndefined();
      const res = await on(second, `/v1/workspaces/${id}/exec`, {
        command: "echo new > kept.txt && echo new > moved.txt",
      });
      const run = (await res.json()) as ExecResult;
      expect(paths(run.diff.modified)).toEqual(["kept.txt", "moved.txt"]);
      expect(run.diff.modified[0]?.patch).toContain("-cached\n+new\n");
      expect(run.diff.modified[1]?.patch).toContain("-real\n+new\n");
    } finally {
      const last = second ?? first;
      if (last !== undefined && id !== undefined) await on(last, `/v1/workspaces/${id}`);
      await last?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("puts a job's files in after the listing, so they are part of its diff", async () => {
    const id = await newWorkspace({ profile: "shell" });
    await exec(id, { command: "echo old > in.txt" });
    const run = await exec(id, {
      command: "cat in.txt new.txt",
      files: [
        { path: "in.txt", content: "replaced\n" },
        { path: "new.txt", content: "fresh\n" },
      ],
    });
    expect(run.stdout).toBe("replaced\nfresh\n");
    expect(paths(run.diff.added)).toEqual(["new.txt"]);
    expect(paths(run.diff.modified)).toEqual(["in.txt"]);
    expect(run.diff.modified[0]?.patch).toContain("-old\n+replaced\n");
  });

  it("reads through the engine whatever the launcher's tar leaves out, however few or many", async () => {
    const id = await newWorkspace({ profile: "shell" });
    await exec(id, { command: "echo 1 > a && echo 1 > b" });
    // Files the job makes unreadable are left out of the launcher's tar: a few
    // are read from the engine one by one, many as the whole of /workspace.
    const few = await exec(id, { command: "echo 2 > a && rm b && echo 3 > c && chmod 000 a c" });
    expect(paths(few.diff.modified)).toEqual(["a"]);
    expect(few.diff.modified[0]?.sha256).toBe(hashOf("2\n"));
    expect(few.diff.modified[0]?.patch).toContain("-1\n+2\n");
    expect(paths(few.diff.added)).toEqual(["c"]);
    expect(few.diff.added[0]?.sha256).toBe(hashOf("3\n"));
    expect(few.diff.deleted).toEqual([{ path: "b" }]);
    const many = await exec(id, {
      command: "for i in 1 2 3 4 5 6; do echo $i > m$i; done; chmod 000 m*",
    });
    expect(paths(many.diff.added)).toEqual(["m1", "m2", "m3", "m4", "m5", "m6"]);
    expect(many.diff.added[5]?.sha256).toBe(hashOf("6\n"));
    // Readable again (a mode is not content: no diff for it), and changed beside an unreadable new one.
    const locked = await exec(id, {
      command: "chmod 644 a c m* && echo secret > s && chmod 000 s && echo 4 > a",
    });
    expect(paths(locked.diff.added)).toEqual(["s"]);
    expect(locked.diff.added[0]?.sha256).toBe(hashOf("secret\n"));
    expect(paths(locked.diff.modified)).toEqual(["a"]);
    // And the next run, with the cache refilled, still sees them right.
    const after = await exec(id, { command: "echo 5 > a" });
    expect(paths(after.diff.modified)).toEqual(["a"]);
    expect(after.diff.added).toEqual([]);
    expect(after.diff.deleted).toEqual([]);
  });
});

describe("tenancy and limits", () => {
  it("answers 404 to another tenant's key on every endpoint", async () => {
    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "secret.txt", content: "mine" }],
    });
    const attempts: [string, string, unknown?][] = [
      ["GET", `/v1/workspaces/${id}`],
      ["POST", `/v1/workspaces/${id}/exec`, { command: "cat secret.txt" }],
      ["GET", `/v1/workspaces/${id}/files`],
      ["GET", `/v1/workspaces/${id}/files/content?path=secret.txt`],
      ["PUT", `/v1/workspaces/${id}/files/content?path=x`, "x"],
      ["DELETE", `/v1/workspaces/${id}/files?path=secret.txt`],
      ["GET", `/v1/workspaces/${id}/archive`],
      ["PUT", `/v1/workspaces/${id}/archive`, await makeTar([{ name: "x", body: "x" }])],
      ["DELETE", `/v1/workspaces/${id}`],
    ];
    for (const [method, path, body] of attempts) {
      const type =
        typeof body === "object" && !Buffer.isBuffer(body)
          ? "application/json"
          : "application/octet-stream";
      const res = await call(method, path, body, OTHER_KEY, type);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(await res.text()).not.toContain("mine");
    }
    expect(
      await (await call("GET", `/v1/workspaces/${id}/files/content?path=secret.txt`)).text(),
    ).toBe("mine");
  });

  it("runs two execs on one workspace one after the other, in arrival order", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const step = (name: string) => ({
      command: `echo start-${name} >> log; sleep 1; echo end-${name} >> log`,
    });
    const a = exec(id, step("a"));
    await new Promise((r) => setTimeout(r, 100));
    const b = exec(id, step("b"));
    await Promise.all([a, b]);
    const log = await (await call("GET", `/v1/workspaces/${id}/files/content?path=log`)).text();
    expect(log).toBe("start-a\nend-a\nstart-b\nend-b\n");
  });

  it("ends a run that passes the size cap with workspace_full, and the workspace stays readable", async () => {
    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "small.txt", content: "still here" }],
    });
    const r = await exec(id, { command: "head -c 2000000 /dev/zero > big.bin" });
    expect(r.status).toBe("workspace_full");
    expect(r.workspaceBytes).toBeGreaterThan(1024 * 1024);
    expect(
      await (await call("GET", `/v1/workspaces/${id}/files/content?path=small.txt`)).text(),
    ).toBe("still here");
    const fixed = await exec(id, { command: "rm big.bin" });
    expect(fixed.status).toBe("ok");
  });

  it("refuses a tenant's workspace past its count with 429 quota_exceeded", async () => {
    // A tenant of its own: the count is per tenant across the whole engine.
    const soloKey = "solo-tenant-key-0123456789";
    const small = await startGateway({ workspacesPerTenant: 1, keys: { solo: soloKey } });
    const post = () =>
      fetch(`${small.url}/v1/workspaces`, {
        method: "POST",
        headers: { authorization: `Bearer ${soloKey}`, "content-type": "application/json" },
        body: JSON.stringify({ profile: "shell" }),
      });
    try {
      const first = await post();
      expect(first.status).toBe(201);
      const { id } = (await first.json()) as { id: string };
      const second = await post();
      expect(second.status).toBe(429);
      expect(((await second.json()) as { error: { code: string } }).error.code).toBe(
        "quota_exceeded",
      );
      await fetch(`${small.url}/v1/workspaces/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${soloKey}` },
      });
    } finally {
      await small.close();
    }
  });
});

describe("the workspace size cap (1 MiB here)", () => {
  const MIB = 1024 * 1024;
  const put = (id: string, path: string, body: Buffer) =>
    call(
      "PUT",
      `/v1/workspaces/${id}/files/content?path=${path}`,
      body,
      gw.key,
      "application/octet-stream",
    );

  async function expectCapRefusal(res: Response, bytes?: number) {
    expect(res.status).toBe(413);
    const body = (await res.json()) as {
      error: { code: string; message: string; details: unknown };
    };
    expect(body.error).toMatchObject({
      code: "payload_too_large",
      details: {
        limit: "AIRLOCK_WORKSPACE_MAX_BYTES",
        max: MIB,
        ...(bytes === undefined ? {} : { bytes }),
      },
    });
    expect(body.error.message).toContain(`size cap of ${MIB} bytes (AIRLOCK_WORKSPACE_MAX_BYTES)`);
  }

  it("stops a run that fills its workspace while it runs; it stays readable, and deleting lets it go on", async () => {
    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "small.txt", content: "still here" }],
    });
    // dd in a loop (about 5 MB/s): without the meter it would run to its 60 s limit.
    const r = await exec(id, {
      command:
        "i=0; while :; do dd if=/dev/zero of=fill-$i.bin bs=256k count=1 2>/dev/null; i=$((i+1)); sleep 0.05; done",
      limits: { timeoutMs: 60_000 },
    });
    expect(r).toMatchObject({ status: "workspace_full", exitCode: null, signal: "SIGKILL" });
    expect(r.durationMs).toBeLessThan(15_000);
    expect(r.workspaceBytes).toBeGreaterThan(MIB);
    expect(r.workspaceBytes).toBeLessThan(80 * MIB);
    // Readable and exportable while full; every write that grows it is refused.
    const small = await call("GET", `/v1/workspaces/${id}/files/content?path=small.txt`);
    expect(await small.text()).toBe("still here");
    const archive = await call("GET", `/v1/workspaces/${id}/archive`);
    expect(archive.status).toBe(200);
    expect(await drain(archive)).toBeGreaterThan(MIB);
    await expectCapRefusal(await put(id, "more.txt", Buffer.from("more")));
    // Deleting files (over HTTP while still over the cap, then from a job) lets it go on.
    expect((await call("DELETE", `/v1/workspaces/${id}/files?path=fill-0.bin`)).status).toBe(204);
    const cleared = await exec(id, { command: "rm -f fill-*.bin; cat small.txt" });
    expect(cleared).toMatchObject({ status: "ok", stdout: "still here" });
    expect((await put(id, "more.txt", Buffer.from("more"))).status).toBe(200);
    expect((await exec(id, { command: "cat more.txt" })).stdout).toBe("more");
  });

  it("stops a filling run under gVisor too (the meter runs under the profile's runtime)", async () => {
    const gvisor = await startGateway({
      key: gw.key,
      workspaceMaxBytes: MIB,
      profilesDir: join(POLICIES_DIR, "gvisor"),
    });
    let id: string | undefined;
    try {
      const made = await gvisor.post("/v1/workspaces", { profile: "shell-gvisor" });
      ({ id } = (await made.json()) as { id: string });
      const res = await gvisor.post(`/v1/workspaces/${id}/exec`, {
        command:
          "i=0; while :; do dd if=/dev/zero of=fill-$i.bin bs=256k count=1 2>/dev/null; i=$((i+1)); sleep 0.05; done",
        limits: { timeoutMs: 60_000 },
      });
      const r = (await res.json()) as ExecResult;
      expect(r.status).toBe("workspace_full");
      expect(r.durationMs).toBeLessThan(20_000);
    } finally {
      // Only a gateway that knows the gVisor profiles can remove it.
      if (id !== undefined) await gvisor.call(gw.key, "DELETE", `/v1/workspaces/${id}`);
      await gvisor.close();
    }
    expect(await gvisor.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });

  it("counts a directory its own user cannot read as full (its bytes could hide there)", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const hidden = await exec(id, {
      command: "mkdir h && head -c 1000 /dev/zero > h/x && chmod 0 h && sleep 60",
      limits: { timeoutMs: 90_000 },
    });
    expect(hidden.status).toBe("workspace_full");
    expect(hidden.durationMs).toBeLessThan(15_000);
    // A gateway that must measure it before a write cannot either: 413, saying why.
    const fresh = await startGateway({ key: gw.key, workspaceMaxBytes: MIB });
    try {
      const refused = await fetch(`${fresh.url}/v1/workspaces/${id}/files/content?path=a.txt`, {
        method: "PUT",
        headers: { authorization: `Bearer ${gw.key}` },
        body: "a",
      });
      expect(refused.status).toBe(413);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
        "cannot read",
      );
    } finally {
      await fresh.close();
    }
    expect(await fresh.leftovers()).toEqual({ containers: 0, volumes: 0 });
    // A quick run that makes it readable again clears it.
    expect((await exec(id, { command: "chmod 755 h" })).status).toBe("ok");
    expect((await put(id, "a.txt", Buffer.from("a"))).status).toBe(200);
  });

  it("refuses a write past the cap on every route with 413 naming the cap; one that does not grow it goes through", async () => {
    const over = Buffer.alloc(MIB + 512 * 1024, 1);
    const created = await call("POST", "/v1/workspaces", {
      profile: "shell",
      files: [{ path: "big.bin", content: over.toString("base64"), encoding: "base64" }],
    });
    await expectCapRefusal(created, over.length);

    const id = await newWorkspace({
      profile: "shell",
      files: [{ path: "keep.txt", content: "kept" }],
    });
    const part = Buffer.alloc(700 * 1024, 2);
    expect((await put(id, "a.bin", part)).status).toBe(200);
    await expectCapRefusal(await put(id, "b.bin", part), 4 + 2 * part.length);
    // Replacing a file by a smaller one frees room.
    expect((await put(id, "a.bin", Buffer.alloc(100 * 1024, 3))).status).toBe(200);
    expect((await put(id, "b.bin", part)).status).toBe(200);

    const before = await snapshot(id);
    const tooBig = await makeTar([
      { name: "x.bin", body: part },
      { name: "y.bin", body: part },
    ]);
    await expectCapRefusal(
      await call("PUT", `/v1/workspaces/${id}/archive`, tooBig, gw.key, "application/x-tar"),
    );
    expect(await snapshot(id)).toEqual(before);
    const fits = await makeTar([{ name: "x.bin", body: part }]);
    const imported = await call(
      "PUT",
      `/v1/workspaces/${id}/archive`,
      fits,
      gw.key,
      "application/x-tar",
    );
    expect(imported.status).toBe(200);
    const r = await exec(id, { command: "ls" });
    expect(r).toMatchObject({ status: "ok", stdout: "x.bin\n", workspaceBytes: part.length });
  });

  it("measures a workspace whose size this gateway does not know (a restart) before a write", async () => {
    const id = await newWorkspace({ profile: "shell" });
    const part = Buffer.alloc(700 * 1024, 4);
    expect((await put(id, "a.bin", part)).status).toBe(200);
    // Another gateway of the same tenant on the same engine knows nothing of it yet.
    const fresh = await startGateway({ key: gw.key, workspaceMaxBytes: MIB });
    try {
      const putFresh = (path: string, body: Buffer) =>
        fetch(`${fresh.url}/v1/workspaces/${id}/files/content?path=${path}`, {
          method: "PUT",
          headers: {
            authorization: `Bearer ${gw.key}`,
            "content-type": "application/octet-stream",
          },
          body,
        });
      expect((await putFresh("b.bin", part)).status).toBe(413);
      expect((await putFresh("b.bin", Buffer.alloc(200 * 1024, 5))).status).toBe(200);
    } finally {
      await fresh.close();
    }
    expect(await fresh.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
});

describe("the workspace count under concurrency", () => {
  it("ten concurrent creates with a limit of 2 make exactly 2; the other 8 are 429 quota_exceeded naming the limit", async () => {
    const key = `race-tenant-key-${Date.now()}`;
    const small = await startGateway({ workspacesPerTenant: 2, keys: { race: key } });
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${small.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const made: string[] = [];
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await call("POST", "/v1/workspaces", { profile: "shell" });
          const body = (await res.json()) as { id?: string; error?: { message: string } };
          if (body.id !== undefined) made.push(body.id);
          return { status: res.status, body };
        }),
      );
      const refused = answers.filter((a) => a.status === 429);
      expect(made).toHaveLength(2);
      expect(refused).toHaveLength(8);
      for (const { body } of refused) {
        expect(body).toMatchObject({
          error: { code: "quota_exceeded", details: { limit: "workspaces per tenant", max: 2 } },
        });
        expect(body.error?.message).toContain("2 of 2 workspaces");
      }
    } finally {
      for (const id of made)
        expect((await call("DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
      await small.close();
    }
  });
});

describe("lifetime", () => {
  it("removes a workspace and its volume once idle past the TTL", async () => {
    const ttl = 4000;
    const short = await startGateway({ workspaceTtlMs: ttl });
    try {
      const t0 = Date.now();
      const res = await short.post("/v1/workspaces", { profile: "shell" });
      const { id } = (await res.json()) as { id: string };
      // Its last use is no later than this: a busy machine can take seconds to make it.
      const made = Date.now();
      await short.store.collectExpired();
      const exists = await short.docker.listVolumes({
        filters: { label: [`airlock.workspace=${id}`] },
      });
      // Still there while younger than its TTL (asserted only if the machine was quick enough to ask in time).
      if (Date.now() - t0 < ttl) expect(exists.Volumes ?? []).toHaveLength(1);
      await new Promise((r) => setTimeout(r, ttl + 500 - (Date.now() - made)));
      // Any gateway on this engine sweeps it (its TTL is on its labels): the
      // test files running beside this one may have removed it first.
      await short.store.collectExpired();
      const gone = await short.docker.listVolumes({
        filters: { label: [`airlock.workspace=${id}`] },
      });
      expect(gone.Volumes ?? []).toEqual([]);
      const get = await fetch(`${short.url}/v1/workspaces/${id}`, {
        headers: { authorization: `Bearer ${short.key}` },
      });
      expect(get.status).toBe(404);
    } finally {
      await short.close();
    }
  });

  it("keeps every workspace across a gateway restart", async () => {
    const first = await startGateway();
    const res = await first.post("/v1/workspaces", {
      profile: "shell",
      files: [{ path: "kept.txt", content: "survives" }],
    });
    const { id } = (await res.json()) as { id: string };
    await first.close();
    const second = await startGateway({ key: first.key });
    try {
      const auth = { authorization: `Bearer ${first.key}` };
      expect((await fetch(`${second.url}/v1/workspaces/${id}`, { headers: auth })).status).toBe(
        200,
      );
      const r = await second.post(`/v1/workspaces/${id}/exec`, { command: "cat kept.txt" });
      expect(((await r.json()) as ExecResult).stdout).toBe("survives");
      expect(
        (await fetch(`${second.url}/v1/workspaces/${id}`, { method: "DELETE", headers: auth }))
          .status,
      ).toBe(204);
    } finally {
      await second.close();
    }
  });
});
