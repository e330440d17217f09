// Workspace checkpoints against a real engine: restore gives back every byte,
// mode and symlink; forks are independent; a diff between checkpoints is the
// union of the execs' diffs; tenants never see each other's; a restore does
// not interleave with other operations; limits; storage goes with the workspace.
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Diff, ExecResult } from "../../core/schemas.ts";
import { POLICIES_DIR } from "../../policies/load.ts";
import { checkpointRoundTrip } from "../support/airlock-calls.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { type ReadEntry, readTar } from "../support/tar.ts";

const OTHER_KEY = "other-tenant-key-checkpoints-0123";
const CAP_KEY = "capped-tenant-key-checkpoints-0123";
const CAP = 1024 * 1024;
let gw: TestGateway;
const created: { id: string; key: string }[] = [];
const docker = new Dockerode();

beforeAll(async () => {
  gw = await startGateway({
    workspaceMaxBytes: CAP,
    keys: { other: OTHER_KEY, capped: CAP_KEY },
    checkpointLimits: { perWorkspace: 4, bytesPerTenant: CAP + CAP / 2, forkMax: 3 },
  });
});
afterAll(async () => {
  for (const { id, key } of created) await call("DELETE", `/v1/workspaces/${id}`, undefined, key);
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  for (const { id } of created) expect(await checkpointVolumes(id)).toEqual([]);
});

async function call(method: string, path: string, body?: unknown, key = gw.key) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${key}` } };
  if (body !== undefined) {
    (init.headers as Record<string, string>)["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(`${gw.url}${path}`, init);
}

async function ok<T>(res: Response | Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const body = await r.text();
  expect(r.status, body).toBe(status);
  return (body === "" ? undefined : JSON.parse(body)) as T;
}

async function newWorkspace(key = gw.key): Promise<string> {
  const { id } = await ok<{ id: string }>(
    call("POST", "/v1/workspaces", { profile: "shell" }, key),
    201,
  );
  created.push({ id, key });
  return id;
}

const exec = (id: string, command: string, extra: object = {}) =>
  ok<ExecResult>(call("POST", `/v1/workspaces/${id}/exec`, { command, ...extra }));
const checkpoint = (id: string, label?: string, key = gw.key) =>
  ok<{ id: string; bytes: number; entries: number; label: string | null }>(
    call("POST", `/v1/workspaces/${id}/checkpoints`, label === undefined ? {} : { label }, key),
    201,
  );
const restore = (id: string, cp: string) =>
  ok<{ checkpoint: string; diff: Diff }>(
    call("POST", `/v1/workspaces/${id}/restore`, { checkpoint: cp }),
  );

/** Every entry of the workspace: name, type, mode, link target and bytes (not times). */
async function snapshot(id: string): Promise<Omit<ReadEntry, "never">[]> {
  const res = await call("GET", `/v1/workspaces/${id}/archive`);
  expect(res.status).toBe(200);
  const entries = await readTar(Buffer.from(await res.arrayBuffer()));
  return entries
    .map((e) => ({ ...e, name: e.name.replace(/\/$/, "") }))
    .filter((e) => e.name !== "" && e.name !== ".")
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function checkpointVolumes(workspace: string): Promise<string[]> {
  const list = await docker.listVolumes({
    filters: { label: [`airlock.checkpoint.of=${workspace}`] },
  });
  return (list.Volumes ?? []).map((v) => v.Name);
}

const paths = (entries: { path: string }[]) => entries.map((e) => e.path);

const TREE = [
  "mkdir -p src/lib empty deep/er && chmod 750 deep/er",
  "printf 'one\\ntwo\\nthree\\n' > src/a.txt",
  "printf 'keep\\n' > src/lib/keep.txt && chmod 640 src/lib/keep.txt",
  "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod 755 run.sh",
  "head -c 200000 /dev/urandom > blob.bin",
  "ln -s src/a.txt link-a && ln -s deep/er link-dir",
  "printf 'gone soon\\n' > deep/er/old.txt",
].join(" && ");

describe("restore", () => {
  it("puts back every byte, mode and symlink after an exec that deletes and edits", async () => {
    const id = await newWorkspace();
    await exec(id, TREE);
    const before = await snapshot(id);
    const cp = await checkpoint(id, "start");
    expect(cp).toMatchObject({ label: "start", entries: 12 });
    expect(cp.bytes).toBe(200000 + 14 + 5 + 18 + 10);

    const step = await exec(
      id,
      [
        "rm -rf deep/er/old.txt empty src/lib",
        "printf 'one\\n2\\nthree\\n' > src/a.txt",
        "chmod 600 run.sh && chmod 700 deep/er",
        "rm link-a && printf 'now a file\\n' > link-a",
        "head -c 1000 /dev/urandom > blob.bin",
        "mkdir -p new/dir && echo n > new/dir/n.txt && ln -s /etc/passwd new/out",
      ].join(" && "),
    );
    expect(step.status).toBe("ok");
    expect(await snapshot(id)).not.toEqual(before);

    const back = await restore(id, cp.id);
    expect(await snapshot(id)).toEqual(before);
    expect(back.checkpoint).toBe(cp.id);
    expect(paths(back.diff.added)).toEqual(["deep/er/old.txt", "src/lib/keep.txt"]);
    // run.sh changed mode only: as in an exec diff, content is what a diff compares.
    expect(paths(back.diff.modified)).toEqual(["blob.bin", "link-a", "src/a.txt"]);
    expect(back.diff.modified.find((e) => e.path === "src/a.txt")?.patch).toContain("+two");
    expect(paths(back.diff.deleted)).toEqual(["new/dir/n.txt", "new/out"]);

    // Again, from a workspace the restore itself wrote.
    await exec(id, "echo x >> src/a.txt && rm run.sh");
    await restore(id, cp.id);
    expect(await snapshot(id)).toEqual(before);
    const again = await exec(id, "true");
    expect(again.diff).toEqual({ added: [], modified: [], deleted: [], truncated: false });
  });

  it("restores below a directory its user made read-only, and puts back that mode", async () => {
    const id = await newWorkspace();
    await exec(id, "mkdir -p ro/in && echo r > ro/r.txt && chmod 555 ro/in ro");
    const before = await snapshot(id);
    const cp = await checkpoint(id, "read-only");
    const step = await exec(
      id,
      "chmod 755 ro && rm ro/r.txt && echo n > ro/n.txt && rmdir ro/in && chmod 500 ro",
    );
    expect(step.status).toBe("ok");
    const back = await restore(id, cp.id);
    expect(await snapshot(id)).toEqual(before);
    expect(paths(back.diff.added)).toEqual(["ro/r.txt"]);
    expect(paths(back.diff.deleted)).toEqual(["ro/n.txt"]);
  });

  it("undoes one exec step with checkpoint: true", async () => {
    const id = await newWorkspace();
    await exec(id, "echo v1 > state.txt");
    const before = await snapshot(id);
    const step = await exec(id, "echo broken > state.txt && touch junk", { checkpoint: true });
    expect(step.checkpoint?.id).toMatch(/^cp_[a-z0-9]{20}$/);
    const id2 = step.checkpoint?.id ?? "";
    const since = await ok<Diff>(call("GET", `/v1/workspaces/${id}/diff?from=${id2}`));
    expect(paths(since.added)).toEqual(paths(step.diff.added));
    expect(paths(since.modified)).toEqual(paths(step.diff.modified));
    const undo = await restore(id, id2);
    expect(paths(undo.diff.deleted)).toEqual(["junk"]);
    expect(await snapshot(id)).toEqual(before);
  });

  it("brings back a top-level directory the workspace lacks beside changes below one it kept", async () => {
    const id = await newWorkspace();
    // Enough paths (past 16 KiB of them) for the restore to split its list.
    const many =
      "mkdir deep/many && for i in $(seq 1000 1799); do echo $i > deep/many/a-file-with-a-long-name-$i.txt; done";
    const made = await exec(id, `${TREE} && ${many}`);
    const before = await snapshot(id);
    const cp = await checkpoint(id, "start");
    // deep/ is copied whole; src/lib and src/a.txt are taken below the src/ that stays.
    await exec(id, "rm -rf deep src/lib && echo x > src/a.txt");
    const back = await restore(id, cp.id);
    expect(await snapshot(id)).toEqual(before);
    expect(back.diff.added).toHaveLength(802);
    expect(paths(back.diff.added)).toContain("deep/er/old.txt");
    expect(paths(back.diff.added)).toContain("src/lib/keep.txt");
    expect(paths(back.diff.modified)).toEqual(["src/a.txt"]);
    // Named from the sums the checkpoint keeps: the same as when the exec wrote them.
    const sums = new Map(made.diff.added.map((e) => [e.path, e.sha256]));
    expect(back.diff.added.filter((e) => e.sha256 !== sums.get(e.path))).toEqual([]);
  });

  it("does not interleave with an exec: the restore waits for it, later operations get 409", async () => {
    const id = await newWorkspace();
    await exec(id, "echo 1 > a");
    const cp = await checkpoint(id);
    const slow = exec(id, "sleep 2 && echo late > late.txt && echo 2 > a");
    await new Promise((r) => setTimeout(r, 300));
    const restoring = call("POST", `/v1/workspaces/${id}/restore`, { checkpoint: cp.id });
    await new Promise((r) => setTimeout(r, 300));
    const refused = await call("POST", `/v1/workspaces/${id}/exec`, { command: "touch z" });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("conflict");
    expect((await slow).status).toBe("ok");
    const done = await ok<{ diff: Diff }>(restoring);
    expect(paths(done.diff.deleted)).toEqual(["late.txt"]);
    const files = await snapshot(id);
    expect(files.map((e) => [e.name, e.body])).toEqual([["a", "1\n"]]);
  });
});

describe("gVisor", () => {
  it("restores every entry, comparing them all (its inode numbers say nothing across sandboxes)", async () => {
    const gvisor = await startGateway({ profilesDir: join(POLICIES_DIR, "gvisor") });
    const gv = (method: string, path: string, body?: unknown) =>
      fetch(`${gvisor.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${gvisor.key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const { id } = await ok<{ id: string }>(
      gv("POST", "/v1/workspaces", { profile: "shell-gvisor" }),
      201,
    );
    try {
      await ok(gv("POST", `/v1/workspaces/${id}/exec`, { command: TREE }));
      const tar = async () =>
        Buffer.from(await (await gv("GET", `/v1/workspaces/${id}/archive`)).arrayBuffer());
      const files = async () =>
        (await readTar(await tar()))
          .map((e) => [e.name, e.type, e.mode, e.linkname, e.body])
          .sort();
      const before = await files();
      const cp = await ok<{ id: string }>(gv("POST", `/v1/workspaces/${id}/checkpoints`, {}), 201);
      await ok(
        gv("POST", `/v1/workspaces/${id}/exec`, {
          command: "rm -rf src && echo x > run.sh && touch new",
        }),
      );
      const back = await ok<{ diff: Diff }>(
        gv("POST", `/v1/workspaces/${id}/restore`, { checkpoint: cp.id }),
      );
      expect(paths(back.diff.deleted)).toEqual(["new"]);
      expect(paths(back.diff.modified)).toEqual(["run.sh"]);
      expect(await files()).toEqual(before);
    } finally {
      await gv("DELETE", `/v1/workspaces/${id}`);
      await gvisor.close();
    }
    expect(await checkpointVolumes(id)).toEqual([]);
    expect(await gvisor.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
});

describe("the typed client", () => {
  it("takes, diffs, restores, forks and deletes checkpoints", async () => {
    await checkpointRoundTrip(gw);
  });
});

describe("fork", () => {
  it("makes three independent workspaces, from now or from a checkpoint", async () => {
    const id = await newWorkspace();
    await exec(id, TREE);
    const cp = await checkpoint(id);
    const at = await snapshot(id);
    await exec(id, "echo later > later.txt");
    const { workspaces } = await ok<{ workspaces: { id: string; profile: string }[] }>(
      call("POST", `/v1/workspaces/${id}/fork`, { checkpoint: cp.id, count: 3 }),
      201,
    );
    for (const w of workspaces) created.push({ id: w.id, key: gw.key });
    expect(workspaces).toHaveLength(3);
    expect(new Set(workspaces.map((w) => w.id)).size).toBe(3);
    for (const w of workspaces) {
      expect(w.profile).toBe("shell");
      expect(await snapshot(w.id)).toEqual(at);
    }
    const [one, two, three] = workspaces.map((w) => w.id) as [string, string, string];
    await exec(one, "echo mine > only-one.txt && rm run.sh");
    for (const other of [two, three, id]) {
      const r = await exec(other, "ls only-one.txt run.sh 2>&1; true");
      expect(r.stdout).toContain("only-one.txt': No such file");
      expect(r.stdout).toContain("\nrun.sh\n");
    }
    const now = await ok<{ workspaces: { id: string }[] }>(
      call("POST", `/v1/workspaces/${id}/fork`, {}),
      201,
    );
    created.push({ id: now.workspaces[0]?.id ?? "", key: gw.key });
    expect(await snapshot(now.workspaces[0]?.id ?? "")).toEqual(await snapshot(id));
  });

  it("refuses a count past AIRLOCK_FORK_MAX with 400 naming it", async () => {
    const id = await newWorkspace();
    const res = await call("POST", `/v1/workspaces/${id}/fork`, { count: 4 });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("AIRLOCK_FORK_MAX");
  });
});

describe("diff", () => {
  it("between two checkpoints is the union of the execs' diffs in between", async () => {
    const id = await newWorkspace();
    await exec(id, "printf 'a\\nb\\n' > a.txt && echo c > c.txt && echo s > same.txt");
    const cp1 = await checkpoint(id);
    const one = await exec(id, "printf 'a\\nB\\n' > a.txt && echo b > b.txt");
    const two = await exec(id, "rm c.txt && echo d > d.txt && touch same.txt");
    const cp2 = await checkpoint(id);
    const d = await ok<Diff>(call("GET", `/v1/workspaces/${id}/diff?from=${cp1.id}&to=${cp2.id}`));
    const union = (k: "added" | "modified" | "deleted") =>
      [...new Set([...paths(one.diff[k]), ...paths(two.diff[k])])].sort();
    expect(paths(d.added)).toEqual(union("added"));
    expect(paths(d.modified)).toEqual(union("modified"));
    expect(paths(d.deleted)).toEqual(union("deleted"));
    expect(d.modified[0]?.patch).toContain("+B");
    expect(d.added.find((e) => e.path === "b.txt")).toMatchObject({
      type: "file",
      size: 2,
      sha256: one.diff.added.find((e) => e.path === "b.txt")?.sha256,
    });
    const toNow = await ok<Diff>(
      call("GET", `/v1/workspaces/${id}/diff?from=${cp2.id}&to=current`),
    );
    expect(toNow).toEqual({ added: [], modified: [], deleted: [], truncated: false });
  });

  it("between checkpoints of many changed files names them from the sums they keep", async () => {
    const id = await newWorkspace();
    // Past 16 KiB of paths: both sides are described from what the checkpoints keep.
    const names = "$(seq -f 'many/a-file-with-a-long-name-%g.txt' 1000 1699)";
    await exec(id, `mkdir many && for f in ${names}; do echo one > $f; done && echo s > same.txt`);
    const cp1 = await checkpoint(id);
    const step = await exec(id, `for f in ${names}; do echo two >> $f; done`);
    expect(step.diff.modified).toHaveLength(700);
    const cp2 = await checkpoint(id);
    const d = await ok<Diff>(call("GET", `/v1/workspaces/${id}/diff?from=${cp1.id}&to=${cp2.id}`));
    expect(d.added).toEqual([]);
    expect(d.deleted).toEqual([]);
    expect(d.modified.map((e) => [e.path, e.sha256])).toEqual(
      step.diff.modified.map((e) => [e.path, e.sha256]),
    );
    expect(d.modified[0]?.patch).toContain("+two");
  });
});

describe("tenants, limits and storage", () => {
  it("answers 404 to another tenant on every checkpoint route", async () => {
    const id = await newWorkspace();
    const cp = await checkpoint(id);
    const o = OTHER_KEY;
    const tries = [
      call("POST", `/v1/workspaces/${id}/checkpoints`, {}, o),
      call("GET", `/v1/workspaces/${id}/checkpoints`, undefined, o),
      call("DELETE", `/v1/workspaces/${id}/checkpoints/${cp.id}`, undefined, o),
      call("POST", `/v1/workspaces/${id}/restore`, { checkpoint: cp.id }, o),
      call("POST", `/v1/workspaces/${id}/fork`, { checkpoint: cp.id }, o),
      call("GET", `/v1/workspaces/${id}/diff?from=${cp.id}`, undefined, o),
      call("POST", `/v1/workspaces/${id}/exec`, { command: "true", checkpoint: true }, o),
    ];
    for (const res of await Promise.all(tries)) expect(res.status).toBe(404);
    // Nor is a checkpoint of one workspace found through another of the same tenant.
    const mine = await newWorkspace();
    expect(
      (await call("POST", `/v1/workspaces/${mine}/restore`, { checkpoint: cp.id })).status,
    ).toBe(404);
    const listed = await ok<{ checkpoints: { id: string }[] }>(
      call("GET", `/v1/workspaces/${id}/checkpoints`),
    );
    expect(listed.checkpoints.map((c) => c.id)).toEqual([cp.id]);
  });

  it("checkpoints a workspace at its size cap; past the tenant's bytes or the count, 429 naming the limit", async () => {
    const id = await newWorkspace(CAP_KEY);
    const fill = await ok<ExecResult>(
      call(
        "POST",
        `/v1/workspaces/${id}/exec`,
        { command: `head -c ${CAP} /dev/zero > full` },
        CAP_KEY,
      ),
    );
    expect(fill.status).toBe("ok");
    const cp = await checkpoint(id, undefined, CAP_KEY);
    expect(cp.bytes).toBe(CAP);
    const over = await call("POST", `/v1/workspaces/${id}/checkpoints`, {}, CAP_KEY);
    expect(over.status).toBe(429);
    expect(await over.text()).toContain("AIRLOCK_CHECKPOINT_BYTES_PER_TENANT");
    await ok(call("POST", `/v1/workspaces/${id}/exec`, { command: "rm full" }, CAP_KEY));
    for (let i = 0; i < 3; i++) await checkpoint(id, `n${i}`, CAP_KEY);
    const many = await call("POST", `/v1/workspaces/${id}/checkpoints`, {}, CAP_KEY);
    expect(many.status).toBe(429);
    expect(await many.text()).toContain("AIRLOCK_CHECKPOINTS_PER_WORKSPACE");
    const gone = await call(
      "DELETE",
      `/v1/workspaces/${id}/checkpoints/${cp.id}`,
      undefined,
      CAP_KEY,
    );
    expect(gone.status).toBe(204);
  });

  it("refuses to checkpoint what an upload could not bring in", async () => {
    const id = await newWorkspace();
    await exec(id, "ln -s /etc/passwd pw");
    const res = await call("POST", `/v1/workspaces/${id}/checkpoints`, {});
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("pw");
    expect(await checkpointVolumes(id)).toEqual([]);
  });

  it("answers 400 naming a file its user cannot read; a restore over one still works", async () => {
    const id = await newWorkspace();
    await exec(id, "mkdir d && echo s > d/secret && echo k > keep && chmod 000 d/secret");
    for (const [path, body] of [
      [`/v1/workspaces/${id}/checkpoints`, {}],
      [`/v1/workspaces/${id}/fork`, {}],
    ] as const) {
      const res = await call("POST", path, body);
      const text = await res.text();
      expect(res.status, text).toBe(400);
      const { error } = JSON.parse(text) as {
        error: { code: string; message: string; details: { entry: string } };
      };
      expect(error.code).toBe("invalid_request");
      expect(error.message).toContain('"d/secret" cannot be read');
      expect(error.details.entry).toBe("d/secret");
    }
    expect(await checkpointVolumes(id)).toEqual([]);

    await exec(id, "chmod 600 d/secret");
    const before = await snapshot(id);
    const cp = await checkpoint(id);
    // Unreadable again, and a directory its user can neither list nor enter.
    await exec(id, "chmod 000 d/secret && mkdir -p x/y && echo z > x/y/z && chmod 000 x/y x");
    const back = await restore(id, cp.id);
    expect(paths(back.diff.modified)).toEqual(["d/secret"]);
    expect(paths(back.diff.deleted)).toEqual(["x/y/z"]);
    expect(await snapshot(id)).toEqual(before);
  });

  it("names files that are not UTF-8 in checkpoint diffs exactly as exec diffs do", async () => {
    const id = await newWorkspace();
    const empty = await checkpoint(id);
    // Latin-1 "café", a directory named with a stray byte, a newline, valid UTF-8.
    const names = ["caf\\351", "d\\377/f", "n\\nl", "na\\303\\257ve"];
    const write = names
      .map(
        (n) =>
          `mkdir -p "$(dirname "$(printf '${n}')")" && printf 'v%s\\n' "$1" > "$(printf '${n}')"`,
      )
      .join(" && ");
    const made = await ok<ExecResult>(
      call("POST", `/v1/workspaces/${id}/exec`, { command: ["sh", "-c", write, "sh", "1"] }),
    );
    expect(made.diff.added).toHaveLength(4);
    expect(paths(made.diff.added)).toContain("caf\ufffd");
    const first = await checkpoint(id);
    const between = await ok<Diff>(
      call("GET", `/v1/workspaces/${id}/diff?from=${empty.id}&to=${first.id}`),
    );
    expect(between.added).toEqual(made.diff.added);

    const edit = await ok<ExecResult>(
      call("POST", `/v1/workspaces/${id}/exec`, { command: ["sh", "-c", write, "sh", "2"] }),
    );
    const now = await ok<Diff>(call("GET", `/v1/workspaces/${id}/diff?from=${first.id}`));
    expect(now.modified).toEqual(edit.diff.modified);
    const undo = await restore(id, first.id);
    expect(paths(undo.diff.modified)).toEqual(paths(edit.diff.modified));
    expect(undo.diff.modified.every((e) => e.patch?.includes("+v1") === true)).toBe(true);
    const none = await restore(id, empty.id);
    expect(paths(none.diff.deleted)).toEqual(paths(made.diff.added));
  });

  it("removes a workspace's checkpoint storage with the workspace", async () => {
    const id = await newWorkspace();
    await exec(id, "echo x > x");
    await checkpoint(id);
    await checkpoint(id);
    expect(await checkpointVolumes(id)).toHaveLength(4);
    expect((await call("DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
    expect(await checkpointVolumes(id)).toEqual([]);
  });
});
