// `npm run bench`: airlock over HTTP against the per-call `docker run --rm`
// that codapi-style executors do (same image, same hardening flags), measured
// in one run on one engine, plus the engine's own ceiling (bare create/start/
// wait/remove). Prints a table and writes bench/results/<time>.json. Every loop
// is bounded in count; all traffic stays on loopback and the local engine.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseServerTiming } from "../core/timing.ts";
import {
  docker,
  dockerRun,
  engineCycle,
  startGateway,
  stats,
  throughput,
  timed,
} from "./harness.ts";
import { measureImportRss, measureStreamingRss } from "./memory.ts";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 20);
// More jobs than the pool holds, so throughput is sustained, not a burst out of parked containers.
const THROUGHPUT_JOBS = Number(process.env["BENCH_JOBS"] ?? 64);
// BENCH_ONLY=<groups, comma-separated> runs only those groups of rows, e.g. BENCH_ONLY=phases,diff:
// latency, phases, throughput, gvisor, diff, restart, curves, rss, import, store (all by default).
const GROUPS = [
  "latency",
  "phases",
  "throughput",
  "gvisor",
  "diff",
  "restart",
  "curves",
  "rss",
  "import",
  "store",
] as const;
type Group = (typeof GROUPS)[number];
const ONLY = new Set(
  (process.env["BENCH_ONLY"] ?? GROUPS.join(","))
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== ""),
);
for (const g of ONLY) {
  if (!(GROUPS as readonly string[]).includes(g)) {
    throw new Error(`BENCH_ONLY: no group ${JSON.stringify(g)} (groups: ${GROUPS.join(", ")})`);
  }
}
const wants = (group: Group) => ONLY.has(group);

type Gateway = Awaited<ReturnType<typeof startGateway>>;

/** What the groups fill in: the JSON results, the table's rows, and the targets met or missed. */
export interface Report {
  results: Record<string, unknown>;
  rows: string[][];
  targets: { target: string; measured: string; met: boolean }[];
}

// ---- scenarios ----------------------------------------------------------------------------

const TEN_FILES = "for i in $(seq 1 10); do echo line $i > out$i.txt; done";
const SCENARIOS = [
  { name: "echo hi (shell)", profile: "shell", argv: ["echo", "hi"] },
  { name: "python3 -c print(1)", profile: "python", argv: ["python3", "-c", "print(1)"] },
  { name: "write 10 files + diff", profile: "shell", argv: ["sh", "-c", TEN_FILES] },
];

/** Latency of each scenario, against a `docker run --rm` per call. */
async function latencyGroup(gw: Gateway, r: Report) {
  const latency: Record<string, unknown> = {};
  for (const s of SCENARIOS) {
    const a: number[] = [];
    const b: number[] = [];
    await gw.post("/v1/exec", { profile: s.profile, command: s.argv }); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      a.push(
        await timed(() =>
          gw.post("/v1/exec", { profile: s.profile, command: s.argv }).then((res) => res.json()),
        ),
      );
      b.push(await timed(() => dockerRun(s.profile, s.argv)));
    }
    const sa = stats(a);
    const sb = stats(b);
    latency[s.name] = { airlock: sa, baseline: sb, ratioP50: +(sb.p50 / sa.p50).toFixed(2) };
    r.rows.push([
      `latency ${s.name}`,
      `p50 ${sa.p50} / p90 ${sa.p90} / p99 ${sa.p99} ms`,
      `p50 ${sb.p50} / p90 ${sb.p90} / p99 ${sb.p99} ms`,
      `${(sb.p50 / sa.p50).toFixed(2)}x`,
    ]);
    if (s.profile === "shell" && s.argv[0] === "echo") {
      r.targets.push(
        { target: "echo p50 <= 8 ms", measured: `${sa.p50} ms`, met: sa.p50 <= 8 },
        { target: "echo p99 <= 30 ms", measured: `${sa.p99} ms`, met: sa.p99 <= 30 },
      );
    }
    if (s.profile === "python") {
      r.targets.push({
        target: "python one-liner p50 <= 25 ms",
        measured: `${sa.p50} ms`,
        met: sa.p50 <= 25,
      });
    }
  }
  r.results["latency"] = latency;
}

/**
 * Where an echo's time goes: the gateway's own phases (its Server-Timing
 * header: auth, validate, admission, store, queue, handoff, run, diff,
 * answer) and what lies outside the handler (the socket, HTTP parsing, the
 * client). Back to back, as one agent calling in a loop would.
 */
async function phasesGroup(gw: Gateway, r: Report) {
  const n = Math.max(ROUNDS, 50);
  const samples = new Map<string, number[]>();
  const add = (name: string, ms: number) => samples.set(name, [...(samples.get(name) ?? []), ms]);
  const body = { profile: "shell", command: ["echo", "hi"] };
  await gw.post("/v1/exec", body); // warm-up
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await gw.post("/v1/exec", body);
    await res.json();
    const total = performance.now() - t0;
    const server = parseServerTiming(res.headers.get("server-timing"));
    for (const [name, ms] of server) if (name !== "total") add(name, ms);
    add("outside the handler (HTTP, client)", total - (server.get("total") ?? 0));
    add("end to end", total);
  }
  const p = (xs: number[], q: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((q / 100) * s.length) - 1))] ?? 0;
  };
  const whole = p(samples.get("end to end") ?? [], 50);
  const table: Record<string, unknown> = {};
  for (const [name, xs] of samples) {
    const p50 = p(xs, 50);
    table[name] = { p50: +p50.toFixed(2), p99: +p(xs, 99).toFixed(2), n: xs.length };
    r.rows.push([
      `echo phase: ${name}`,
      `p50 ${p50.toFixed(2)} / p99 ${p(xs, 99).toFixed(2)} ms`,
      "",
      name === "end to end" ? "" : `${Math.round((100 * p50) / whole)}% of p50`,
    ]);
  }
  r.results["echoPhases"] = table;
}

/** Throughput of echo hi at concurrency 1, 4, 16, and the engine's ceiling at 16. */
async function throughputGroup(gw: Gateway, r: Report) {
  const tp: Record<string, unknown> = {};
  const ceiling = await throughput(THROUGHPUT_JOBS, 16, engineCycle);
  for (const c of [1, 4, 16]) {
    const air = await throughput(THROUGHPUT_JOBS, c, () =>
      gw.post("/v1/exec", { profile: "shell", command: ["echo", "hi"] }).then((res) => res.json()),
    );
    const base = await throughput(THROUGHPUT_JOBS, c, () => dockerRun("shell", ["echo", "hi"]));
    tp[`c${c}`] = { airlock: +air.toFixed(2), baseline: +base.toFixed(2) };
    r.rows.push([
      `throughput c=${c} (jobs/s)`,
      air.toFixed(2),
      base.toFixed(2),
      `${(air / base).toFixed(2)}x`,
    ]);
  }
  tp["engineCeilingC16"] = +ceiling.toFixed(2);
  r.rows.push([
    "engine ceiling c=16 (jobs/s)",
    "",
    ceiling.toFixed(2),
    `airlock c16 = ${((tp["c16"] as { airlock: number }).airlock / ceiling).toFixed(2)}x`,
  ]);
  r.results["throughput"] = tp;
}

/**
 * Gateway RSS with 16 concurrent jobs each streaming 100 MB over SSE, measured
 * on a gateway of its own (node main.ts), not on this process.
 */
async function rssGroup(r: Report) {
  const rss = await measureStreamingRss();
  r.results["rss"] = rss;
  r.rows.push([
    "gateway RSS, 16 x 100 MB SSE",
    `peak ${rss.peakMb} MB (idle ${rss.startMb} MB)`,
    "",
    rss.peakMb < 150 ? "under 150 MB" : "OVER 150 MB",
  ]);
}

/** Gateway RSS during four concurrent 30 MiB archive imports, on a gateway of its own. */
async function importGroup(r: Report) {
  const rss = await measureImportRss();
  r.results["importRss"] = rss;
  r.rows.push([
    "gateway RSS, 4 x 30 MiB PUT archive",
    `peak ${rss.peakMb} MB (idle ${rss.startMb} MB)`,
    "",
    `+${rss.peakMb - rss.startMb} MB over idle, ${rss.seconds} s`,
  ]);
}

async function main() {
  const r: Report = {
    results: { when: new Date().toISOString(), rounds: ROUNDS, groups: [...ONLY] },
    rows: [],
    targets: [],
  };
  const inProcess: Group[] = ["latency", "phases", "throughput", "diff", "restart", "store"];
  if (inProcess.some(wants)) await gatewayGroups(r);
  if (wants("rss")) await rssGroup(r);
  if (wants("import")) await importGroup(r);
  report(r);
}

async function gatewayGroups(r: Report) {
  const gw = await startGateway({ concurrency: 16 });
  try {
    if (wants("latency")) await latencyGroup(gw, r);
    if (wants("phases")) await phasesGroup(gw, r);
    if (wants("throughput")) await throughputGroup(gw, r);
    if (wants("diff")) await diffGroup(gw, r);
    if (wants("store")) await storeGroup(gw, r);
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

/** Diff cost: one changed file in a 10,000-file, 100 MB workspace, against the same exec on an empty one. */
async function diffGroup(gw: Gateway, r: Report) {
  const mk = async () =>
    ((await (await gw.post("/v1/workspaces", { profile: "python" })).json()) as { id: string }).id;
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
      await timed(() => gw.post(`/v1/workspaces/${big}/exec`, change).then((res) => res.json())),
    );
    onEmpty.push(
      await timed(() =>
        gw
          .post(`/v1/workspaces/${empty}/exec`, { command: ["sh", "-c", "echo changed >> f"] })
          .then((res) => res.json()),
      ),
    );
  }
  // The same call once more, as the first after a gateway start: no manifest cached.
  gw.core.manifests.delete(big);
  const uncached = await timed(() =>
    gw.post(`/v1/workspaces/${big}/exec`, change).then((res) => res.json()),
  );
  const sBig = stats(onBig);
  const sEmpty = stats(onEmpty);
  r.results["diff"] = {
    bigWorkspaceP50: sBig.p50,
    emptyWorkspaceP50: sEmpty.p50,
    diffCostMs: sBig.p50 - sEmpty.p50,
    uncachedMs: Math.round(uncached),
  };
  r.rows.push([
    "diff, 10k files / 100 MB, 1 changed",
    `p50 ${sBig.p50} ms`,
    `empty workspace p50 ${sEmpty.p50} ms`,
    `diff adds ${sBig.p50 - sEmpty.p50} ms (${((sBig.p50 - sEmpty.p50) / sEmpty.p50).toFixed(1)}x the exec)`,
  ]);
  r.rows.push([
    "same, first call after a gateway start",
    `${Math.round(uncached)} ms (no manifest cached)`,
    "",
    "",
  ]);
  for (const id of [big, empty]) await gw.remove(`/v1/workspaces/${id}`);
}

/** What recording every job cost on disk: each execution, its result and output. */
async function storeGroup(gw: Gateway, r: Report) {
  await gw.state.output.flush();
  const recorded = (await gw.state.executions.list("bench", { limit: 100_000 })).length;
  const bytes = gw.storeBytes();
  r.results["store"] = { executions: recorded, bytes };
  r.rows.push([
    "state store after the runs",
    `${(bytes / 1024 / 1024).toFixed(1)} MB for ${recorded} executions`,
    "",
    `${Math.round(bytes / Math.max(1, recorded))} bytes each`,
  ]);
}

function report({ results, rows, targets }: Report) {
  for (const t of targets) {
    rows.push([`target: ${t.target}`, t.measured, "", t.met ? "met" : "MISSED"]);
  }
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
  writeFileSync(file, `${JSON.stringify({ ...results, targets, table }, null, 2)}\n`);
  process.stdout.write(`\nwritten to ${file}\n`);
}

await main();
