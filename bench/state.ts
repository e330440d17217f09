// `node bench/state.ts`: what the embedded state store (state/sqlite.ts) adds
// to a job, in microseconds, on a real file in a temporary directory: one
// execution lifecycle (create → running → done with a small result), one
// output event (appended, then written in batches), an idempotent request
// (begin → complete) and an audit record. An echo job takes ~15 ms end to
// end, so these should stay in the tens of microseconds. Not a test: prints
// a table. BENCH_STATE_N sets the rounds (default 2000).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditRecord, StateStore } from "../core/state.ts";
import { openSqliteState } from "../state/sqlite.ts";

const N = Number(process.env["BENCH_STATE_N"] ?? 2000);
const RESULT = {
  id: "",
  status: "ok",
  exitCode: 0,
  signal: null,
  stdout: "hello\n",
  stderr: "",
  stdoutTruncated: false,
  stderrTruncated: false,
  durationMs: 14,
  usage: { cpuMs: 3, memoryPeakBytes: 3211264 },
  diff: { added: [], modified: [], deleted: [] },
  files: [],
};

interface Row {
  what: string;
  n: number;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  /** CPU time (user + system) of this process per call: what a loaded machine cannot inflate much. */
  cpuUs: number;
}

/** Times each of n calls; also the mean over the whole loop (it includes work a call defers). */
async function measure(
  what: string,
  n: number,
  fn: (i: number) => Promise<unknown>,
  after?: () => Promise<void>,
): Promise<Row> {
  const samples: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    samples.push(performance.now() - s);
  }
  await after?.();
  const total = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  samples.sort((a, b) => a - b);
  const at = (p: number) => samples[Math.min(n - 1, Math.floor((p / 100) * n))] ?? Number.NaN;
  const us = (ms: number) => Math.round(ms * 1000 * 10) / 10;
  return {
    what,
    n,
    meanUs: us(total / n),
    p50Us: us(at(50)),
    p99Us: us(at(99)),
    cpuUs: Math.round(((cpu.user + cpu.system) / n) * 10) / 10,
  };
}

function auditRecord(i: number): AuditRecord {
  return {
    time: new Date().toISOString(),
    requestId: `req-${i}`,
    op: "exec",
    method: "POST",
    path: "/v1/exec",
    tenant: "bench",
    keyId: "k1",
    scope: "exec",
    profile: "shell",
    workspace: null,
    commandDigest: "sha256:0123456789abcdef",
    status: "ok",
    httpStatus: 200,
    exitCode: 0,
    durationMs: 14,
    bytesIn: 120,
    bytesOut: 6,
    approvalId: null,
  };
}

async function lifecycle(s: StateStore, id: string, outputEvents: number, chunk: Uint8Array) {
  await s.executions.create({ id, tenant: "bench", profile: "shell", instanceId: "bench" });
  await s.executions.transition(id, "running");
  for (let seq = 1; seq <= outputEvents; seq++) {
    s.output.append(id, { seq, stream: "stdout", data: chunk });
  }
  await s.executions.transition(id, "done", { result: { ...RESULT, id } });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "airlock-bench-state-"));
  const s = await openSqliteState({ dataDir: dir });
  const small = Buffer.from("hello, world: a line of output\n");
  const large = Buffer.alloc(16 * 1024, 0x61);
  const rows: Row[] = [];
  try {
    rows.push(
      await measure("lifecycle (create, running, done + result)", N, (i) =>
        lifecycle(s, `l${i}`, 0, small),
      ),
    );
    rows.push(
      await measure("lifecycle with 1 output event (an echo job)", N, (i) =>
        lifecycle(s, `e${i}`, 1, small),
      ),
    );
    await s.executions.create({
      id: "stream",
      tenant: "bench",
      profile: "shell",
      instanceId: "bench",
    });
    rows.push(
      await measure(
        "output event, 31 B (append; mean includes the batch writes)",
        N * 10,
        async (i) => {
          s.output.append("stream", { seq: i + 1, stream: "stdout", data: small });
        },
        () => s.output.flush(),
      ),
    );
    await s.executions.create({
      id: "stream16k",
      tenant: "bench",
      profile: "shell",
      instanceId: "bench",
    });
    rows.push(
      await measure(
        "output event, 16 KiB",
        Math.min(N, 900),
        async (i) => {
          s.output.append("stream16k", { seq: i + 1, stream: "stdout", data: large });
        },
        () => s.output.flush(),
      ),
    );
    rows.push(
      await measure("idempotent request (begin new → complete)", N, async (i) => {
        const b = await s.idempotency.begin("bench", `key-${i}`, "fp", {
          ttlMs: 86_400_000,
          instanceId: "bench",
        });
        if (b.state === "new") {
          await s.idempotency.complete("bench", `key-${i}`, b.token, {
            status: 200,
            headers: { "content-type": "application/json" },
            body: small,
          });
        }
      }),
    );
    rows.push(
      await measure("idempotent replay (begin → done)", N, (i) =>
        s.idempotency.begin("bench", `key-${i}`, "fp", { ttlMs: 86_400_000, instanceId: "bench" }),
      ),
    );
    rows.push(await measure("audit append", N, async (i) => s.audit.append(auditRecord(i))));
    rows.push(await measure("execution get", N, (i) => s.executions.get("bench", `l${i}`)));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`embedded state store, node ${process.version}, ${N} rounds (µs per call)`);
  console.table(rows);
}

await main();
