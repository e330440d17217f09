// A second Docker engine on this machine, as a second host (ENVIRONMENT.md "A
// second Docker engine on the same machine"): its own socket, data root, exec
// root and pid file, no iptables or masquerading, images copied in from the
// machine's engine with `docker save | docker load`. Started and removed by a
// test's setup; the machine's own engine is only read from, never changed.
// Its default bridge is an empty one made here: a dockerd started with
// --bridge=none deletes the host's docker0, which the machine's engine needs.
import { execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class PrivateEngine {
  readonly socket: string;
  readonly base: string;
  readonly bridge: string;
  private readonly dirs: {
    data: string;
    exec: string;
    pidFile: string;
    log: string;
    config: string;
  };

  /** `name`: a few letters, unique among the private engines of concurrent test runs. */
  constructor(name: string) {
    this.socket = `/var/run/airlock-${name}.sock`;
    this.base = join(tmpdir(), `airlock-${name}`);
    this.bridge = `airlock-${name}0`.slice(0, 15);
    this.dirs = {
      data: join(this.base, "data"),
      // Short: containerd's sockets live under it, and a socket path has at most 107 bytes.
      exec: join(this.base, "run"),
      pidFile: join(this.base, "dockerd.pid"),
      log: join(this.base, "dockerd.log"),
      // Empty, so the machine's /etc/docker/daemon.json is not read.
      config: join(this.base, "daemon.json"),
    };
  }

  docker(): Dockerode {
    return new Dockerode({ socketPath: this.socket });
  }

  /** Its dockerd's pid, when the pid file names a live process that is that dockerd. */
  pid(): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(this.dirs.pidFile, "utf8").trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(this.socket) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Lays out fresh directories and starts dockerd; waits until it answers. */
  async start(): Promise<void> {
    const running = this.pid();
    if (running !== undefined) {
      throw new Error(
        `an engine is already running on ${this.socket} (pid ${running}): another test run uses it, or one ended without its teardown`,
      );
    }
    this.remove();
    for (const dir of [this.dirs.data, this.dirs.exec]) mkdirSync(dir, { recursive: true });
    writeFileSync(this.dirs.config, "{}\n");
    try {
      execFileSync("ip", ["link", "show", this.bridge], { stdio: "ignore" });
    } catch {
      execFileSync("ip", ["link", "add", this.bridge, "type", "bridge"], { stdio: "ignore" });
    }
    const log = openSync(this.dirs.log, "a");
    const child = spawn(
      "dockerd",
      [
        `--host=unix://${this.socket}`,
        `--data-root=${this.dirs.data}`,
        `--exec-root=${this.dirs.exec}`,
        `--pidfile=${this.dirs.pidFile}`,
        `--config-file=${this.dirs.config}`,
        `--bridge=${this.bridge}`,
        "--iptables=false",
        "--ip-masq=false",
      ],
      { detached: true, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    let exited: number | null | undefined;
    child.once("exit", (code) => {
      exited = code;
    });
    child.unref();
    const docker = this.docker();
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && exited === undefined) {
      if (
        await docker.ping().then(
          () => true,
          () => false,
        )
      )
        return;
      await sleep(200);
    }
    let tail = "(no log)";
    try {
      tail = readFileSync(this.dirs.log, "utf8").split("\n").slice(-15).join("\n");
    } catch {}
    throw new Error(
      `the engine on ${this.socket} did not answer (dockerd ${exited === undefined ? "still starting after 60 s" : `exited ${exited}`}):\n${tail}`,
    );
  }

  /** Copies images from the machine's engine (`docker save | docker load`). */
  async copyImages(tags: readonly string[]): Promise<void> {
    const source = new Dockerode();
    const target = this.docker();
    for (const tag of tags) {
      if (
        await target
          .getImage(tag)
          .inspect()
          .then(
            () => true,
            () => false,
          )
      )
        continue;
      const tar = await source.getImage(tag).get();
      const answer = (await target.loadImage(tar)) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        target.modem.followProgress(answer, (err: Error | null) => (err ? reject(err) : resolve()));
      });
    }
  }

  /** Stops dockerd (SIGTERM, then SIGKILL after 30 s) and removes everything it had. */
  async stop(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) {
      process.kill(pid, "SIGTERM");
      const deadline = Date.now() + 30_000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      if (alive(pid)) {
        process.kill(pid, "SIGKILL");
        while (alive(pid)) await sleep(100);
      }
    }
    this.remove();
  }

  /** Kills what a dead dockerd left (its containerd, shims), unmounts and deletes its directories, socket and bridge. */
  remove(): void {
    for (const pid of this.stragglers()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    if (existsSync(this.base)) {
      const mounts = readFileSync("/proc/self/mounts", "utf8")
        .split("\n")
        .map((line) => line.split(" ")[1] ?? "")
        .filter((point) => point.startsWith(`${this.base}/`))
        .sort((a, b) => b.length - a.length);
      for (const point of mounts) {
        try {
          execFileSync("umount", ["-l", point], { stdio: "ignore" });
        } catch {}
      }
      rmSync(this.base, { recursive: true, force: true });
    }
    rmSync(this.socket, { force: true });
    try {
      execFileSync("ip", ["link", "delete", this.bridge], { stdio: "ignore" });
    } catch {}
  }

  /** containerd processes of this engine's exec root, and processes in its containers' cgroups. */
  private stragglers(): number[] {
    const pids: number[] = [];
    const table = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
    for (const entry of table.split("\n")) {
      const match = /^\s*(\d+)\s+(\S+)(.*)$/.exec(entry);
      if (match === null) continue;
      const [, pid, command = "", args = ""] = match;
      if (/(^|\/)containerd(-shim\S*)?$/.test(command) && args.includes(this.dirs.exec))
        pids.push(Number(pid));
    }
    let ids: string[] = [];
    try {
      ids = readdirSync(join(this.dirs.data, "containers"));
    } catch {}
    if (ids.length === 0) return pids;
    for (const entry of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
      try {
        const cgroups = readFileSync(`/proc/${entry}/cgroup`, "utf8");
        if (ids.some((id) => cgroups.includes(`/${id}`))) pids.push(Number(entry));
      } catch {}
    }
    return pids;
  }
}
