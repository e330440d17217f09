// Runs the real entry point, main.ts, as a child process (as an operator
// would), waits until it answers, and lists what it left on the engine by its
// instance label. For tests of signals, TLS, start-up refusals and restarts.
// Each child gets its own state store in a temporary data directory (removed
// by kill()) unless the test names one, to restart "the same" gateway.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";

export const ROOT = join(import.meta.dirname, "..", "..");

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface MainProcess {
  child: ChildProcess;
  port: number;
  key: string;
  instanceId: string;
  /** Its AIRLOCK_DATA_DIR. */
  dataDir: string;
  /** Everything written to stderr and stdout so far (pino logs go to stdout). */
  output(): string;
  exited: Promise<number | null>;
  /** Containers and volumes with this instance's label. */
  leftovers(): Promise<{ containers: string[]; volumes: string[] }>;
  /** SIGKILL if still running, then remove what it left (and its data directory, unless a test named it). */
  kill(): Promise<void>;
}

export interface MainOptions {
  env?: Record<string, string>;
  /** Start on this state store (kept by kill()): with instanceId and key, the same gateway again. */
  dataDir?: string;
  /** How to ask "are you up?": http by default. */
  ready?: (port: number) => Promise<boolean>;
  /** Another engine's socket: the child's DOCKER_HOST, and where leftovers() looks. */
  socketPath?: string;
  /** Start as an earlier process did: its instance id (so its leftovers are its own) and key. */
  instanceId?: string;
  key?: string;
  /** More tenants beside "main": tenant → key. */
  keys?: Record<string, string>;
  /** Listen here (a test that must know it first, e.g. for AIRLOCK_ADVERTISE_URL); default a free one. */
  port?: number;
  /** AIRLOCK_POLICY_FILE: its tenants are the keys (AIRLOCK_API_KEYS is then left unset). */
  policyFile?: string;
}

/** Spawns main.ts; resolves once it answers /healthz, rejects if it exits first. */
export async function spawnMain(options: MainOptions = {}): Promise<MainProcess> {
  const port = options.port ?? (await freePort());
  const key = options.key ?? `main-key-${randomUUID()}`;
  const instanceId = options.instanceId ?? `main-${randomUUID().slice(0, 8)}`;
  const { socketPath } = options;
  const keys = Object.entries({ main: key, ...options.keys }).map(([t, k]) => `${t}:${k}`);
  const dataDir = options.dataDir ?? tempDataDir();
  const { child, output } = startChild({
    AIRLOCK_PORT: String(port),
    ...(options.policyFile === undefined
      ? { AIRLOCK_API_KEYS: keys.join(",") }
      : { AIRLOCK_POLICY_FILE: options.policyFile }),
    AIRLOCK_INSTANCE_ID: instanceId,
    AIRLOCK_LOG_LEVEL: "info",
    ...(socketPath === undefined ? {} : { DOCKER_HOST: `unix://${socketPath}` }),
    AIRLOCK_DATA_DIR: dataDir,
    ...options.env,
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const docker = socketPath === undefined ? new Dockerode() : new Dockerode({ socketPath });
  const proc: MainProcess = {
    child,
    port,
    key,
    instanceId,
    dataDir,
    output,
    exited,
    async leftovers() {
      const filter = { label: [`airlock=${instanceId}`] };
      const containers = await docker.listContainers({ all: true, filters: filter });
      const volumes = (await docker.listVolumes({ filters: filter })).Volumes ?? [];
      return { containers: containers.map((c) => c.Id), volumes: volumes.map((v) => v.Name) };
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      const left = await proc.leftovers();
      for (const id of left.containers) {
        await docker
          .getContainer(id)
          .remove({ force: true, v: true })
          .catch(() => undefined);
      }
      for (const name of left.volumes) {
        await docker
          .getVolume(name)
          .remove({ force: true })
          .catch(() => undefined);
      }
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const ready =
    options.ready ??
    ((p: number) =>
      fetch(`http://127.0.0.1:${p}/healthz`).then(
        (r) => r.ok,
        () => false,
      ));
  const deadline = Date.now() + 45_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`main.ts exited ${child.exitCode}: ${output()}`);
    if (await ready(port)) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`main.ts did not answer within 45 s: ${output()}`);
}

/** Runs main.ts expecting it to refuse to start; resolves with its exit code and output. */
export async function mainRefuses(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const dataDir = tempDataDir();
  const { child, output } = startChild({
    AIRLOCK_PORT: String(await freePort()),
    AIRLOCK_API_KEYS: "main:refuse-test-key-0123456789",
    AIRLOCK_INSTANCE_ID: `refuse-${randomUUID().slice(0, 8)}`,
    AIRLOCK_DATA_DIR: dataDir,
    ...env,
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  rmSync(dataDir, { recursive: true, force: true });
  return { code, output: output() };
}

/** A fresh data directory for one child's state store. */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), "airlock-main-"));
}

/** main.ts as a child on loopback with only the given settings; its stdout and stderr gathered. */
function startChild(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ["main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env["PATH"],
      AIRLOCK_HOST: "127.0.0.1",
      AIRLOCK_BUILD_IMAGES: "never",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const gather = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout?.on("data", gather);
  child.stderr?.on("data", gather);
  return { child, output: () => output };
}
