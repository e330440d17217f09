// `node bench/executions.ts`: what recording every job as an execution costs
// an exec request, in CPU microseconds, through the whole HTTP layer
// (createApp, auth, admission, the exec route, the answer) in-process, with an
// engine that answers at once (one line of output, like `echo hi`): once with
// the real embedded store (state/sqlite.ts, a temporary file), once with a
// store that records nothing. The difference is the store's share of the hot
// path; compare it with an echo job's end-to-end latency (`npm run bench`,
// ~15 ms here). CPU time, not wall time: a busy machine cannot inflate it
// much. Also the same with an Idempotency-Key (begin + complete per request).
// Not a test: prints a table. BENCH_EXEC_N sets the rounds (default 3000).
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createApp } from "../api/app.ts";
import { hashKey } from "../api/config.ts";
import type { Job } from "../core/job.ts";
import type { ExecResult } from "../core/schemas.ts";
import type { Execution, StateStore } from "../core/state.ts";
import type { ContainerClient } from "../executor/docker.ts";
import type { Executor, ExecutorRunOptions } from "../executor/executor.ts";
import type { WorkspaceFiles } from "../executor/workspace-files.ts";
import type { WorkspaceStore } from "../executor/workspaces.ts";
import { loadProfiles } from "../policies/load.ts";
import { openSqliteState, STATE_FILE } from "../state/sqlite.ts";

const N = Number(process.env["BENCH_EXEC_N"] ?? 3000);
const KEY = "bench-key-0123456789abcdef";

/** An engine that answers at once, as a warm `echo hi` does once the container is done. */
const instant: Executor = {
  async run(job: Job, options: ExecutorRunOptions = {}): Promise<ExecResult> {
    options.onStart?.(job);
    options.onOutput?.("stdout", Buffer.from("hi\n"));
    return {
      id: job.id,
      status: "ok",
      exitCode: 0,
      signal: null,
      stdout: "hi\n",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 1,
      usage: { cpuMs: 1, memoryPeakBytes: 1 },
      diff: { added: [], modified: [], deleted: [], truncated: false },
      files: [],
      filesOmitted: [],
    };
  },
  running: 0,
  waiting: 0,
  reap: async () => ({ containers: 0, volumes: 0 }),
  drain: async () => {},
};

/** The baseline: a store that keeps nothing (only what an exec request calls is there). */
function nothingStore(real: StateStore): StateStore {
  return {
    ...real,
    executions: {
      ...real.executions,
      create: async (n) =>
        ({
          ...n,
          status: "queued",
          createdAt: "",
          outputBytes: 0,
          outputDroppedBytes: 0,
        }) as Execution,
      transition: async () => undefined,
    },
    output: { ...real.output, append: () => {} },
  };
}

function app(state: StateStore) {
  return createApp({
    executor: instant,
    client: { ping: async () => {}, imagePresent: async () => true } as unknown as ContainerClient,
    profiles: loadProfiles(),
    keys: [{ tenant: "bench", hash: hashKey(KEY) }],
    maxBodyBytes: 64 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: {
      store: {} as WorkspaceStore,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state,
    instanceId: "bench",
  });
}

let keys = 0;

async function measure(what: string, a: ReturnType<typeof app>, key: boolean) {
  const post = (i: number) =>
    a.request("/v1/exec", {
      method: "POST",
      headers: {
        authorization: `Bearer ${KEY}`,
        "content-type": "application/json",
        ...(key ? { "idempotency-key": `bench-${i}-${keys++}` } : {}),
      },
      body: JSON.stringify({ profile: "shell", command: ["echo", "hi"] }),
    });
  for (let i = 0; i < 200; i++) await (await post(-i - 1)).arrayBuffer(); // warm up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const res = await post(i);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    what,
    cpuUsPerRequest: Math.round((cpu.user + cpu.system) / N),
    wallUsPerRequest: Math.round(((performance.now() - t0) * 1000) / N),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-exec-"));
  const state = await openSqliteState({ dataDir: dir });
  try {
    const rows = [];
    // Alternated, so a change of the machine's load meets both.
    for (let round = 0; round < 2; round++) {
      rows.push(await measure("exec, store keeping nothing", app(nothingStore(state)), false));
      rows.push(await measure("exec, recorded (SQLite)", app(state), false));
      rows.push(await measure("exec + Idempotency-Key, recorded", app(state), true));
    }
    await state.output.flush();
    const bytes = ["", "-wal"]
      .map((s) => {
        try {
          return statSync(join(dir, `${STATE_FILE}${s}`)).size;
        } catch {
          return 0;
        }
      })
      .reduce((x, y) => x + y, 0);
    console.log(
      `execution records through the HTTP layer, node ${process.version}, ${N} requests each`,
    );
    console.table(rows);
    console.log(`store after ${N * 4} recorded executions: ${(bytes / 1024 / 1024).toFixed(1)} MB`);
  } finally {
    await state.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
