import { join } from "node:path";
import { Duplex, Readable } from "node:stream";
import { pack } from "tar-stream";
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import type { ContainerClient, ContainerSpec, Usage } from "../../executor/docker.ts";
import { createExecutor } from "../../executor/executor.ts";
import { runSandbox } from "../../executor/sandbox.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";
import { resolveJob } from "../../policies/resolve.ts";

/** Records calls; each method can be made to fail. The "container" echoes a fixed output. */
class FakeClient implements ContainerClient {
  calls: string[] = [];
  failOn = new Set<string>();
  spec: ContainerSpec | undefined;
  stdin: Buffer[] = [];
  // Separate sides, like a hijacked socket: what the gateway writes is stdin, not output.
  private stream = new Duplex({
    read() {},
    write: (chunk: Buffer, _enc, done) => {
      this.stdin.push(chunk);
      done();
    },
  });

  private step(name: string) {
    this.calls.push(name);
    if (this.failOn.has(name))
      throw Object.assign(new Error(`${name} failed`), { statusCode: 500 });
  }
  async ping() {}
  async imagePresent() {
    return true;
  }
  async create(spec: ContainerSpec) {
    this.step("create");
    this.spec = spec;
    return "c1";
  }
  async putArchive() {
    this.step("putArchive");
  }
  async attach() {
    this.step("attach");
    return this.stream;
  }
  async start() {
    this.step("start");
  }
  async update() {
    this.step("update");
  }
  async wait() {
    this.step("wait");
    const header = Buffer.alloc(8);
    header[0] = 1;
    header.writeUInt32BE(3, 4);
    this.stream.push(Buffer.concat([header, Buffer.from("hi\n")]));
    this.stream.push(null);
    return 0;
  }
  async inspectExit() {
    this.step("inspectExit");
    return { exitCode: 0, oomKilled: false };
  }
  async usage(): Promise<Usage> {
    return { cpuMs: null, memoryPeakBytes: null };
  }
  async kill() {
    this.step("kill");
  }
  async getArchive() {
    this.step("getArchive");
    const tar = pack();
    tar.entry({ name: "workspace/", type: "directory" });
    tar.entry({ name: "workspace/out.txt" }, "new\n");
    tar.finalize();
    return Readable.from(tar);
  }
  async remove() {
    this.step("remove");
  }
  async removeVolume() {
    this.step("removeVolume");
  }
  async createVolume() {
    this.step("createVolume");
  }
  async volumeLabels() {
    return {};
  }
  async statPath() {
    return undefined;
  }
  async listContainers() {
    return [];
  }
  async listVolumes() {
    return [];
  }
}

const job = resolveJob(
  loadProfiles(),
  {
    profile: "shell",
    command: "echo hi",
    env: { GREETING: "hi there" },
    files: [{ path: "in.txt", content: "x", encoding: "utf8" }],
  },
  "t",
);
const deps = (client: ContainerClient) => ({
  client,
  instanceId: "i",
  orphanGraceMs: 0,
  warn: () => {},
});

describe("runSandbox lifecycle", () => {
  it("goes create → copy in → attach → start → wait → inspect → copy out → remove", async () => {
    const client = new FakeClient();
    const result = await runSandbox(deps(client), job);
    expect(client.calls).toEqual([
      "create",
      "putArchive",
      "attach",
      "start",
      "wait",
      "inspectExit",
      "getArchive",
      "remove",
      "removeVolume",
    ]);
    expect(result.status).toBe("ok");
    expect(result.stdout).toBe("hi\n");
    expect(result.diff.added.map((e) => e.path)).toEqual(["out.txt"]);
    expect(result.diff.deleted).toEqual([{ path: "in.txt" }]);
    // stdin: the nonce (and `tar`: send /workspace back), the job's shell lines, the nonce again; no input of its own.
    const stdin = Buffer.concat(client.stdin).toString();
    const nonce = stdin.slice(0, stdin.indexOf(" "));
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // The job runs in /workspace, where the launcher's subshell starts: no cd.
    expect(stdin.startsWith(`${nonce} tar\nexport GREETING=`)).toBe(true);
    // The request's variables; the profile's are the container's own already (its create spec).
    expect(stdin).toContain("\nexport GREETING='hi there'\n");
    expect(stdin).not.toContain("export LANG=");
    expect(stdin.endsWith(`\nset -- /bin/sh -c 'echo hi'\n${nonce}\n`)).toBe(true);
  });

  it.each(["putArchive", "attach", "start", "wait", "getArchive"])(
    "removes the container and its volume when %s fails",
    async (step) => {
      const client = new FakeClient();
      client.failOn.add(step);
      await expect(runSandbox(deps(client), job)).rejects.toThrow(`${step} failed`);
      expect(client.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
    },
  );

  it("with a background hook, removes an ended job's container once its answer is on its way", async () => {
    const client = new FakeClient();
    const background: Promise<void>[] = [];
    let answer = () => {};
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const hooks = { ...deps(client), background: (w: Promise<void>) => void background.push(w) };
    const result = await runSandbox(hooks, job, { answered });
    expect(result.status).toBe("ok");
    await new Promise((r) => setTimeout(r, 20));
    expect(client.calls).not.toContain("remove");
    expect(background).toHaveLength(1);
    answer();
    await Promise.all(background);
    expect(client.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
    // Without a background (the caller waits for the removal), it never waits for the answer.
    const waited = new FakeClient();
    await runSandbox(deps(waited), job, { answered: new Promise(() => {}) });
    expect(waited.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
  });

  it("still removes the volume when create itself fails", async () => {
    const client = new FakeClient();
    client.failOn.add("create");
    await expect(runSandbox(deps(client), job)).rejects.toThrow("create failed");
    expect(client.calls).toEqual(["create", "removeVolume"]);
  });

  it("does not start a job whose client has already gone", async () => {
    const client = new FakeClient();
    const controller = new AbortController();
    controller.abort();
    await expect(runSandbox(deps(client), job, { signal: controller.signal })).rejects.toThrow(
      "went away",
    );
    expect(client.calls).not.toContain("start");
    expect(client.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
  });
});

/**
 * An engine that takes its time over a kill, as gVisor sometimes does with a
 * sandbox a fork bomb has filled: the job runs until killed, and neither the
 * kill nor the container's exit nor its removal happens until `finish()`.
 */
class SlowKillClient extends FakeClient {
  private done: (() => void) | undefined;
  private readonly finished = new Promise<void>((resolve) => {
    this.done = resolve;
  });
  finish(): void {
    this.done?.();
  }
  override async wait() {
    this.calls.push("wait");
    await this.finished;
    return 137;
  }
  override async kill() {
    this.calls.push("kill");
    await this.finished;
  }
  override async remove() {
    await this.finished;
    this.calls.push("remove");
  }
}

describe("a kill the engine is slow to carry out", () => {
  const slow = resolveJob(
    loadProfiles(),
    { profile: "shell", command: "sleep 600", limits: { timeoutMs: 100 } },
    "t",
  );

  it("is answered as a timeout anyway, and the removal holds the job's slot until it is done", async () => {
    const client = new SlowKillClient();
    const held: Promise<void>[] = [];
    const result = await runSandbox(
      { ...deps(client), background: () => {}, holdSlot: (work) => held.push(work) },
      slow,
    );
    expect(result).toMatchObject({ status: "timeout", exitCode: null, signal: "SIGKILL" });
    expect(client.calls).toContain("kill");
    expect(client.calls).not.toContain("remove");
    expect(held).toHaveLength(1);
    client.finish();
    await Promise.all(held);
    expect(client.calls).toContain("remove");
  });

  it("keeps counting against the executor's concurrency until the container is gone", async () => {
    const client = new SlowKillClient();
    const executor = createExecutor({ ...deps(client), concurrency: 1, maxQueue: 4 });
    const result = await executor.run(slow);
    expect(result.status).toBe("timeout");
    // Answered, yet its slot is still taken: the engine has not removed the container.
    expect(executor.running).toBe(1);
    client.finish();
    await executor.drain();
    expect(executor.running).toBe(0);
    expect(client.calls).toContain("remove");
  });
});

/**
 * A container whose launcher answers as the real one does on the fast path:
 * once the job's lines are in, its output, the trailer (`cpu` and `memory` as
 * the launcher writes them: "-" where it sees no cgroup) and /workspace as a tar.
 */
class LauncherClient extends FakeClient {
  usageCalls = 0;
  private ended: (() => void) | undefined;
  private readonly gone = new Promise<number>((resolve) => {
    this.ended = () => resolve(0);
  });
  private readonly figures: string;
  constructor(figures: string) {
    super();
    this.figures = figures;
  }
  override async attach() {
    this.calls.push("attach");
    let stdin = "";
    const frame = (kind: number, text: string | Buffer) => {
      const payload = Buffer.from(text);
      const header = Buffer.alloc(8);
      header[0] = kind;
      header.writeUInt32BE(payload.length, 4);
      return Buffer.concat([header, payload]);
    };
    const stream: Duplex = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, done) => {
        stdin += chunk.toString();
        const nonce = stdin.slice(0, stdin.indexOf(" "));
        // The header line, then the job's lines ended by the nonce: the job is whole.
        if (stdin.split(`${nonce}\n`).length === 2 && stdin.endsWith(`\n${nonce}\n`)) {
          const tar = pack();
          tar.entry({ name: "./", type: "directory" });
          tar.entry({ name: "./out.txt" }, "new\n");
          tar.finalize();
          void (async () => {
            const chunks: Buffer[] = [];
            for await (const c of tar) chunks.push(c as Buffer);
            stream.push(frame(1, `hi\n\x1e${nonce} 0 ${this.figures} 0\n`));
            stream.push(frame(2, `\x1e${nonce}\n`));
            stream.push(frame(1, Buffer.concat([...chunks, Buffer.from(`\x1e${nonce}\n`)])));
          })();
        }
        done();
      },
    });
    return stream;
  }
  override async wait() {
    this.calls.push("wait");
    return this.gone;
  }
  override async usage() {
    this.usageCalls++;
    return { cpuMs: 170, memoryPeakBytes: 15_000_000 };
  }
  override async remove() {
    this.calls.push("remove");
    this.ended?.();
  }
}

describe("usage", () => {
  const profiles = loadProfiles({ extraDir: join(POLICIES_DIR, "gvisor") });

  it("is the launcher's under runc, with no call to the engine", async () => {
    const client = new LauncherClient("ns5000000 4096");
    const result = await runSandbox(
      deps(client),
      resolveJob(profiles, { profile: "shell", command: "echo hi" }, "t"),
    );
    expect(result).toMatchObject({ status: "ok", stdout: "hi\n" });
    expect(result.usage).toEqual({ cpuMs: 5, memoryPeakBytes: 4096 });
    expect(client.usageCalls).toBe(0);
  });

  it("is read from outside under gVisor, whose launcher sees no cgroup", async () => {
    const client = new LauncherClient("- -");
    const result = await runSandbox(
      deps(client),
      resolveJob(profiles, { profile: "shell-gvisor", command: "echo hi" }, "t"),
    );
    expect(result).toMatchObject({ status: "ok", stdout: "hi\n" });
    // No container "c1" on this host's cgroup: the engine's figures.
    expect(result.usage).toEqual({ cpuMs: 170, memoryPeakBytes: 15_000_000 });
    expect(client.usageCalls).toBe(1);
  });
});

function frame(stream: 1 | 2, payload: Buffer | string): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/**
 * A container whose launcher answers as the real one does: once its stdin
 * ends, the job's output, both end markers with the trailer, /workspace as a
 * tar and the tar's end marker. The container stays up (wait never returns).
 */
class ReplyingClient extends FakeClient {
  private readonly report: (nonce: string) => Promise<Buffer[]>;
  constructor(report: (nonce: string) => Promise<Buffer[]>) {
    super();
    this.report = report;
  }
  override async attach() {
    this.calls.push("attach");
    const stdin: Buffer[] = [];
    const stream: Duplex = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, done) => {
        stdin.push(chunk);
        done();
      },
      final: (done) => {
        const text = Buffer.concat(stdin).toString();
        const nonce = text.slice(0, text.indexOf(" "));
        void this.report(nonce).then((frames) => {
          for (const f of frames) stream.push(f);
        });
        done();
      },
    });
    return stream;
  }
  override async wait(): Promise<number> {
    this.calls.push("wait");
    return new Promise<number>(() => {});
  }
}

describe("the launcher's report", () => {
  const tarOf = async () => {
    const tar = pack();
    tar.entry({ name: "./out.txt" }, "new\n");
    tar.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of Readable.from(tar)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  it("stands on its own: no exit status, inspect or archive is asked of the engine", async () => {
    const client = new ReplyingClient(async (nonce) => [
      frame(1, "hi\n"),
      frame(2, `\x1e${nonce}\n`),
      frame(1, `\x1e${nonce} 0 ns2000000 1048576 0\n`),
      frame(1, await tarOf()),
      frame(1, `\x1e${nonce}\n`),
    ]);
    const result = await runSandbox(deps(client), job);
    expect(result).toMatchObject({ status: "ok", exitCode: 0, stdout: "hi\n" });
    expect(result.usage).toEqual({ cpuMs: 2, memoryPeakBytes: 1048576 });
    expect(result.diff.added.map((e) => e.path)).toEqual(["out.txt"]);
    expect(client.calls).not.toContain("inspectExit");
    expect(client.calls).not.toContain("getArchive");
    expect(client.calls).not.toContain("kill");
    expect(client.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
  });

  it("is not believed when its trailer carries another nonce: the job is judged by the engine", async () => {
    const forged = "f".repeat(22);
    const client = new ReplyingClient(async () => [
      frame(2, `\x1e${forged}\n`),
      frame(1, `\x1e${forged} 0 - - -\n`),
    ]);
    const slow = resolveJob(
      loadProfiles(),
      { profile: "shell", command: "true", limits: { timeoutMs: 100 } },
      "t",
    );
    const result = await runSandbox(deps(client), slow);
    expect(result.status).toBe("timeout");
    expect(result.stdout).toBe(`\x1e${forged} 0 - - -\n`);
    expect(client.calls).toContain("kill");
  });
});

describe("a kill the engine refuses", () => {
  class RefusingClient extends FakeClient {
    override async wait(): Promise<number> {
      this.calls.push("wait");
      return new Promise<number>(() => {});
    }
    override async kill() {
      this.calls.push("kill");
      throw Object.assign(new Error("kill failed"), { statusCode: 500 });
    }
  }

  it("fails the job with the engine's error, and the container is still removed", async () => {
    const client = new RefusingClient();
    const slow = resolveJob(
      loadProfiles(),
      { profile: "shell", command: "sleep 600", limits: { timeoutMs: 50 } },
      "t",
    );
    await expect(runSandbox(deps(client), slow)).rejects.toThrow("kill failed");
    expect(client.calls.slice(-2)).toEqual(["remove", "removeVolume"]);
  });
});

describe("a workspace job whose container ends before the launcher lists /workspace", () => {
  const inWorkspace = resolveJob(loadProfiles(), { profile: "shell", command: "true" }, "t", {
    id: "ws1",
    volume: "airlock-ws-ws1",
    sizeCapBytes: 1 << 20,
  });

  it("is the engine's failure when the engine no longer answers (it stopped and killed it)", async () => {
    class GoneEngine extends FakeClient {
      override async ping() {
        throw new AirlockError("docker_unavailable", "the Docker engine failed; retry shortly");
      }
    }
    await expect(runSandbox(deps(new GoneEngine()), inWorkspace)).rejects.toMatchObject({
      code: "docker_unavailable",
    });
  });

  it("hands its removal to afterAnswer when given one (the caller holds the lock), else waits for it", async () => {
    let release: (() => void) | undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    class SlowRemoval extends FakeClient {
      override async remove() {
        await released;
        return super.remove();
      }
    }
    const background: Promise<void>[] = [];
    const handed: Promise<void>[] = [];
    const withHooks = {
      ...deps(new SlowRemoval()),
      background: (w: Promise<void>) => void background.push(w),
    };
    await expect(
      runSandbox(withHooks, inWorkspace, { afterAnswer: (w) => void handed.push(w) }),
    ).rejects.toMatchObject({ code: "docker_unavailable" });
    // Answered while the removal still waits; the executor tracks it too (drain).
    expect(handed).toHaveLength(1);
    expect(background).toEqual(handed);
    let waited = false;
    const without = runSandbox(withHooks, inWorkspace).catch(() => {
      waited = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(waited).toBe(false);
    release?.();
    await Promise.all([without, ...handed]);
    expect(waited).toBe(true);
  });

  it("is still the engine's failure when the engine is already back: no job code ran, retry", async () => {
    await expect(runSandbox(deps(new FakeClient()), inWorkspace)).rejects.toMatchObject({
      code: "docker_unavailable",
      message: expect.stringContaining("ended before its job started"),
      retryAfterSeconds: 5,
    });
  });
});
