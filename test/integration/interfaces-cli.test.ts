// The `airlock` bin, spawned as a user would run it, against a real gateway:
// its exit code is the sandbox's, output is streamed, --file and --workspace work;
// --detach starts a job that `airlock logs -f` follows; Ctrl-C cancels a streamed job.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { type GatedGateway, HELD_TIMEOUT_MS, startGatedGateway } from "../support/gated-gateway.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const BIN = join(import.meta.dirname, "../../bin/airlock.ts");
let gw: TestGateway;
let dir: string;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
  dir = await mkdtemp(join(tmpdir(), "airlock-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

function airlock(
  args: string[],
  to: { url: string; key: string } = gw,
  onStderr: (stderr: string) => void = () => {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, AIRLOCK_URL: to.url, AIRLOCK_KEY: to.key },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      onStderr(stderr);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("airlock exec", () => {
  it("exits with the sandbox's exit code and streams both streams", async () => {
    const r = await airlock(["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    expect(r).toMatchObject({ code: 3, stdout: "out\n", stderr: "err\n" });
    const ok = await airlock(["exec", "echo $((6*7))"]);
    expect(ok).toMatchObject({ code: 0, stdout: "42\n" });
  });

  it("uploads local files with --file", async () => {
    const script = join(dir, "hello.py");
    await writeFile(
      script,
      "import sys\nprint(open('data/in.txt').read().strip()[::-1])\nsys.exit(5)\n",
    );
    await writeFile(join(dir, "in.txt"), "olleh\n");
    const r = await airlock([
      "exec",
      "--profile",
      "python",
      "--file",
      script,
      "--file",
      `${join(dir, "in.txt")}:data/in.txt`,
      "--",
      "python3",
      "hello.py",
    ]);
    expect(r).toMatchObject({ code: 5, stdout: "hello\n" });
  });

  it("runs in an existing workspace with --workspace", async () => {
    const client = createClient({ baseUrl: gw.url, apiKey: gw.key });
    const ws = await client.workspaces.create({ profile: "shell" });
    try {
      await client.workspaces.writeFile(ws.id, "state.txt", "kept\n");
      const r = await airlock([
        "exec",
        "--workspace",
        ws.id,
        "cat state.txt; echo more >> state.txt",
      ]);
      expect(r).toMatchObject({ code: 0, stdout: "kept\n" });
      expect(await client.workspaces.readText(ws.id, "state.txt")).toBe("kept\nmore\n");
    } finally {
      await client.workspaces.delete(ws.id);
    }
  });

  it("exits 124 on a timeout and 2 on a gateway error", async () => {
    const slow = await airlock(["exec", "--timeout", "500", "--", "sleep", "10"]);
    expect(slow.code).toBe(124);
    expect(slow.stderr).toContain("airlock: timeout");
    const bad = await airlock(["exec", "--profile", "nope", "true"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("not_found (HTTP 404)");
  });
});

describe("airlock exec --detach, airlock logs", () => {
  it("--detach prints the execution id at once; logs -f follows it and exits with its code", async () => {
    const detached = await airlock([
      "exec",
      "--detach",
      "--",
      "sh",
      "-c",
      "echo one; echo err >&2; sleep 1; echo two; exit 4",
    ]);
    expect(detached.code).toBe(0);
    const id = detached.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const followed = await airlock(["logs", "-f", id]);
    expect(followed).toMatchObject({ code: 4, stdout: "one\ntwo\n", stderr: "err\n" });
    // Ended: without -f it is the same.
    expect(await airlock(["logs", id])).toMatchObject({ code: 4, stdout: "one\ntwo\n" });
    const unknown = await airlock(["logs", "00000000-0000-0000-0000-000000000000"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("not_found (HTTP 404)");
  });

  it("Ctrl-C on a streamed exec cancels its job (it would outlive the connection)", async () => {
    const args = [BIN, "exec", "--", "sh", "-c", "echo started; sleep 60"];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, AIRLOCK_URL: gw.url, AIRLOCK_KEY: gw.key },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("started")) resolve();
      }),
    );
    const started = performance.now();
    child.kill("SIGINT");
    expect(await exited).toBe(130);
    const client = createClient({ baseUrl: gw.url, apiKey: gw.key });
    const [latest] = (await client.listExecutions({ limit: 1 })).executions;
    expect(latest?.status).toBe("cancelled");
    for (;;) {
      if ((await gw.leftovers()).containers === 0) break;
      expect(performance.now() - started).toBeLessThan(30_000);
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

describe("airlock exec: a job held for an admin's approval", () => {
  let gated: GatedGateway;
  beforeAll(async () => {
    gated = await startGatedGateway();
  });
  afterAll(async () => {
    await gated.gw.close();
    expect(await gated.gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
  const held = ["exec", "--timeout", String(HELD_TIMEOUT_MS)];
  /** Runs `airlock exec` that waits; `action` is taken on its approval as soon as stderr names it. */
  const decided = (args: string[], action: "approve" | "deny") => {
    let seen = false;
    return airlock([...held, ...args], gated.gw, (stderr) => {
      const id = /approval (apr_[0-9a-f]+)/.exec(stderr)?.[1];
      if (seen || id === undefined || !stderr.includes("waiting for the decision")) return;
      seen = true;
      void gated.decide(id, action);
    });
  };

  it("--no-wait prints the approval id on stdout and exits 75", async () => {
    const r = await airlock([...held, "--no-wait", "echo never"], gated.gw);
    expect(r.code).toBe(75);
    expect(r.stdout).toMatch(/^apr_[0-9a-f]+\n$/);
    const id = r.stdout.trim();
    expect(r.stderr).toContain(`approval ${id}, pending until`);
    expect(await gated.decide(id, "deny")).toBe("denied");
  });

  it("waits for the approval, then prints the job's output and exits with its code", async () => {
    const r = await decided(["--", "sh", "-c", "echo ran; echo err >&2; exit 3"], "approve");
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("ran\n");
    expect(r.stderr).toContain("waiting for the decision");
    expect(r.stderr).toMatch(/err\n$/);
  });

  it("a denied job exits 2 with the denial on stderr", async () => {
    const r = await decided(["echo never"], "deny");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/approval_denied \(HTTP 403\): approval apr_\w+ was denied by ops/);
  });
});

describe("airlock checkpoint, restore, fork", () => {
  it("takes a checkpoint, lists and diffs it, restores it and forks from it, printing JSON", async () => {
    const client = createClient({ baseUrl: gw.url, apiKey: gw.key });
    const { id } = await client.workspaces.create({
      profile: "shell",
      files: [{ path: "a.txt", content: "one\n" }],
    });
    try {
      const taken = await airlock(["checkpoint", id, "--label", "start"]);
      expect(taken.code).toBe(0);
      const cp = JSON.parse(taken.stdout) as { id: string; label: string; bytes: number };
      expect(cp).toMatchObject({ label: "start", bytes: 4 });
      await client.workspaces.exec(id, { command: "echo two > a.txt" });
      const diff = await airlock(["checkpoint", id, "--diff", cp.id]);
      expect(JSON.parse(diff.stdout).modified[0].patch).toContain("+two");
      const listed = await airlock(["checkpoint", id, "--list"]);
      expect(JSON.parse(listed.stdout).checkpoints.map((c: { id: string }) => c.id)).toEqual([
        cp.id,
      ]);
      const restored = await airlock(["restore", id, cp.id]);
      expect(restored.code).toBe(0);
      expect(await client.workspaces.readText(id, "a.txt")).toBe("one\n");
      const forked = await airlock(["fork", id, "--checkpoint", cp.id, "--count", "2"]);
      const made = JSON.parse(forked.stdout).workspaces as { id: string }[];
      expect(made).toHaveLength(2);
      for (const w of made) {
        expect(await client.workspaces.readText(w.id, "a.txt")).toBe("one\n");
        await client.workspaces.delete(w.id);
      }
      const refused = await airlock(["restore", id, "cp_00000000000000000000"]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("not_found (HTTP 404)");
      expect((await airlock(["checkpoint", id, "--delete", cp.id])).code).toBe(0);
    } finally {
      await client.workspaces.delete(id);
    }
  });
});
