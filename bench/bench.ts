// `npm run bench`: airlock over HTTP against the per-call `docker run --rm`
// that codapi-style executors do (same image, same hardening flags), measured
// in one run on one engine, plus the engine's own ceiling (bare create/start/
// wait/remove). Prints a table and writes bench/results/<time>.json. Every loop
// is bounded in count; all traffic stays on loopback and the local engine.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseServerTiming } from "../core/timing.ts";
import { checkpointPhase } from "./checkpoints.ts";
import { egressPhase } from "./egress.ts";
import {
  docker,
  dockerRun,
  engineCycle,
  type Gateway,
  gvisorProfiles,
  hasRunsc,
  type Poster,
  profiles,
  type Report,
  startGateway,
  startProcessGateway,
  stats,
  throughput,
  timed,
} from "./harness.ts";
import { languagePhase } from "./languages.ts";
import { measureImportRss, measureStreamingRss } from "./memory.ts";
import { replicasPhase } from "./replicas.ts";
import {
  baselineSettled,
  dockerRunEcho,
  engineAsAirlock,
  gatewaySettled,
  type Sustained,
  sustained,
  TP_SECONDS,
} from "./throughput.ts";
import { curvesGroup, restartGroup } from "./workspaces.ts";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 20);
// More jobs than the pool holds, so throughput is sustained, not a burst out of parked containers.
const THROUGHPUT_JOBS = Number(process.env["BENCH_JOBS"] ?? 64);
// BENCH_ONLY=<groups, comma-separated> runs only those groups of rows, e.g. BENCH_ONLY=phases,diff:
// latency, phases, throughput, gvisor, diff, checkpoints, restart, curves, rss, streams, import, store,
// egress, languages, replicas (all by default; replicas needs PostgreSQL and starts a second engine:
// bench/replicas.ts).
const GROUPS = [
  "latency",
  "phases",
  "throughput",
  "gvisor",
  "diff",
  "checkpoints",
  "restart",
  "curves",
  "rss",
  "streams",
  "import",
  "store",
  "egress",
  "languages",
  "replicas",
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

// ---- scenarios ----------------------------------------------------------------------------

const TEN_FILES = "for i in $(seq 1 10); do echo line $i > out$i.txt; done";
const SCENARIOS = [
  { name: "echo hi (shell)", profile: "shell", argv: ["echo", "hi"] },
  { name: "python3 -c print(1)", profile: "python", argv: ["python3", "-c", "print(1)"] },
  { name: "write 10 files + diff", profile: "shell", argv: ["sh", "-c", TEN_FILES] },
];

type Scenario = (typeof SCENARIOS)[number];

/** The pause before each timed call of the latency rows and the phase table. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
type Stats = ReturnType<typeof stats>;

/** Latency of each scenario, against a `docker run --rm` per call; each scenario's airlock stats. */
async function latencyRows(gw: Poster, r: Report, scenarios: readonly Scenario[]) {
  const latency: Record<string, unknown> = {};
  const out = new Map<string, Stats>();
  for (const s of scenarios) {
    const a: number[] = [];
    const b: number[] = [];
    await gw.post("/v1/exec", { profile: s.profile, command: s.argv }); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      // Each call, airlock's and docker run's, on an engine done with the one
      // before (its removal, the pool's refill): a single call's latency.
      await settle();
      a.push(
        await timed(() =>
          gw.post("/v1/exec", { profile: s.profile, command: s.argv }).then((res) => res.json()),
        ),
      );
      await settle();
      b.push(await timed(() => dockerRun(s.profile, s.argv)));
    }
    const sa = stats(a);
    const sb = stats(b);
    out.set(s.name, sa);
    latency[s.name] = { airlock: sa, baseline: sb, ratioP50: +(sb.p50 / sa.p50).toFixed(2) };
    r.rows.push([
      `latency ${s.name}`,
      `p50 ${sa.p50} / p90 ${sa.p90} / p99 ${sa.p99} ms`,
      `p50 ${sb.p50} / p90 ${sb.p90} / p99 ${sb.p99} ms`,
      `${(sb.p50 / sa.p50).toFixed(2)}x`,
    ]);
  }
  return { latency, out };
}

function latencyTarget(
  r: Report,
  what: string,
  s: Stats | undefined,
  p: "p50" | "p99",
  max: number,
) {
  if (s === undefined) return;
  r.targets.push({ target: `${what} ${p} <= ${max} ms`, measured: `${s[p]} ms`, met: s[p] <= max });
}

async function latencyGroup(gw: Poster, r: Report) {
  const { latency, out } = await latencyRows(gw, r, SCENARIOS);
  r.results["latency"] = latency;
  latencyTarget(r, "echo", out.get("echo hi (shell)"), "p50", 8);
  latencyTarget(r, "echo", out.get("echo hi (shell)"), "p99", 30);
  latencyTarget(r, "python one-liner", out.get("python3 -c print(1)"), "p50", 25);
}

const GVISOR_SCENARIOS = [
  { name: "echo hi (shell-gvisor)", profile: "shell-gvisor", argv: ["echo", "hi"] },
  {
    name: "python3 -c print(1) (python-gvisor)",
    profile: "python-gvisor",
    argv: ["python3", "-c", "print(1)"],
  },
];

/** The gVisor profiles, on a gateway of their own, when the engine has runsc: latency and throughput. */
async function gvisorGroup(r: Report) {
  if (!(await hasRunsc())) {
    r.rows.push(["gVisor (runsc)", "not measured: the engine has no runsc runtime", "", ""]);
    return;
  }
  const gw = await startGateway({ concurrency: 16, profiles: gvisorProfiles, settleMs: 5000 });
  try {
    const { latency, out } = await latencyRows(gw, r, GVISOR_SCENARIOS);
    const tp: Record<string, number> = {};
    const echo = () =>
      gw
        .post("/v1/exec", { profile: "shell-gvisor", command: ["echo", "hi"] })
        .then((res) => res.json());
    for (const c of [4, 16]) {
      tp[`c${c}`] = (await sustained(c, echo, gatewaySettled(gw))).rate;
      const runc = (r.results["throughput"] as Record<string, { airlock: number }> | undefined)?.[
        `c${c}`
      ];
      r.rows.push([
        `throughput gVisor c=${c} (jobs/s)`,
        String(tp[`c${c}`]),
        runc === undefined ? "" : `runc (airlock) ${runc.airlock}`,
        runc === undefined ? "" : `${((tp[`c${c}`] ?? 0) / runc.airlock).toFixed(2)}x runc's`,
      ]);
    }
    r.results["gvisor"] = { latency, throughput: tp };
    latencyTarget(r, "gVisor echo", out.get("echo hi (shell-gvisor)"), "p50", 60);
    latencyTarget(
      r,
      "gVisor python one-liner",
      out.get("python3 -c print(1) (python-gvisor)"),
      "p50",
      120,
    );
  } finally {
    await gw.close();
  }
}

/**
 * Where an echo's time goes: the gateway's own phases (its Server-Timing
 * header: auth, validate, admission, store, queue, handoff, run, diff,
 * answer) and what lies outside the handler (the socket, HTTP parsing, the
 * client). Paced as the latency rows are (the pool refills between calls); a
 * phase a call did not have (create and start: a pool miss) counts as 0.
 */
async function phasesGroup(gw: Poster, r: Report) {
  const n = Math.max(ROUNDS, 40);
  const body = { profile: "shell", command: ["echo", "hi"] };
  await gw.post("/v1/exec", body); // warm-up
  const samples: Map<string, number>[] = [];
  for (let i = 0; i < n; i++) {
    await settle();
    const t0 = performance.now();
    const res = await gw.post("/v1/exec", body);
    await res.json();
    const total = performance.now() - t0;
    const server = parseServerTiming(res.headers.get("server-timing"));
    server.set("outside the handler (HTTP, client)", total - (server.get("total") ?? 0));
    server.delete("total");
    server.set("end to end", total);
    samples.push(server);
  }
  const names = [...new Set(samples.flatMap((m) => [...m.keys()]))];
  const p = (xs: number[], q: number) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return (
      sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1))] ??
      0
    );
  };
  const whole = p(
    samples.map((m) => m.get("end to end") ?? 0),
    50,
  );
  const table: Record<string, unknown> = {};
  for (const name of names) {
    const xs = samples.map((m) => m.get(name) ?? 0);
    const [p50, p99] = [p(xs, 50), p(xs, 99)];
    table[name] = { p50: +p50.toFixed(2), p99: +p99.toFixed(2) };
    r.rows.push([
      `echo phase: ${name}`,
      `p50 ${p50.toFixed(2)} / p99 ${p99.toFixed(2)} ms`,
      "",
      name === "end to end" ? `${n} calls` : `${Math.round((100 * p50) / whole)}% of p50`,
    ]);
  }
  const misses = samples.filter((m) => m.has("create")).length;
  r.rows.push(["echo phase: pool misses (cold starts)", `${misses} of ${n}`, "", ""]);
  // The executions issue's bound: recording every job (its record, its end)
  // may cost an echo at most a tenth of its time, measured in the same calls.
  const store = p(
    samples.map((m) => m.get("store") ?? 0),
    50,
  );
  r.targets.push({
    target: "the state store's share of echo p50 <= 10%",
    measured: `${store.toFixed(2)} of ${whole.toFixed(2)} ms (${((100 * store) / whole).toFixed(1)}%)`,
    met: store <= whole / 10,
  });
  r.results["echoPhases"] = { calls: n, poolMisses: misses, phases: table };
}

/**
 * Throughput of echo hi at concurrency 1, 4, 16 against `docker run --rm`,
 * each level sustained (bench/throughput.ts: BENCH_TP_SECONDS, its clock
 * stopped once its jobs' removals and refills are done), then the engine's own
 * loop driven as airlock drives it, the true ratio, and what bounds both.
 */
async function throughputGroup(gw: Gateway, r: Report) {
  const tp: Record<string, unknown> = {};
  // The earlier ceiling (a bounded burst of create/start/wait/remove), kept to compare runs.
  const ceiling = await throughput(THROUGHPUT_JOBS, 16, engineCycle);
  const echo = () =>
    gw.post("/v1/exec", { profile: "shell", command: ["echo", "hi"] }).then((res) => res.json());
  let c16: Sustained | undefined;
  for (const c of [1, 4, 16]) {
    const air = await sustained(c, echo, gatewaySettled(gw));
    const base = await sustained(c, dockerRunEcho, baselineSettled);
    if (c === 16) c16 = air;
    tp[`c${c}`] = {
      airlock: air.rate,
      baseline: base.rate,
      detail: { airlock: air, baseline: base },
    };
    r.rows.push([
      `throughput c=${c} (jobs/s)`,
      `${air.rate} (${air.jobs} jobs in ${TP_SECONDS} s, +${air.settleMs} ms to settle)`,
      `${base.rate} (+${base.settleMs} ms to settle)`,
      `${(air.rate / base.rate).toFixed(2)}x`,
    ]);
  }
  const engine = await sustained(16, engineAsAirlock, async () => {});
  tp["engineCeilingC16"] = +ceiling.toFixed(2);
  tp["engineAsAirlockC16"] = engine;
  r.rows.push([
    "engine ceiling c=16 (jobs/s)",
    "",
    ceiling.toFixed(2),
    `airlock c16 = ${((c16?.rate ?? 0) / ceiling).toFixed(2)}x`,
  ]);
  r.rows.push([
    "engine loop as airlock drives it, c=16",
    "",
    `${engine.rate} (create, attach, start, remove, volume)`,
    `airlock c16 = ${((c16?.rate ?? 0) / engine.rate).toFixed(2)}x (the true ratio)`,
  ]);
  r.rows.push([
    "what bounds it: dockerd+containerd CPU/job",
    `${c16?.engineCpuMsPerJob ?? "?"} ms`,
    `${engine.engineCpuMsPerJob} ms (engine loop)`,
    "each job is one container lifecycle either way",
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

/** Gateway RSS with 10 and then 100 concurrent SSE streams (10 MB each), each on a gateway of its own. */
async function streamsGroup(r: Report) {
  const curve: Record<number, unknown> = {};
  for (const n of [10, 100]) {
    const rss = await measureStreamingRss(n, 10_000_000);
    curve[n] = rss;
    r.rows.push([
      `gateway RSS, ${n} x 10 MB SSE at once`,
      `peak ${rss.peakMb} MB (idle ${rss.startMb} MB)`,
      "",
      rss.peakMb < 150 ? "under 150 MB" : "OVER 150 MB",
    ]);
    if (n === 100) {
      r.targets.push({
        target: "100 concurrent SSE streams: gateway RSS < 150 MB",
        measured: `${rss.peakMb} MB`,
        met: rss.peakMb < 150,
      });
    }
  }
  r.results["streams"] = curve;
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
  const inProcess: Group[] = ["latency", "phases", "throughput", "diff", "checkpoints", "store"];
  if (inProcess.some(wants)) await gatewayGroups(r);
  if (wants("gvisor")) await gvisorGroup(r);
  if (wants("restart")) await restartGroup(r);
  if (wants("curves")) await curvesGroup(r);
  if (wants("rss")) await rssGroup(r);
  if (wants("streams")) await streamsGroup(r);
  if (wants("import")) await importGroup(r);
  if (wants("egress")) await egressPhase(r.results, r.rows, r.targets);
  if (wants("languages")) await languagesGroup(r);
  if (wants("replicas")) {
    await replicasPhase(r.results, r.rows, { rounds: ROUNDS, jobs: THROUGHPUT_JOBS });
  }
  report(r);
}

/** Per language, hello world compiled and run through airlock against docker run --rm (bench/languages.ts). */
async function languagesGroup(r: Report) {
  const gw = await startGateway({ concurrency: 4 });
  try {
    await languagePhase(gw.post, profiles, r.results, r.rows);
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

async function gatewayGroups(r: Report) {
  if (wants("latency") || wants("phases")) {
    // What a caller sees: the gateway in its own process, as deployed.
    const main = await startProcessGateway();
    try {
      if (wants("latency")) await latencyGroup(main, r);
      if (wants("phases")) await phasesGroup(main, r);
    } finally {
      await main.close();
    }
  }
  if (!["throughput", "diff", "checkpoints", "store"].some((g) => wants(g as Group))) return;
  const gw = await startGateway({ concurrency: 16 });
  try {
    if (wants("throughput")) await throughputGroup(gw, r);
    if (wants("diff")) await diffGroup(gw, r);
    // bench/checkpoints.ts: checkpoint, restore and fork beside cp -a; a restore one step back.
    if (wants("checkpoints")) await checkpointPhase(gw, r.results, r.rows, r.targets);
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
