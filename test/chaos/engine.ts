// The chaos project's own Docker engine: a second dockerd beside the machine's
// (ENVIRONMENT.md "A second Docker engine on the same machine"), with its own
// socket, data root and exec root, so that chaos tests can restart it, fill
// its volumes and kill gateways on it without touching the engine that other
// test runs share. Started and removed by global-setup.ts; restarted by tests.
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

export const SOCKET = "/var/run/airlock-chaos.sock";
const BASE = join(tmpdir(), "airlock-chaos");
export const ENGINE_DIRS = {
  base: BASE,
  data: join(BASE, "data"),
  /** Short on purpose: containerd puts its sockets here, and a socket path has at most 107 bytes. */
  exec: join(BASE, "run"),
  pidFile: join(BASE, "dockerd.pid"),
  log: join(BASE, "dockerd.log"),
  /** An empty daemon.json, so the machine's /etc/docker/daemon.json (runsc and all) is not read. */
  config: join(BASE, "daemon.json"),
  /** Profiles for a gateway on this engine (see writeProfileOverrides). */
  profiles: join(BASE, "profiles"),
};
/** The longest socket path dockerd and its containerd create under the exec root. */
const LONGEST_SOCKET = join(ENGINE_DIRS.exec, "containerd", "containerd-debug.sock");

export function chaosDocker(): Dockerode {
  return new Dockerode({ socketPath: SOCKET });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The private dockerd's pid, when its pid file names a live process that is that dockerd. */
export function enginePid(): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(ENGINE_DIRS.pidFile, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  // A recycled pid must not be mistaken for the engine.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(SOCKET) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function answers(timeoutMs: number): Promise<boolean> {
  const docker = chaosDocker();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      return true;
    await sleep(100);
  }
  return false;
}

/** Lays out empty directories for a new engine; refuses while another chaos engine runs. */
export function prepareEngineDirs(): void {
  if (Buffer.byteLength(LONGEST_SOCKET) > 107) {
    throw new Error(
      `the chaos engine's exec root ${ENGINE_DIRS.exec} is too long for a unix socket path ` +
        `(${LONGEST_SOCKET} is over 107 bytes); set TMPDIR to a shorter directory`,
    );
  }
  const running = enginePid();
  if (running !== undefined) {
    throw new Error(
      `a chaos engine is already running (pid ${running}, socket ${SOCKET}): another chaos run ` +
        `is under way, or one was stopped without its teardown; kill ${running} if none is running`,
    );
  }
  removeEngineDirs();
  for (const dir of [ENGINE_DIRS.data, ENGINE_DIRS.exec, ENGINE_DIRS.profiles]) {
    mkdirSync(dir, { recursive: true });
  }
  writeFileSync(ENGINE_DIRS.config, "{}\n");
}

/** The private engine's default bridge: made here, with no address and no route anywhere. */
const BRIDGE = "airlock-chaos0";

function ensureBridge(): void {
  try {
    execFileSync("ip", ["link", "show", BRIDGE], { stdio: "ignore" });
  } catch {
    execFileSync("ip", ["link", "add", BRIDGE, "type", "bridge"], { stdio: "ignore" });
  }
}

export function removeBridge(): void {
  try {
    execFileSync("ip", ["link", "delete", BRIDGE], { stdio: "ignore" });
  } catch {
    // Not there: nothing to remove.
  }
}

/** Starts the private dockerd (same data root every time) and waits until it answers. */
export async function startEngine(): Promise<void> {
  ensureBridge();
  const log = openSync(ENGINE_DIRS.log, "a");
  const child = spawn(
    "dockerd",
    [
      `--host=unix://${SOCKET}`,
      `--data-root=${ENGINE_DIRS.data}`,
      `--exec-root=${ENGINE_DIRS.exec}`,
      `--pidfile=${ENGINE_DIRS.pidFile}`,
      `--config-file=${ENGINE_DIRS.config}`,
      // Its own empty bridge, never --bridge=none: a dockerd started with
      // --bridge=none deletes the host's docker0, which the machine's engine
      // (image builds, compose) needs.
      `--bridge=${BRIDGE}`,
      "--iptables=false",
      "--ip-masq=false",
    ],
    // Its own session: it outlives the test worker that restarts it; the teardown stops it.
    { detached: true, stdio: ["ignore", log, log] },
  );
  closeSync(log);
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && exited === undefined) {
    if (await answers(500)) return;
  }
  throw new Error(
    `the chaos engine did not answer on ${SOCKET}${exited === undefined ? " within 60 s" : ` (dockerd exited ${exited})`}:\n${logTail()}`,
  );
}

function logTail(): string {
  try {
    return readFileSync(ENGINE_DIRS.log, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Stops the private dockerd as an operator would (SIGTERM: it stops its
 * containers and its containerd), waiting for it to be gone; SIGKILL after 30 s.
 */
export async function stopEngine(): Promise<void> {
  const pid = enginePid();
  if (pid === undefined) {
    killStragglers();
    return;
  }
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    while (alive(pid)) await sleep(100);
    // A pid file left behind would name a pid that may be reused by then.
    rmSync(ENGINE_DIRS.pidFile, { force: true });
  }
  killStragglers();
}

/** The engine goes away and comes back on the same data root (containers, volumes, images kept). */
export async function restartEngine(downMs: number): Promise<void> {
  await stopEngine();
  await sleep(downMs);
  await startEngine();
}

/**
 * After a dockerd that had to be SIGKILLed (or died): its containerd, the
 * shims of its containers and the containers' processes outlive it. They are
 * found precisely — containerd processes whose command line names this
 * engine's exec root, processes in the cgroup of one of this engine's
 * containers — and killed by pid.
 */
function killStragglers(): void {
  for (const pid of [...containerdProcesses(), ...containerProcesses()]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function containerdProcesses(): number[] {
  const table = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  const pids: number[] = [];
  for (const entry of table.split("\n")) {
    const match = /^\s*(\d+)\s+(\S+)(.*)$/.exec(entry);
    if (match === null) continue;
    const [, pid, command = "", args = ""] = match;
    if (/(^|\/)containerd(-shim\S*)?$/.test(command) && args.includes(ENGINE_DIRS.exec)) {
      pids.push(Number(pid));
    }
  }
  return pids;
}

function containerProcesses(): number[] {
  let ids: string[];
  try {
    ids = readdirSync(join(ENGINE_DIRS.data, "containers"));
  } catch {
    return [];
  }
  if (ids.length === 0) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let cgroups: string;
    try {
      cgroups = readFileSync(`/proc/${entry}/cgroup`, "utf8");
    } catch {
      continue;
    }
    if (ids.some((id) => cgroups.includes(`/${id}`))) pids.push(Number(entry));
  }
  return pids;
}

/** Unmounts whatever an engine left mounted under the base directory, then removes it. */
export function removeEngineDirs(): void {
  if (!existsSync(ENGINE_DIRS.base)) return;
  // A containerd of a crashed run would hold its mounts and recreate its files.
  killStragglers();
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1] ?? "")
    .filter((point) => point.startsWith(`${ENGINE_DIRS.base}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) {
    try {
      execFileSync("umount", ["-l", point], { stdio: "ignore" });
    } catch {
      // Already unmounted along with its parent.
    }
  }
  rmSync(ENGINE_DIRS.base, { recursive: true, force: true });
  rmSync(SOCKET, { force: true });
  removeBridge();
}

/** Copies images from the machine's engine into the private one (`docker save | docker load`). */
export async function copyImages(tags: readonly string[]): Promise<void> {
  const source = new Dockerode();
  const target = chaosDocker();
  for (const tag of tags) {
    const present = await target
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (present) continue;
    const tar = await source.getImage(tag).get();
    const answer = (await target.loadImage(tar)) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      target.modem.followProgress(answer, (err: Error | null) => (err ? reject(err) : resolve()));
    });
  }
}
