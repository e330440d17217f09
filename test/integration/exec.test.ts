// POST /v1/exec against a real engine: every call in a fresh, locked-down container.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 4 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function exec(body: Record<string, unknown>): Promise<ExecResult> {
  const res = await gw.post("/v1/exec", body);
  const json = (await res.json()) as ExecResult;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

describe("profiles", () => {
  it("shell: hello world", async () => {
    const r = await exec({ profile: "shell", command: ["bash", "-c", "echo hello $((6*7))"] });
    expect(r).toMatchObject({
      status: "ok",
      exitCode: 0,
      signal: null,
      stdout: "hello 42\n",
      stderr: "",
    });
    expect(r.usage.cpuMs).not.toBeNull();
    expect(r.usage.memoryPeakBytes).toBeGreaterThan(0);
  });

  it("python: code with the default language", async () => {
    const r = await exec({
      profile: "python",
      code: "import sys\nprint('hi from', sys.version_info[0])",
    });
    expect(r).toMatchObject({ status: "ok", stdout: "hi from 3\n" });
  });

  it("node: worker threads and child processes run under the seccomp profile", async () => {
    const code = [
      "import { Worker } from 'node:worker_threads';",
      "import { execFileSync } from 'node:child_process';",
      "const w = new Worker('process.exit(7)', { eval: true });",
      "w.on('exit', (code) => console.log('worker', code, execFileSync('echo', ['child']).toString().trim()));",
    ].join("\n");
    const r = await exec({ profile: "node", code });
    expect(r).toMatchObject({ status: "ok", stdout: "worker 7 child\n" });
  });

  it("node: Node.js 24, JavaScript and TypeScript", async () => {
    const js = await exec({ profile: "node", code: "console.log(process.version)" });
    expect(js.stdout).toMatch(/^v24\./);
    const ts = await exec({
      profile: "node",
      language: "typescript",
      code: "const n: number = 41; console.log(n + 1)",
    });
    expect(ts).toMatchObject({ status: "ok", stdout: "42\n" });
  });
});

describe("inputs and outputs", () => {
  it("feeds stdin", async () => {
    const r = await exec({
      profile: "python",
      code: "import sys\nprint(sys.stdin.read().upper())",
      stdin: "shout\nloud",
    });
    expect(r.stdout).toBe("SHOUT\nLOUD\n");
  });

  it("sets env, and only the profile's and the request's", async () => {
    const r = await exec({ profile: "shell", command: "env | sort", env: { GREETING: "hej" } });
    const names = r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("=")[0]);
    expect(r.stdout).toContain("GREETING=hej\n");
    expect(names).not.toContain("AIRLOCK_API_KEYS");
    expect(
      names.every((n) =>
        ["GREETING", "HOME", "LANG", "PATH", "PWD", "SHLVL", "_", "HOSTNAME"].includes(n ?? ""),
      ),
    ).toBe(true);
  });

  it("returns a diff with added, modified and deleted files, and binary files through returnFiles", async () => {
    const r = await exec({
      profile: "python",
      files: [
        { path: "data/input.txt", content: "one\ntwo\n" },
        { path: "old.txt", content: "bye" },
        { path: "keep.txt", content: "same" },
      ],
      code: [
        "import os",
        "open('data/input.txt', 'a').write('three\\n')",
        "os.remove('old.txt')",
        "os.makedirs('out', exist_ok=True)",
        "open('out/blob.bin', 'wb').write(bytes(range(256)))",
        "open('out/note.txt', 'w').write('hello\\n')",
      ].join("\n"),
      returnFiles: ["out/**"],
    });
    expect(r.status).toBe("ok");
    expect(r.diff.added.map((e) => e.path)).toEqual(["out/blob.bin", "out/note.txt"]);
    expect(r.diff.modified.map((e) => e.path)).toEqual(["data/input.txt"]);
    expect(r.diff.modified[0]?.patch).toContain("+three");
    expect(r.diff.deleted).toEqual([{ path: "old.txt" }]);
    const blob = r.files.find((f) => f.path === "out/blob.bin");
    expect(blob?.encoding).toBe("base64");
    expect(Buffer.from(blob?.content ?? "", "base64")).toEqual(
      Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    );
    expect(r.files.find((f) => f.path === "out/note.txt")).toEqual({
      path: "out/note.txt",
      encoding: "utf8",
      content: "hello\n",
    });
    expect(r.diff.added.find((e) => e.path === "out/blob.bin")?.size).toBe(256);
  });

  it("finds what a one-shot job leaves in /workspace, even only dotfiles, a dangling link or a name like *", async () => {
    for (const [command, paths] of [
      ["echo x > .hidden", [".hidden"]],
      ["echo y > ..z", ["..z"]],
      ["ln -s nowhere dangling", ["dangling"]],
      ["echo z > '*'", ["*"]],
      ["mkdir -p empty/dir", []],
      ["true", []],
    ] as const) {
      const r = await exec({ profile: "shell", command });
      expect(r.status).toBe("ok");
      expect(r.diff.added.map((e) => e.path)).toEqual(paths);
    }
  });

  it("creates the workdir, owned by the sandbox user", async () => {
    const r = await exec({
      profile: "shell",
      command: "pwd && touch made && stat -c %u made",
      workdir: "a/b",
    });
    expect(r.stdout).toBe("/workspace/a/b\n1000\n");
    expect(r.diff.added.map((e) => e.path)).toEqual(["a/b/made"]);
  });

  it("reports a non-zero exit as a 200 result with status error", async () => {
    const r = await exec({ profile: "shell", command: "echo out; echo err >&2; exit 3" });
    expect(r).toMatchObject({ status: "error", exitCode: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("cannot forge the end-of-job trailer without the nonce", async () => {
    const r = await exec({
      profile: "shell",
      command: "printf '\\036deadbeef 0 ns1 1\\n'; exit 4",
    });
    expect(r.status).toBe("error");
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe("\x1edeadbeef 0 ns1 1\n");
  });

  // A builtin as argv[0] would run inside the launcher's own shell, where the
  // nonce is: these once printed it and forged exit 0, no CPU and 1 byte of memory.
  const FORGE = `printf 'n=%s\\n' "$n"; printf '\\036%s 0 ns1 1 0\\n' "$n"; printf '\\036%s\\n' "$n" >&2; exit 0`;
  it.each([
    ["eval", ["eval", FORGE]],
    [". (source)", [".", "./forge.sh"]],
    ["trap", ["trap", FORGE, "EXIT"]],
  ])("cannot reach the nonce through a shell builtin as argv: %s", async (_, command) => {
    const r = await exec({
      profile: "shell",
      command,
      files: [{ path: "forge.sh", content: FORGE }],
    });
    // Looked up as a program, as execve would: 127 not found, or 126 for "." (a directory).
    expect(r).toMatchObject({ status: "error", stdout: "" });
    expect([126, 127]).toContain(r.exitCode);
    expect(r.stderr).toMatch(/not found|Permission denied/);
    expect(r.usage.memoryPeakBytes).toBeGreaterThan(1024 * 1024);
  });
});

describe("limits", () => {
  it("kills at the deadline and answers timeout with the output so far", async () => {
    const t0 = Date.now();
    const r = await exec({
      profile: "shell",
      command: "echo started; sleep 600",
      limits: { timeoutMs: 1000 },
    });
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(r).toMatchObject({
      status: "timeout",
      exitCode: null,
      signal: "SIGKILL",
      stdout: "started\n",
    });
    const running = await gw.docker.listContainers({ filters: { label: [`airlock.job=${r.id}`] } });
    expect(running).toEqual([]);
  });

  it("reports a memory bomb as oom", async () => {
    const r = await exec({
      profile: "python",
      code: "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))",
      limits: { memoryMb: 64 },
    });
    expect(r.status).toBe("oom");
  });

  it("stops a 1 GB stdout flood at the output cap with the gateway's memory bounded", async () => {
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const r = await exec({
        profile: "shell",
        command: "head -c 1073741824 /dev/zero | tr '\\0' x",
        limits: { outputBytes: 4 * 1024 * 1024, timeoutMs: 60_000 },
      });
      expect(r.status).toBe("output_limit");
      expect(r.stdoutTruncated).toBe(true);
      expect(r.stdout.length).toBe(4 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    // The bound: the cap (4 MiB, held twice as Buffer and string) plus working room; far below 1 GB.
    expect(peak - before).toBeLessThan(100 * 1024 * 1024);
  });

  it("contains a fork bomb, and the next call works", async () => {
    const t0 = Date.now();
    const bomb = await exec({
      profile: "shell",
      command: "bomb() { bomb | bomb & }; bomb; sleep 30",
      limits: { timeoutMs: 3000, pids: 32 },
    });
    // The pids limit either starves the script's last fork (error) or it sleeps on to the deadline.
    expect(["error", "timeout"]).toContain(bomb.status);
    if (bomb.status === "error")
      expect(bomb.stderr).toMatch(/fork|Resource temporarily unavailable/i);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const next = await exec({ profile: "shell", command: "echo alive" });
    expect(next).toMatchObject({ status: "ok", stdout: "alive\n" });
  });

  it("enforces the pids limit", async () => {
    const r = await exec({
      profile: "python",
      code: [
        "import os, time",
        "n = 0",
        "try:",
        "    while True:",
        "        if os.fork() == 0:",
        "            time.sleep(5); os._exit(0)",
        "        n += 1",
        "except OSError as e:",
        "    print(n, e.errno)",
      ].join("\n"),
      limits: { pids: 16, timeoutMs: 5000 },
    });
    const [forked, errno] = r.stdout.trim().split(" ").map(Number);
    expect(errno).toBe(11); // EAGAIN
    expect(forked).toBeLessThan(16);
  });
});

describe("isolation", () => {
  it("runs as a non-root user with no capabilities, no new privileges and seccomp on", async () => {
    const r = await exec({
      profile: "shell",
      command:
        "id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
    });
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("1000");
    expect(lines[1]).toBe("1000");
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.stdout).toMatch(/CapPrm:\s+0000000000000000/);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
  });

  it("has a read-only root filesystem and a writable /workspace and /tmp", async () => {
    const r = await exec({
      profile: "shell",
      command:
        "for d in / /etc /usr /workspace /tmp; do if touch $d/probe 2>/dev/null; then echo $d rw; else echo $d ro; fi; done",
    });
    expect(r.stdout).toBe("/ ro\n/etc ro\n/usr ro\n/workspace rw\n/tmp rw\n");
  });
  // Network isolation is attacked under both runtimes in adversarial.test.ts.
});

describe("service behaviour", () => {
  it("kills the container when the client goes away", async () => {
    const controller = new AbortController();
    const pending = fetch(`${gw.url}/v1/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        profile: "shell",
        command: "sleep 60",
        env: { MARK: "disconnect-test" },
        limits: { timeoutMs: 60_000 },
      }),
      signal: controller.signal,
    }).catch(() => undefined);
    // Wait until the container is running, then hang up.
    const deadline = Date.now() + 10_000;
    let found = false;
    while (!found && Date.now() < deadline) {
      const list = await gw.docker.listContainers({
        filters: { label: [`airlock=${gw.instanceId}`], status: ["running"] },
      });
      found = list.length > 0;
      if (!found) await new Promise((r) => setTimeout(r, 100));
    }
    expect(found).toBe(true);
    controller.abort();
    await pending;
    const gone = Date.now() + 10_000;
    let left = 1;
    while (left > 0 && Date.now() < gone) {
      left = (await gw.leftovers()).containers;
      if (left > 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe(0);
  });

  it("streams stdout events before the process ends, then the result", async () => {
    const t0 = Date.now();
    const res = await gw.post(
      "/v1/exec",
      { profile: "shell", command: "for i in 1 2 3; do echo $i; sleep 1; done" },
      { accept: "text/event-stream" },
    );
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    let firstStdoutAt = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (firstStdoutAt === 0 && text.includes("event: stdout")) firstStdoutAt = Date.now() - t0;
    }
    const total = Date.now() - t0;
    expect(firstStdoutAt).toBeGreaterThan(0);
    expect(total - firstStdoutAt).toBeGreaterThan(1500);
    const result = /event: result\ndata: (.*)\n/.exec(text);
    expect(JSON.parse(result?.[1] ?? "{}")).toMatchObject({ status: "ok", stdout: "1\n2\n3\n" });
  });
});
