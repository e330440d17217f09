// The checkpoint rows of `npm run bench` (BENCH_ONLY=checkpoints runs them
// alone): on a 10,000-file, 100 MB workspace, checkpoint, full restore and
// fork, each paired with a plain `cp -a` of the same tree between two volumes
// on the same engine, in the same kind of container as airlock's own copy
// (the profile's image, user, limits and hardening: executor/container-spec.ts);
// and a restore one step back (one file changed) paired with an empty
// workspace exec. This disk's speed swings (other tenants, and the discards
// that deletions queue), so every timed side starts after a `sync` and a wait
// for the disk to go quiet, the two sides of a pair take turns going first,
// and each measure is the median of its pairs' own ratios, reported with
// both sides' figures. All on loopback and the local engine; every step is
// bounded in time.
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { PassThrough } from "node:stream";
import Dockerode from "dockerode";
import { parseServerTiming } from "../core/timing.ts";
import { containerSpec } from "../executor/container-spec.ts";
import { median, profiles } from "./harness.ts";

/** Pairs per measure (at least 3): five by default, so that a side slowed tenfold by a neighbour twice still leaves the median alone. */
const REPS = Math.max(3, Number(process.env["BENCH_CHECKPOINT_ROUNDS"] ?? 5));
/** No timed side may take longer (a side that does fails the group, rather than hanging it). */
const SIDE_TIMEOUT_MS = 180_000;
/** The longest wait for the disk to go quiet before a timed side. */
const SETTLE_MAX_MS = 2_000;
const PROFILE = "python";
const docker = new Dockerode();

export interface BenchGateway {
  url: string;
  post: (path: string, body: unknown) => Promise<Response>;
}

type Targets = { target: string; measured: string; met: boolean }[];

function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

function exec(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: "ignore" });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`)),
    );
  });
}

/** /sys/dev/block/M:m/stat of the device under the engine's data, when this machine shows it. */
async function diskStatFile(): Promise<string | undefined> {
  try {
    const root = ((await docker.info()) as { DockerRootDir?: string }).DockerRootDir;
    const dev = statSync(root ?? "/var/lib/docker", { bigint: true }).dev;
    // glibc's major()/minor() of a dev_t.
    const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
    const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
    const file = `/sys/dev/block/${major}:${minor}/stat`;
    readFileSync(file);
    return file;
  } catch {
    return undefined;
  }
}

/** [in-flight requests, ms the device has been busy] */
function diskBusy(file: string): [number, number] {
  const f = readFileSync(file, "utf8").trim().split(/\s+/).map(Number);
  return [f[8] ?? 0, f[9] ?? 0];
}

/**
 * `sync`, then waits (at most SETTLE_MAX_MS) until the engine's disk has been
 * busy less than a fifth of a 250 ms window: what earlier sides wrote and
 * deleted (ext4's discards go out as the journal commits) is off the disk.
 */
async function settle(statFile: string | undefined): Promise<number> {
  const t0 = performance.now();
  await within(SETTLE_MAX_MS * 4, "sync", exec("sync", []));
  if (statFile === undefined) {
    await new Promise((r) => setTimeout(r, 1000));
    return performance.now() - t0;
  }
  const end = performance.now() + SETTLE_MAX_MS;
  let [, busy] = diskBusy(statFile);
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    const [inFlight, now] = diskBusy(statFile);
    const quiet = inFlight === 0 && now - busy < 50;
    busy = now;
    if (quiet) break;
  }
  return performance.now() - t0;
}

/**
 * `cp -a` of the workspace's volume into a new volume, in a container made as
 * airlock makes its copy's (containerSpec with the profile's longest limits;
 * the new volume at /workspace, so it takes the image's owner, the tree
 * read-only beside it) `dst`: [wall ms from create to the container's
 * removal, as \`docker run --rm\` has it, the copy's own ms].
 */
async function plainCopy(workspaceVolume: string, dst: string): Promise<[number, number]> {
  const profile = profiles.get(PROFILE);
  if (profile === undefined) throw new Error(`no profile ${PROFILE}`);
  const jobId = `bench-cp-${process.pid}-${Date.now()}`;
  const spec = containerSpec(profile, profile.limits.max, {
    instanceId: `bench-cp-${process.pid}`,
    jobId,
    volume: dst,
    deadline: Date.now() + 10 * 60_000,
    mounts: [{ volume: workspaceVolume, target: "/airlock/src", readOnly: true }],
  });
  const script =
    "t0=$(date +%s%N); cp -a /airlock/src/. /workspace/ || exit 1; echo $(( ($(date +%s%N) - t0) / 1000000 ))";
  const t0 = performance.now();
  const c = await docker.createContainer({
    ...spec,
    Cmd: ["/bin/sh", "-c", script],
    AttachStdin: false,
    OpenStdin: false,
    StdinOnce: false,
    Labels: { ...spec.Labels, "airlock.bench": "cp" },
  });
  try {
    const stream = await c.attach({ stream: true, stdout: true, stderr: true });
    const out = new PassThrough();
    let text = "";
    out.on("data", (d: Buffer) => {
      text += d.toString();
    });
    docker.modem.demuxStream(stream, out, out);
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    if (StatusCode !== 0) throw new Error(`cp -a exited ${StatusCode}: ${text}`);
    // Removed as `docker run --rm` would remove it; its volume (the copy) stays for the caller.
    await c.remove({ force: true });
    return [performance.now() - t0, Number(text.trim().split("\n").pop())];
  } finally {
    await c.remove({ force: true }).catch(() => undefined);
  }
}

/** One measure's pairs: airlock's side, the baseline's, and airlock's Server-Timing phases. */
interface Measure {
  airlock: number[];
  base: number[];
  /** The baseline copy's own time inside its container (cp -a pairs only). */
  baseOnly: number[];
  phases: Map<string, number>[];
}

const measure = (): Measure => ({ airlock: [], base: [], baseOnly: [], phases: [] });

/** What a timed side hands back: the answer's body and Server-Timing, or a copy's own time. */
interface Outcome {
  body?: unknown;
  timing?: string | null;
  copyMs?: number;
  /** The side's own time, when it is not all of the call's (a copy's volume is removed after its clock stops). */
  wallMs?: number;
}

interface Side {
  /** Untimed, just before the side's settle (emptying the workspace a restore fills). */
  prepare?: () => Promise<unknown>;
  run: () => Promise<Outcome>;
  /** Untimed, after it (removing what it made). */
  cleanup?: (outcome: Outcome) => Promise<unknown>;
}

/** A call to the gateway, its whole answer read. */
async function call(res: Promise<Response>): Promise<Outcome> {
  const r = await res;
  return { body: await r.json(), timing: r.headers.get("server-timing") };
}

/**
 * What the rounds made, removed only after the last timed side: on this disk
 * a deletion of 10,000 files slows what follows it for seconds after a sync
 * (the virtual disk's discards), which would fall on whichever side came next.
 */
class Leftovers {
  readonly copies: string[] = [];
  readonly removals: (() => Promise<unknown>)[] = [];

  /** A new volume name for a baseline copy, removed at the end unless taken first. */
  copyVolume(): string {
    const name = `airlock-bench-cp-${process.pid}-${this.copies.length}-${Date.now()}`;
    this.copies.push(name);
    return name;
  }

  /** Removes one baseline copy now (a deletion before a side, as the restore's side has). */
  async removeOneCopy(): Promise<void> {
    const name = this.copies.shift();
    if (name !== undefined) await docker.getVolume(name).remove();
  }

  async removeAll(): Promise<void> {
    for (const remove of this.removals) await remove().catch(() => undefined);
    for (const name of this.copies) {
      await docker
        .getVolume(name)
        .remove()
        .catch(() => undefined);
    }
  }
}

const copySide = (source: string, left: Leftovers): Side => ({
  run: async () => {
    const [wallMs, copyMs] = await plainCopy(source, left.copyVolume());
    return { wallMs, copyMs };
  },
});

/** Times one pair, the side going first alternating with `turn`, each after a settle. */
async function pair(
  name: string,
  turn: number,
  m: Measure,
  airlock: Side,
  base: Side,
  statFile: string | undefined,
): Promise<Outcome> {
  const sides = turn % 2 === 0 ? [base, airlock] : [airlock, base];
  let mine: Outcome = {};
  for (const side of sides) {
    await side.prepare?.();
    await settle(statFile);
    const t0 = performance.now();
    const got = await within(SIDE_TIMEOUT_MS, name, side.run());
    const ms = got.wallMs ?? performance.now() - t0;
    if (side === airlock) {
      mine = got;
      m.airlock.push(ms);
      m.phases.push(parseServerTiming(got.timing ?? null));
    } else {
      m.base.push(ms);
      if (got.copyMs !== undefined) m.baseOnly.push(got.copyMs);
    }
    await side.cleanup?.(got);
  }
  return mine;
}

type CopyMeasures = Record<"take" | "restore" | "fork", Measure>;

/**
 * Each round: checkpoint, fork and full restore, each beside its own cp -a.
 * Nothing is deleted between timed sides but the restore pair's: airlock's
 * side empties the workspace first, and the copy's side, for the same start,
 * deletes one of the round's earlier copies (as many files and bytes).
 */
async function copyRounds(
  gw: BenchGateway,
  big: string,
  ms: CopyMeasures,
  del: (p: string) => Promise<unknown>,
  statFile: string | undefined,
  left: Leftovers,
) {
  const ws = `/v1/workspaces/${big}`;
  const copy = copySide(`airlock-ws-${big}`, left);
  for (let i = 0; i < REPS; i++) {
    const taken = await pair(
      "checkpoint",
      i,
      ms.take,
      { run: () => call(gw.post(`${ws}/checkpoints`, { label: `bench ${i}` })) },
      copy,
      statFile,
    );
    const cp = (taken.body as { id: string }).id;
    left.removals.push(() => del(`${ws}/checkpoints/${cp}`));
    const fork: Side = {
      run: () => call(gw.post(`${ws}/fork`, { checkpoint: cp })),
      cleanup: async ({ body }) => {
        for (const w of (body as { workspaces: { id: string }[] }).workspaces) {
          left.removals.push(() => del(`/v1/workspaces/${w.id}`));
        }
      },
    };
    // Its turns the other way round from the checkpoint's, so no side always follows the same one.
    await pair("fork", i + 1, ms.fork, fork, copy, statFile);
    const restore: Side = {
      // A full restore: every file has to come back.
      prepare: () =>
        call(
          gw.post(`${ws}/exec`, {
            command: ["sh", "-c", "rm -rf /workspace/d*"],
            limits: { timeoutMs: 120_000 },
          }),
        ),
      run: () => call(gw.post(`${ws}/restore`, { checkpoint: cp })),
    };
    const copyAfterDeletion: Side = { ...copy, prepare: () => left.removeOneCopy() };
    await pair("restore", i, ms.restore, restore, copyAfterDeletion, statFile);
  }
}

/** One step back: one file changed since the checkpoint, beside an empty workspace's exec. */
async function stepBackRounds(
  gw: BenchGateway,
  big: string,
  empty: string,
  m: Measure,
  statFile: string | undefined,
) {
  const ws = `/v1/workspaces/${big}`;
  const cp = ((await call(gw.post(`${ws}/checkpoints`, {}))).body as { id: string }).id;
  const nothing: Side = {
    run: () => call(gw.post(`/v1/workspaces/${empty}/exec`, { command: ["true"] })),
  };
  const back: Side = {
    prepare: () =>
      call(gw.post(`${ws}/exec`, { command: ["sh", "-c", "echo changed >> d000/f00000"] })),
    run: () => call(gw.post(`${ws}/restore`, { checkpoint: cp })),
  };
  for (let i = 0; i < REPS + 2; i++)
    await pair("restore one step back", i, m, back, nothing, statFile);
}

/** Per-pair ratios, airlock over baseline. */
const ratios = (m: Measure) => m.airlock.map((a, i) => a / (m.base[i] ?? Number.NaN));

/** The median of each Server-Timing phase over the pairs, in ms. */
function phaseMedians(m: Measure): Record<string, number> {
  const names = new Set(m.phases.flatMap((p) => [...p.keys()]));
  return Object.fromEntries(
    [...names].map((n) => [n, Math.round(median(m.phases.map((p) => p.get(n) ?? 0)))]),
  );
}

function summary(m: Measure) {
  const each = ratios(m);
  return {
    airlockMs: Math.round(median(m.airlock)),
    baseMs: Math.round(median(m.base)),
    ...(m.baseOnly.length > 0 ? { baseCopyOnlyMs: Math.round(median(m.baseOnly)) } : {}),
    ratio: +median(each).toFixed(2),
    airlockEach: m.airlock.map(Math.round),
    baseEach: m.base.map(Math.round),
    ratioEach: each.map((r) => +r.toFixed(2)),
    airlockPhases: phaseMedians(m),
  };
}

function addRows(
  copies: CopyMeasures,
  back: Measure,
  results: Record<string, unknown>,
  rows: string[][],
  targets: Targets,
) {
  const s = {
    checkpoint: summary(copies.take),
    restoreFull: summary(copies.restore),
    fork: summary(copies.fork),
    restoreOneStep: summary(back),
  };
  results["checkpoints"] = { pairs: REPS, ...s };
  const each = (xs: number[]) => xs.join("/");
  const row = (what: string, x: ReturnType<typeof summary>, base: string, max: number) => {
    rows.push([
      what,
      `p50 ${x.airlockMs} ms (${each(x.airlockEach)})`,
      `${base} p50 ${x.baseMs} ms (${each(x.baseEach)})${x.baseCopyOnlyMs === undefined ? "" : `, copy alone ${x.baseCopyOnlyMs} ms`}`,
      `${x.ratio.toFixed(2)}x, median of ${each(x.ratioEach)} (target <= ${max}x)`,
    ]);
    targets.push({
      target: `${what} <= ${max}x`,
      measured: `${x.ratio.toFixed(2)}x`,
      met: x.ratio <= max,
    });
  };
  row("checkpoint / cp -a, 10k files / 100 MB", s.checkpoint, "cp -a", 1.5);
  row("restore (all files) / cp -a", s.restoreFull, "cp -a", 1.5);
  row("fork from checkpoint / cp -a", s.fork, "cp -a", 1.5);
  row("restore one step back / empty exec", s.restoreOneStep, "empty exec", 2);
}

export async function checkpointPhase(
  gw: BenchGateway,
  results: Record<string, unknown>,
  rows: string[][],
  targets: Targets = [],
) {
  const auth = { authorization: "Bearer bench-key-0123456789abcdef" };
  // A side that timed out can still hold the workspace (409 until its job's own limit ends it):
  // waited out, so the bench leaves no workspace or checkpoint behind.
  const del = async (path: string) => {
    for (const until = Date.now() + 2 * SIDE_TIMEOUT_MS; ; ) {
      const res = await fetch(`${gw.url}${path}`, { method: "DELETE", headers: auth });
      if (res.status !== 409 || Date.now() > until) return res;
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  const mk = async () =>
    ((await call(gw.post("/v1/workspaces", { profile: PROFILE }))).body as { id: string }).id;
  const statFile = await diskStatFile();
  const left = new Leftovers();
  const big = await mk();
  const empty = await mk();
  try {
    await call(
      gw.post(`/v1/workspaces/${big}/exec`, {
        code: "import os\nfor i in range(10000):\n    d = 'd%03d' % (i // 100)\n    os.makedirs(d, exist_ok=True)\n    open('%s/f%05d' % (d, i), 'wb').write(os.urandom(10000))",
        limits: { timeoutMs: 120_000 },
      }),
    );
    // Untimed: the tree's pages in memory (the exec that wrote it had a small memory limit)
    // and the engine warm, so that no first side pays for them.
    await plainCopy(`airlock-ws-${big}`, left.copyVolume());
    const copies = { take: measure(), restore: measure(), fork: measure() };
    const back = measure();
    await copyRounds(gw, big, copies, del, statFile, left);
    await stepBackRounds(gw, big, empty, back, statFile);
    addRows(copies, back, results, rows, targets);
  } finally {
    await left.removeAll();
    for (const id of [big, empty]) await del(`/v1/workspaces/${id}`);
  }
}
