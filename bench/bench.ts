// `npm run bench`: airlock over HTTP against the per-call `docker run --rm`
// that codapi-style executors do (same image, same hardening flags), measured
// in one run on one engine, plus the engine's own ceiling (bare create/start/
// wait/remove). Prints a table and writes bench/results/<time>.json. Every loop
// is bounded in count; all traffic stays on loopback and the local engine.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { serve } from "@hono/node-server";
import Dockerode from "dockerode";
import { pino } from "pino";
import { pack } from "tar-stream";
import { createApp } from "../api/app.ts";
import { hashKey } from "../api/config.ts";
import { DockerodeClient } from "../executor/docker.ts";
import { translateEngineErrors } from "../executor/engine-errors.ts";
import { createGatewayCore } from "../executor/gateway.ts";
import { loadProfiles, POLICIES_DIR } from "../policies/load.ts";
import { openSqliteState, STATE_FILE } from "../state/sqlite.ts";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 20);
// More jobs than the pool holds, so throughput is sustained, not a burst out of parked containers.
const THROUGHPUT_JOBS = Number(process.env["BENCH_JOBS"] ?? 64);
// BENCH_ONLY=diff runs the diff phase alone (it needs no baseline and loads the machine least);
// BENCH_ONLY=rss runs the gateway-memory phase alone; BENCH_ONLY=import the archive-import memory phase.
const ONLY = process.env["BENCH_ONLY"];
const KEY = "bench-key-0123456789abcdef";
const docker = new Dockerode();
const MIB = 1024 * 1024;
const profiles = loadProfiles({ extraDir: join(import.meta.dirname, "profiles") });

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] ?? Number.NaN);
}

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), n: s.length };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs `total` calls of fn with at most `concurrency` at a time; returns calls per second. */
async function throughput(
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

// ---- the gateway under test ---------------------------------------------------------------

async function startGateway(concurrency: number) {
  const client = translateEngineErrors(new DockerodeClient(docker));
  const core = createGatewayCore({
    client,
    profiles,
    instanceId: `bench-${process.pid}`,
    concurrency,
    maxQueue: 1000,
    orphanGraceMs: 60_000,
    maxBodyBytes: 64 * 1024 * 1024,
    workspaceTtlMs: 3600_000,
    workspacesPerTenant: 10,
    workspaceMaxBytes: 1024 * 1024 * 1024,
    poolMin: 2,
    poolMax: 16,
    warn: () => {},
  });
  core.pool?.start();
  // Its own state store, as main.ts opens one: every job is recorded (and its output kept).
  const dataDir = mkdtempSync(join(tmpdir(), "airlock-bench-"));
  const state = await openSqliteState({ dataDir });
  // Let the pool park its first containers before anything is timed.
  await new Promise((r) => setTimeout(r, 3000));
  const app = createApp({
    executor: core.executor,
    client,
    profiles,
    keys: [{ tenant: "bench", hash: hashKey(KEY) }],
    maxBodyBytes: 64 * 1024 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: { store: core.store, files: core.files, defaultProfile: "shell" },
    state,
    instanceId: `bench-${process.pid}`,
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
    await state.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, post, close, core, state, storeBytes };
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
async function startMainGateway(env: Record<string, string>) {
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

/** Runs `work` while sampling the process's RSS; its peak (VmHWM included, so no peak between samples is missed) and idle RSS. */
async function peakRssDuring<T>(pid: number, work: () => Promise<T>) {
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

/**
 * Starts the real gateway (node main.ts) with room for 16 jobs at once, streams
 * 100 MB from each of 16 jobs over SSE, and reads the gateway's peak RSS. The
 * warm pool is on, as by default: with it the 16 jobs stream at the same time
 * (cold starts spread them out, which flattered the figure by 20-40 MB).
 */
async function measureStreamingRss() {
  const gw = await startMainGateway({
    AIRLOCK_INSTANCE_ID: `bench-rss-${process.pid}`,
    AIRLOCK_CONCURRENCY: "16",
  });
  try {
    const { value: streamed, ...rss } = await peakRssDuring(gw.pid, () =>
      Promise.all(
        Array.from({ length: 16 }, async () => {
          const res = await fetch(`${gw.url}/v1/exec`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${KEY}`,
              "content-type": "application/json",
              accept: "text/event-stream",
            },
            body: JSON.stringify({
              profile: "shell-bench",
              command: "head -c 100000000 /dev/zero | tr '\\0' x",
              limits: { outputBytes: 120_000_000, timeoutMs: 120_000 },
            }),
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          let bytes = 0;
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes += value.length;
          }
          return bytes;
        }),
      ),
    );
    // Each stream's events carry its 100 MB of output (and their framing): none was cut short.
    if (Math.min(...streamed) < 100_000_000) {
      throw new Error(`a stream ended early: ${Math.min(...streamed)} bytes of events`);
    }
    return { ...rss, sseBytesPerJob: Math.min(...streamed) };
  } finally {
    await gw.stop();
  }
}

/** A 30 MiB tar: 30 files of 1 MiB of random bytes. */
async function thirtyMibTar(): Promise<Buffer> {
  const tar = pack();
  for (let i = 0; i < 30; i++) tar.entry({ name: `part-${i}.bin`, mode: 0o644 }, randomBytes(MIB));
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(tar)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Four concurrent `PUT /v1/workspaces/:id/archive` of 30 MiB each, into four
 * workspaces, on a gateway of its own (node main.ts): its peak RSS.
 */
async function measureImportRss() {
  const gw = await startMainGateway({ AIRLOCK_INSTANCE_ID: `bench-import-${process.pid}` });
  const auth = { authorization: `Bearer ${KEY}` };
  const ids: string[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/v1/workspaces`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ profile: "shell-bench" }),
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    const tar = await thirtyMibTar();
    const { value: seconds, ...rss } = await peakRssDuring(gw.pid, async () => {
      const t0 = performance.now();
      await Promise.all(
        ids.map(async (id) => {
          const res = await fetch(`${gw.url}/v1/workspaces/${id}/archive`, {
            method: "PUT",
            headers: { ...auth, "content-type": "application/x-tar" },
            body: tar,
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
        }),
      );
      return (performance.now() - t0) / 1000;
    });
    return { ...rss, tarMb: +(tar.length / MIB).toFixed(1), seconds: +seconds.toFixed(2) };
  } finally {
    for (const id of ids)
      await fetch(`${gw.url}/v1/workspaces/${id}`, { method: "DELETE", headers: auth });
    await gw.stop();
  }
}

// ---- the baseline: docker run --rm per call -------------------------------------------------

function dockerRunArgs(profileName: string, argv: string[]): string[] {
  const p = profiles.get(profileName);
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
    p.image,
    ...argv,
  ];
}

function dockerRun(profileName: string, argv: string[]): Promise<void> {
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
async function engineCycle(): Promise<void> {
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

// ---- scenarios ----------------------------------------------------------------------------

const TEN_FILES = "for i in $(seq 1 10); do echo line $i > out$i.txt; done";
const SCENARIOS = [
  { name: "echo hi (shell)", profile: "shell", argv: ["echo", "hi"] },
  { name: "python3 -c print(1)", profile: "python", argv: ["python3", "-c", "print(1)"] },
  { name: "write 10 files + diff", profile: "shell", argv: ["sh", "-c", TEN_FILES] },
];

/** Latency, throughput and the gateway's memory, each against a `docker run --rm` per call. */
async function comparePhases(
  gw: Awaited<ReturnType<typeof startGateway>>,
  results: Record<string, unknown>,
  rows: string[][],
) {
  const latency: Record<string, unknown> = {};
  for (const s of SCENARIOS) {
    const a: number[] = [];
    const b: number[] = [];
    await gw.post("/v1/exec", { profile: s.profile, command: s.argv }); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      a.push(
        await timed(() =>
          gw.post("/v1/exec", { profile: s.profile, command: s.argv }).then((r) => r.json()),
        ),
      );
      b.push(await timed(() => dockerRun(s.profile, s.argv)));
    }
    const sa = stats(a);
    const sb = stats(b);
    latency[s.name] = { airlock: sa, baseline: sb, ratioP50: +(sb.p50 / sa.p50).toFixed(2) };
    rows.push([
      `latency ${s.name}`,
      `p50 ${sa.p50} / p90 ${sa.p90} / p99 ${sa.p99} ms`,
      `p50 ${sb.p50} / p90 ${sb.p90} / p99 ${sb.p99} ms`,
      `${(sb.p50 / sa.p50).toFixed(2)}x`,
    ]);
  }
  results["latency"] = latency;

  // Throughput of echo hi at concurrency 1, 4, 16, and the engine's ceiling at 16.
  const tp: Record<string, unknown> = {};
  const ceiling = await throughput(THROUGHPUT_JOBS, 16, engineCycle);
  for (const c of [1, 4, 16]) {
    const air = await throughput(THROUGHPUT_JOBS, c, () =>
      gw.post("/v1/exec", { profile: "shell", command: ["echo", "hi"] }).then((r) => r.json()),
    );
    const base = await throughput(THROUGHPUT_JOBS, c, () => dockerRun("shell", ["echo", "hi"]));
    tp[`c${c}`] = { airlock: +air.toFixed(2), baseline: +base.toFixed(2) };
    rows.push([
      `throughput c=${c} (jobs/s)`,
      air.toFixed(2),
      base.toFixed(2),
      `${(air / base).toFixed(2)}x`,
    ]);
  }
  tp["engineCeilingC16"] = +ceiling.toFixed(2);
  rows.push([
    "engine ceiling c=16 (jobs/s)",
    "",
    ceiling.toFixed(2),
    `airlock c16 = ${((tp["c16"] as { airlock: number }).airlock / ceiling).toFixed(2)}x`,
  ]);
  results["throughput"] = tp;

  await rssPhase(results, rows);
  await importRssPhase(results, rows);
}

/**
 * Gateway RSS with 16 concurrent jobs each streaming 100 MB over SSE, measured
 * on a gateway of its own (node main.ts), not on this process.
 */
async function rssPhase(results: Record<string, unknown>, rows: string[][]) {
  const rss = await measureStreamingRss();
  results["rss"] = rss;
  rows.push([
    "gateway RSS, 16 x 100 MB SSE",
    `peak ${rss.peakMb} MB (idle ${rss.startMb} MB)`,
    "",
    rss.peakMb < 150 ? "under 150 MB" : "OVER 150 MB",
  ]);
}

/** Gateway RSS during four concurrent 30 MiB archive imports, on a gateway of its own. */
async function importRssPhase(results: Record<string, unknown>, rows: string[][]) {
  const rss = await measureImportRss();
  results["importRss"] = rss;
  rows.push([
    "gateway RSS, 4 x 30 MiB PUT archive",
    `peak ${rss.peakMb} MB (idle ${rss.startMb} MB)`,
    "",
    `+${rss.peakMb - rss.startMb} MB over idle, ${rss.seconds} s`,
  ]);
}

async function main() {
  const results: Record<string, unknown> = { when: new Date().toISOString(), rounds: ROUNDS };
  const rows: string[][] = [];
  if (ONLY === "rss") await rssPhase(results, rows);
  else if (ONLY === "import") await importRssPhase(results, rows);
  else await gatewayPhases(results, rows);
  report(results, rows);
}

async function gatewayPhases(results: Record<string, unknown>, rows: string[][]) {
  const gw = await startGateway(16);
  try {
    if (ONLY !== "diff") await comparePhases(gw, results, rows);
    // Diff cost: one changed file in a 10,000-file, 100 MB workspace, against the same exec on an empty one.
    const mk = async () =>
      ((await (await gw.post("/v1/workspaces", { profile: "python" })).json()) as { id: string })
        .id;
    const big = await mk();
    const empty = await mk();
    await gw.post(`/v1/workspaces/${big}/exec`, {
      code: "import os\nfor i in range(10000):\n    d = 'd%03d' % (i // 100)\n    os.makedirs(d, exist_ok=True)\n    open('%s/f%05d' % (d, i), 'wb').write(os.urandom(10000))",
      limits: { timeoutMs: 120_000 },
    });
    const change = { command: ["sh", "-c", "echo changed >> d000/f00000"] };
    const onBig: number[] = [];
    const onEmpty: number[] = [];
    for (let i = 0; i < 5; i++) {
      onBig.push(
        await timed(() => gw.post(`/v1/workspaces/${big}/exec`, change).then((r) => r.json())),
      );
      onEmpty.push(
        await timed(() =>
          gw
            .post(`/v1/workspaces/${empty}/exec`, { command: ["sh", "-c", "echo changed >> f"] })
            .then((r) => r.json()),
        ),
      );
    }
    // The same call once more, as the first after a gateway start: no manifest cached.
    gw.core.manifests.delete(big);
    const uncached = await timed(() =>
      gw.post(`/v1/workspaces/${big}/exec`, change).then((r) => r.json()),
    );
    const sBig = stats(onBig);
    const sEmpty = stats(onEmpty);
    results["diff"] = {
      bigWorkspaceP50: sBig.p50,
      emptyWorkspaceP50: sEmpty.p50,
      diffCostMs: sBig.p50 - sEmpty.p50,
      uncachedMs: Math.round(uncached),
    };
    rows.push([
      "diff, 10k files / 100 MB, 1 changed",
      `p50 ${sBig.p50} ms`,
      `empty workspace p50 ${sEmpty.p50} ms`,
      `diff adds ${sBig.p50 - sEmpty.p50} ms (${((sBig.p50 - sEmpty.p50) / sEmpty.p50).toFixed(1)}x the exec)`,
    ]);
    rows.push([
      "same, first call after a gateway start",
      `${Math.round(uncached)} ms (no manifest cached)`,
      "",
      "",
    ]);
    for (const id of [big, empty])
      await fetch(`${gw.url}/v1/workspaces/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${KEY}` },
      });
    // What recording every job cost on disk: each execution, its result and output.
    await gw.state.output.flush();
    const recorded = (await gw.state.executions.list("bench", { limit: 100_000 })).length;
    const bytes = gw.storeBytes();
    results["store"] = { executions: recorded, bytes };
    rows.push([
      "state store after the runs",
      `${(bytes / 1024 / 1024).toFixed(1)} MB for ${recorded} executions`,
      "",
      `${Math.round(bytes / Math.max(1, recorded))} bytes each`,
    ]);
  } finally {
    await gw.close();
    for (const c of await docker.listContainers({
      all: true,
      filters: { label: ["airlock.bench"] },
    })) {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
    }
  }
}

function report(results: Record<string, unknown>, rows: string[][]) {
  const widths = [0, 1, 2, 3].map((i) =>
    Math.max(
      ...[["measure", "airlock", "baseline (docker run --rm)", "ratio"], ...rows].map(
        (r) => (r[i] ?? "").length,
      ),
    ),
  );
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const table = [
    line(["measure", "airlock", "baseline (docker run --rm)", "ratio"]),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
  process.stdout.write(`\n${table}\n`);
  const dir = join(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, `${JSON.stringify({ ...results, table }, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${file}\n`);
}

await main();
