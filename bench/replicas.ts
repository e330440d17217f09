// The replicas' rows of `npm run bench` (README "Running several gateways"):
// echo p50 through a gateway process on the PostgreSQL store against one on the
// embedded store (target ≤ 1.2x), and sustained throughput with two engines —
// two gateways, the machine's engine and a second dockerd started here —
// against one gateway on one engine (target ≥ 1.7x, bounded by the machine's
// cores: both engines share them; the machine's CPU use during each run shows
// how busy the cores already are with one). Needs PostgreSQL (.ci/provision.sh); without
// it the rows say so. Everything it starts is stopped and removed.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterRecords, StateStore } from "../core/state.ts";
import { parseServerTiming } from "../core/timing.ts";
import { SharedQuotaLedger } from "../policies/access/quota.ts";
import { loadProfiles } from "../policies/load.ts";
import { openPgState } from "../state/pg.ts";
import { openSqliteState } from "../state/sqlite.ts";
import { postgresMissing, testDatabase } from "../test/support/postgres.ts";
import { PrivateEngine } from "../test/support/private-engine.ts";
import { median } from "./harness.ts";

const KEY = "bench-key-0123456789abcdef";
const ROOT = join(import.meta.dirname, "..");

interface Gateway {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** main.ts as a process, on the engine at `socket` (the machine's by default). */
async function gateway(env: Record<string, string>, socket?: string): Promise<Gateway> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "airlock-bench-replicas-"));
  const child = spawn(process.execPath, ["--max-semi-space-size=1", "main.ts"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      MALLOC_ARENA_MAX: "2",
      MALLOC_MMAP_THRESHOLD_: "32768",
      AIRLOCK_PORT: String(port),
      AIRLOCK_HOST: "127.0.0.1",
      AIRLOCK_API_KEYS: `bench:${KEY}`,
      AIRLOCK_BUILD_IMAGES: "never",
      AIRLOCK_LOG_LEVEL: "warn",
      AIRLOCK_SERVER_TIMING: "true",
      AIRLOCK_DATA_DIR: dataDir,
      AIRLOCK_INSTANCE_ID: `bench-replicas-${randomBytes(4).toString("hex")}`,
      ...(env["AIRLOCK_STATE_URL"] === undefined
        ? {}
        : { AIRLOCK_ADVERTISE_URL: `http://127.0.0.1:${port}` }),
      ...(socket === undefined ? {} : { DOCKER_HOST: `unix://${socket}` }),
      ...env,
    },
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
  const until = Date.now() + 120_000;
  while (
    !(await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (child.exitCode !== null || Date.now() > until) {
      await stop();
      throw new Error(`a bench gateway did not start (exit ${child.exitCode})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // Let the warm pool park its first containers.
  await new Promise((r) => setTimeout(r, 3000));
  return { url, child, stop };
}

/** One echo; its answer's Server-Timing phases (core/timing.ts). */
async function echo(gw: Gateway): Promise<Map<string, number>> {
  const res = await fetch(`${gw.url}/v1/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ profile: "shell", command: ["echo", "hi"] }),
  });
  if (res.status !== 200) throw new Error(`echo: HTTP ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  return parseServerTiming(res.headers.get("server-timing"));
}

interface EchoP50 {
  ms: number;
  /** The gateway's `store` phase (its record's writes before the answer). */
  storeMs: number;
}

/** Interleaved rounds on both gateways, so the machine's load falls on both alike. */
async function echoP50(a: Gateway, b: Gateway, rounds: number): Promise<[EchoP50, EchoP50]> {
  for (let i = 0; i < 5; i++) await Promise.all([echo(a), echo(b)]);
  const [sa, sb]: [number[][], number[][]] = [[], []];
  for (let i = 0; i < rounds; i++) {
    for (const [gw, samples] of [
      [a, sa],
      [b, sb],
    ] as const) {
      // As the latency rows: each call on an engine done with the one before
      // (its removal, the pool's refill), so neither gateway's call is timed
      // inside the other's background work.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const t0 = performance.now();
      const phases = await echo(gw);
      samples.push([performance.now() - t0, phases.get("store") ?? 0]);
    }
  }
  // To 0.1 ms: whole milliseconds would move a ratio near 13 ms by up to 8%.
  const of = (s: number[][]) => ({
    ms: Number(median(s.map((x) => x[0] as number)).toFixed(1)),
    storeMs: Number(median(s.map((x) => x[1] as number)).toFixed(2)),
  });
  return [of(sa), of(sb)];
}

/** `total` echo jobs spread round-robin over the gateways, `perGateway` at a time on each; jobs per second. */
async function jobsPerSecond(gws: Gateway[], total: number, perGateway: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    gws.flatMap((gw) =>
      Array.from({ length: perGateway }, async () => {
        while (next < total) {
          next++;
          await echo(gw);
        }
      }),
    ),
  );
  return total / ((performance.now() - t0) / 1000);
}

/**
 * What the store does for one exec before its answer, without Docker, as the
 * gateway does it: a job slot taken (SharedQuotaLedger: with no limit to hold,
 * beside the job), the execution created, two output events, ended with a
 * result straight from queued (one round trip with its output; an echo ends
 * before it would be written running), the slot given back; the usage and
 * audit records go after the answer (not timed). p50 of `n`, in ms: the part
 * of an echo's latency that depends on the store, apart from the engine's noise.
 */
async function storeWork(store: StateStore, n: number): Promise<number> {
  const ledger = new SharedQuotaLedger((store.cluster as ClusterRecords).quotas, "bench");
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const id = `bench-${randomBytes(8).toString("hex")}`;
    const slot = await ledger.acquire("bench", {});
    await store.executions.create({ id, tenant: "bench", profile: "shell", instanceId: "bench" });
    store.output.append(id, { seq: 1, stream: "stdout", data: Buffer.from("hi\n") });
    store.output.append(id, { seq: 2, stream: "stderr", data: Buffer.from("") });
    if ("release" in slot) await slot.release();
    await store.executions.transition(id, "done", {
      result: { status: "ok", stdout: "hi\n" },
      started: true,
    });
    samples.push(performance.now() - t0);
    await store.audit.append(auditRecord(id));
  }
  const sorted = samples.sort((a, b) => a - b);
  return Number((sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN).toFixed(2));
}

function auditRecord(id: string) {
  return {
    time: new Date().toISOString(),
    requestId: id,
    op: "exec",
    method: "POST",
    path: "/v1/exec",
    tenant: "bench",
    keyId: "k",
    scope: "exec",
    profile: "shell",
    workspace: null,
    commandDigest: null,
    status: "ok",
    httpStatus: 200,
    exitCode: 0,
    durationMs: 1,
    bytesIn: 1,
    bytesOut: 1,
    approvalId: null,
  };
}

async function storeRow(url: string, rows: string[][], results: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-store-"));
  const [sqlite, pg] = [await openSqliteState({ dataDir: dir }), await openPgState({ url })];
  try {
    await storeWork(sqlite, 20);
    await storeWork(pg, 20);
    const [s, p] = [await storeWork(sqlite, 200), await storeWork(pg, 200)];
    results["replicasStoreWork"] = { sqliteMs: s, pgMs: p };
    rows.push([
      "store work per exec (no Docker)",
      `PostgreSQL p50 ${p} ms`,
      `embedded p50 ${s} ms`,
      `+${(p - s).toFixed(2)} ms per exec on PostgreSQL`,
    ]);
  } finally {
    await sqlite.close();
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function replicasPhase(
  results: Record<string, unknown>,
  rows: string[][],
  options: { rounds: number; jobs: number },
): Promise<void> {
  const missing = await postgresMissing().catch((err: unknown) => (err as Error).message);
  if (missing !== undefined) {
    rows.push(["replicas (PostgreSQL store)", "skipped", "", missing]);
    return;
  }
  const db = await testDatabase("airlock_bench");
  const engineB = new PrivateEngine("benchb");
  const started: Gateway[] = [];
  const profilesB = mkdtempSync(join(tmpdir(), "airlock-bench-profiles-"));
  try {
    const shared = {
      AIRLOCK_STATE_URL: db.url,
      AIRLOCK_PEER_SECRET: randomBytes(16).toString("hex"),
      AIRLOCK_PROFILES_DIR: join(import.meta.dirname, "profiles"),
    };
    await storeRow(db.url, rows, results);
    const embedded = await gateway({
      AIRLOCK_CONCURRENCY: "4",
      AIRLOCK_PROFILES_DIR: shared.AIRLOCK_PROFILES_DIR,
    });
    started.push(embedded);
    const onPg = await gateway({ ...shared, AIRLOCK_CONCURRENCY: "4" });
    started.push(onPg);
    // At least 60 rounds: a ratio of two ~13 ms medians needs them to hold still.
    const [onPgEcho, embeddedEcho] = await echoP50(onPg, embedded, Math.max(60, options.rounds));
    const [pgP50, embeddedP50] = [onPgEcho.ms, embeddedEcho.ms];
    results["replicasEcho"] = {
      pgP50,
      embeddedP50,
      ratio: pgP50 / embeddedP50,
      pgStoreMs: onPgEcho.storeMs,
      embeddedStoreMs: embeddedEcho.storeMs,
    };
    rows.push([
      "echo p50, PostgreSQL store",
      `p50 ${pgP50} ms`,
      `embedded store p50 ${embeddedP50} ms`,
      `${(pgP50 / embeddedP50).toFixed(2)}x (target <= 1.2x)`,
    ]);
    rows.push([
      "echo phase store (Server-Timing), PostgreSQL",
      `p50 ${onPgEcho.storeMs} ms`,
      `embedded store p50 ${embeddedEcho.storeMs} ms`,
      `+${(onPgEcho.storeMs - embeddedEcho.storeMs).toFixed(2)} ms: the record's writes before the answer`,
    ]);
    await embedded.stop();
    started.splice(started.indexOf(embedded), 1);

    // Two engines: a second dockerd with the shell image, every profile pointed at it.
    await engineB.start();
    const shell = loadProfiles().get("shell")?.image as string;
    await engineB.copyImages([shell]);
    const onB = await gateway(
      { ...shared, AIRLOCK_CONCURRENCY: "4", AIRLOCK_PROFILES_DIR: shellOnly(profilesB, shell) },
      engineB.socket,
    );
    started.push(onB);
    const [one, oneCpu] = await withCpu(() => jobsPerSecond([onPg], options.jobs, 8));
    const [two, twoCpu] = await withCpu(() => jobsPerSecond([onPg, onB], options.jobs, 8));
    results["replicasThroughput"] = {
      oneEngine: one,
      twoEngines: two,
      ratio: two / one,
      cores: cpus().length,
      oneEngineCpu: oneCpu,
      twoEnginesCpu: twoCpu,
      loadAverage: loadavg(),
    };
    rows.push([
      "echo throughput, 2 engines (2 gateways)",
      `${two.toFixed(1)} jobs/s`,
      `1 engine ${one.toFixed(1)} jobs/s`,
      `${(two / one).toFixed(2)}x (target >= 1.7x; both engines share this machine's cores)`,
    ]);
    // The bound: a second engine on the same cores adds capacity only if one left them idle.
    const perJob = (c: CpuUse, jobs: number) => (c.busyMs / jobs).toFixed(1);
    rows.push([
      "machine CPU during the throughput runs",
      `1 engine: ${pct(oneCpu)} of ${cpus().length} cores busy, ${perJob(oneCpu, options.jobs)} ms CPU per job`,
      `2 engines: ${pct(twoCpu)} busy, ${perJob(twoCpu, options.jobs)} ms per job`,
      `ceiling ~${((cpus().length * 1000 * options.jobs) / oneCpu.busyMs).toFixed(1)} jobs/s on these cores (load avg ${loadavg()[0]?.toFixed(1)})`,
    ]);
  } finally {
    for (const gw of started) await gw.stop().catch(() => {});
    await engineB.stop().catch(() => {});
    await db.drop().catch(() => {});
    rmSync(profilesB, { recursive: true, force: true });
  }
}

interface CpuUse {
  /** CPU time every process of the machine used (engines, gateways, containers, the bench, anyone else). */
  busyMs: number;
  /** Wall time times cores: what the machine could have used. */
  capacityMs: number;
}

const pct = (c: CpuUse) => `${Math.round((100 * c.busyMs) / Math.max(1, c.capacityMs))}%`;

/** The machine's CPU time, busy and in all, from /proc/stat (ticks of 10 ms). */
function cpuTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  // user nice system idle iowait irq softirq steal (guest time is inside user).
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
}

/** What `run` answers, and the machine's CPU used meanwhile. */
async function withCpu<T>(run: () => Promise<T>): Promise<[T, CpuUse]> {
  const before = cpuTicks();
  const value = await run();
  const after = cpuTicks();
  return [
    value,
    { busyMs: (after.busy - before.busy) * 10, capacityMs: (after.total - before.total) * 10 },
  ];
}

/** A profiles directory where every built-in profile (and the bench's) runs on the shell image, which engine B holds. */
function shellOnly(dir: string, image: string): string {
  for (const extra of readdirSync(join(import.meta.dirname, "profiles"))) {
    writeFileSync(join(dir, extra), readFileSync(join(import.meta.dirname, "profiles", extra)));
  }
  const builtIn = join(ROOT, "policies", "profiles");
  for (const name of readdirSync(builtIn).filter((n) => n.endsWith(".json"))) {
    const profile = JSON.parse(readFileSync(join(builtIn, name), "utf8")) as object;
    writeFileSync(join(dir, name), JSON.stringify({ ...profile, image }));
  }
  return dir;
}
