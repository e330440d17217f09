// The bench's harness: the gateway under test (in-process, or the real one as
// `npm start` runs it), the `docker run --rm` baseline and the engine's bare
// cycle, and the small statistics every row uses.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import Dockerode from "dockerode";
import { pino } from "pino";
import { createApp } from "../api/app.ts";
import { hashKey } from "../api/config.ts";
import type { LoadedProfile } from "../core/profile.ts";
import { DockerodeClient } from "../executor/docker.ts";
import { translateEngineErrors } from "../executor/engine-errors.ts";
import { createGatewayCore } from "../executor/gateway.ts";
import { loadProfiles, POLICIES_DIR } from "../policies/load.ts";
import { openSqliteState, STATE_FILE } from "../state/sqlite.ts";

export const KEY = "bench-key-0123456789abcdef";
export const docker = new Dockerode();
export const MIB = 1024 * 1024;
export const profiles = loadProfiles({ extraDir: join(import.meta.dirname, "profiles") });
/** The gVisor profiles (policies/gvisor), served by a gateway of their own when the engine has runsc. */
export const gvisorProfiles = new Map(
  [...loadProfiles({ extraDir: join(POLICIES_DIR, "gvisor") })].filter(
    ([, p]) => p.runtime === "runsc",
  ),
);

/** Whether the engine has the runsc runtime (gVisor). */
export async function hasRunsc(): Promise<boolean> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  return Object.hasOwn(info.Runtimes ?? {}, "runsc");
}

/** The lower median, unrounded (percentile() rounds to whole ms). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
}

export function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] ?? Number.NaN);
}

export function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), n: s.length };
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `total` calls of fn with at most `concurrency` at a time; returns calls per second. */
export async function throughput(
  total: number,
  concurrency: number,
  fn: () => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await fn();
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

/** What the bench's groups fill in: the JSON results, the table's rows, and the targets met or missed. */
export interface Report {
  results: Record<string, unknown>;
  rows: string[][];
  targets: { target: string; measured: string; met: boolean }[];
}

export type Gateway = Awaited<ReturnType<typeof startGateway>>;

// ---- the gateway under test ---------------------------------------------------------------

export interface GatewayOptions {
  concurrency: number;
  /** The profiles it serves (by default the stock ones and the bench's). */
  profiles?: ReadonlyMap<string, LoadedProfile>;
  /** A data directory to open (a restart); by default a new one, removed at close. */
  dataDir?: string;
  workspacesPerTenant?: number;
  poolMin?: number;
  /** How long to let the pool park its first containers before anything is timed. */
  settleMs?: number;
}

let gateways = 0;

export async function startGateway(o: GatewayOptions) {
  const served = o.profiles ?? profiles;
  // Its own state store, as main.ts opens one: every job is recorded (and its output kept).
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), "airlock-bench-"));
  const state = await openSqliteState({ dataDir });
  const client = translateEngineErrors(new DockerodeClient(docker));
  const instanceId = `bench-${process.pid}-${gateways++}`;
  const core = createGatewayCore({
    client,
    profiles: served,
    instanceId,
    concurrency: o.concurrency,
    maxQueue: 1000,
    orphanGraceMs: 60_000,
    maxBodyBytes: 64 * 1024 * 1024,
    workspaceTtlMs: 3600_000,
    workspacesPerTenant: o.workspacesPerTenant ?? 10,
    workspaceMaxBytes: 1024 * 1024 * 1024,
    poolMin: o.poolMin ?? 2,
    poolMax: 16,
    // The original profiles stay warm, as before; a language warms on its first job (pool.ts).
    poolWarm: ["shell", "python", "node", "shell-bench", "shell-gvisor", "python-gvisor"],
    manifestStore: state.manifests,
    warn: () => {},
  });
  core.pool?.start();
  await new Promise((r) => setTimeout(r, o.settleMs ?? 3000));
  const app = createApp({
    executor: core.executor,
    client,
    profiles: served,
    keys: [{ tenant: "bench", hash: hashKey(KEY) }],
    maxBodyBytes: 64 * 1024 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: { store: core.store, files: core.files, defaultProfile: "shell" },
    state,
    instanceId,
    serverTiming: true,
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    return res;
  };
  const call = async (method: string, path: string) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${KEY}` },
    });
    if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    return res;
  };
  /** The store's files (the database and its write-ahead log), in bytes. */
  const storeBytes = () =>
    ["", "-wal"]
      .map((suffix) => {
        try {
          return statSync(join(dataDir, `${STATE_FILE}${suffix}`)).size;
        } catch {
          return 0;
        }
      })
      .reduce((a, b) => a + b, 0);
  const close = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await core.executor.drain();
    await core.manifests.flush();
    await state.close();
    if (o.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    url,
    instanceId,
    post,
    get: (path: string) => call("GET", path),
    remove: (path: string) => call("DELETE", path),
    close,
    core,
    state,
    storeBytes,
  };
}

// ---- gateway memory under 16 large streams ---------------------------------------------------

/** A gateway process's resident memory from /proc: now (VmRSS) and its peak since start (VmHWM). */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rssMb: Math.round(kb("VmRSS") / 1024), peakMb: Math.round(kb("VmHWM") / 1024) };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The real gateway, as `npm start` runs it (its prestart, environment and node flags), without npm in between. */
export async function startMainGateway(env: Record<string, string>) {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "airlock-bench-rss-"));
  const root = join(import.meta.dirname, "..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    scripts: { start: string; prestart?: string };
  };
  if (pkg.scripts.prestart !== undefined) {
    execFileSync("sh", ["-c", pkg.scripts.prestart], { cwd: root, stdio: "inherit" });
  }
  const words = pkg.scripts.start.split(/\s+/);
  const node = words.indexOf("node");
  const startEnv = Object.fromEntries(
    words.slice(0, node).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]),
  );
  const args = words.slice(node + 1);
  const child = spawn(process.execPath, args, {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...startEnv,
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      AIRLOCK_PORT: String(port),
      AIRLOCK_HOST: "127.0.0.1",
      AIRLOCK_API_KEYS: `bench:${KEY}`,
      AIRLOCK_PROFILES_DIR: join(import.meta.dirname, "profiles"),
      AIRLOCK_BUILD_IMAGES: "never",
      AIRLOCK_LOG_LEVEL: "warn",
      AIRLOCK_DATA_DIR: dataDir,
      ...env,
    },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const until = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error("the gateway under test exited at start");
      const up = await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > until) throw new Error("the gateway under test did not start in 120 s");
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, pid: child.pid as number, stop };
}

/**
 * The real gateway in a process of its own, as it is deployed, with the
 * in-process gateway's call helpers: a client never shares the gateway's
 * event loop, so latency measured here is what a caller sees (the in-process
 * gateway's background removals and refills would delay the bench's own
 * reading of each answer).
 */
export async function startProcessGateway(env: Record<string, string> = {}) {
  const main = await startMainGateway({
    AIRLOCK_SERVER_TIMING: "true",
    AIRLOCK_CONCURRENCY: "16",
    AIRLOCK_POOL_MIN: "2",
    AIRLOCK_POOL_WARM: "shell,python,node,shell-bench",
    ...env,
  });
  // As the in-process gateway does: let the pool park its first containers.
  await new Promise((r) => setTimeout(r, 3000));
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${main.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    return res;
  };
  return { url: main.url, pid: main.pid, post, close: main.stop };
}

/** What the latency rows need of a gateway: either kind. */
export type Poster = Pick<Gateway, "post">;

/** Runs `work` while sampling the process's RSS; its peak (VmHWM included, so no peak between samples is missed) and idle RSS. */
export async function peakRssDuring<T>(pid: number, work: () => Promise<T>) {
  const atStart = memoryOf(pid);
  let sampledPeak = atStart.rssMb;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, memoryOf(pid).rssMb);
  }, 20);
  try {
    const value = await work();
    return { value, peakMb: Math.max(memoryOf(pid).peakMb, sampledPeak), startMb: atStart.rssMb };
  } finally {
    clearInterval(sampler);
  }
}

// ---- the baseline: docker run --rm per call -------------------------------------------------

function dockerRunArgs(profileName: string, argv: string[]): string[] {
  const p = profiles.get(profileName) ?? gvisorProfiles.get(profileName);
  if (p === undefined) throw new Error(`no profile ${profileName}`);
  const l = p.limits.default;
  return [
    "run",
    "--rm",
    "-i",
    "--network",
    "none",
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
    "--security-opt",
    `seccomp=${join(POLICIES_DIR, "seccomp", p.seccomp)}`,
    "--init",
    "--user",
    p.user,
    "--memory",
    `${l.memoryMb}m`,
    "--memory-swap",
    `${l.memoryMb}m`,
    "--cpus",
    String(l.cpus),
    "--pids-limit",
    String(l.pids),
    "--tmpfs",
    `/tmp:rw,nosuid,nodev,size=${p.tmpfs.tmpMb}m`,
    "--shm-size",
    `${p.tmpfs.shmMb}m`,
    "--ulimit",
    `nofile=${p.ulimits.nofile}:${p.ulimits.nofile}`,
    "--log-driver",
    "none",
    "--label",
    "airlock.bench=baseline",
    "-v",
    "/workspace",
    "-w",
    "/workspace",
    ...(p.runtime === "runc" ? [] : ["--runtime", p.runtime]),
    // gVisor's profiles need their env (the no-automount shim); the runc rows stay as they always were.
    ...(p.runtime === "runc" ? [] : Object.entries(p.env).flatMap(([k, v]) => ["-e", `${k}=${v}`])),
    p.image,
    ...argv,
  ];
}

export function dockerRun(profileName: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", dockerRunArgs(profileName, argv), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.resume();
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`docker run exited ${code}: ${err}`)),
    );
  });
}

/** What the engine itself can churn: bare create → start → wait → remove, no airlock in the way. */
export async function engineCycle(): Promise<void> {
  const c = await docker.createContainer({
    Image: "airlock/shell:1",
    Cmd: ["true"],
    HostConfig: { NetworkMode: "none", Init: true, LogConfig: { Type: "none", Config: {} } },
    Labels: { "airlock.bench": "ceiling" },
  });
  await c.start();
  await c.wait();
  await c.remove({ force: true });
}
