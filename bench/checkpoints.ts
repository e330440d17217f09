// The checkpoint rows of `npm run bench` (BENCH_ONLY=checkpoint runs them
// alone): on a 10,000-file, 100 MB workspace, checkpoint, full restore and
// fork against a plain `cp -a` of the same tree between two volumes on the
// same engine (a `docker run --rm` of the profile's image, and the copy's own
// time inside it), measured side by side in one run; and a restore one step
// back (one file changed) against an empty workspace exec. All on loopback
// and the local engine; every loop is bounded.
import { spawn } from "node:child_process";
import Dockerode from "dockerode";

const ROUNDS = Number(process.env["BENCH_CHECKPOINT_ROUNDS"] ?? 3);
const docker = new Dockerode();

export interface BenchGateway {
  url: string;
  post: (path: string, body: unknown) => Promise<Response>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor((s.length - 1) / 2)] ?? Number.NaN);
};

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const value = await fn();
  return [performance.now() - t0, value];
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`docker ${args[0]} exited ${code}: ${err}`)),
    );
  });
}

/** `cp -a` of the workspace's volume into a new volume, in a container: [wall ms, the copy's own ms]. */
async function plainCopy(workspaceVolume: string): Promise<[number, number]> {
  const dst = `airlock-bench-cp-${process.pid}-${Date.now()}`;
  await run(["volume", "create", "--label", "airlock.bench=cp", dst]);
  try {
    const [wall, out] = await timed(() =>
      run([
        "run",
        "--rm",
        "--label",
        "airlock.bench=cp",
        "--network",
        "none",
        "--log-driver",
        "none",
        "--user",
        "0:0",
        "-v",
        `${workspaceVolume}:/src:ro`,
        "-v",
        `${dst}:/dst`,
        "airlock/python:1",
        "sh",
        "-c",
        "t0=$(date +%s%N); cp -a /src/. /dst/; echo $(( ($(date +%s%N) - t0) / 1000000 ))",
      ]),
    );
    return [wall, Number(out.trim())];
  } finally {
    await docker.getVolume(dst).remove();
  }
}

async function json<T>(res: Promise<Response>): Promise<T> {
  return (await (await res).json()) as T;
}

interface Samples {
  cpWall: number[];
  cpOnly: number[];
  take: number[];
  restore: number[];
  fork: number[];
  stepBack: number[];
  emptyExec: number[];
}

/** Each round: the plain copy, then a checkpoint, a full restore (after emptying) and a fork, side by side. */
async function copyRounds(gw: BenchGateway, big: string, m: Samples, del: (p: string) => unknown) {
  const ws = `/v1/workspaces/${big}`;
  for (let i = 0; i < ROUNDS; i++) {
    const [wall, only] = await plainCopy(`airlock-ws-${big}`);
    m.cpWall.push(wall);
    m.cpOnly.push(only);
    const [take, cp] = await timed(() =>
      json<{ id: string }>(gw.post(`${ws}/checkpoints`, { label: `bench ${i}` })),
    );
    m.take.push(take);
    // A full restore: every file has to come back.
    await gw.post(`${ws}/exec`, {
      command: ["sh", "-c", "rm -rf /workspace/d*"],
      limits: { timeoutMs: 120_000 },
    });
    const [restore] = await timed(() =>
      gw.post(`${ws}/restore`, { checkpoint: cp.id }).then((r) => r.json()),
    );
    m.restore.push(restore);
    const [fork, forked] = await timed(() =>
      json<{ workspaces: { id: string }[] }>(gw.post(`${ws}/fork`, { checkpoint: cp.id })),
    );
    m.fork.push(fork);
    for (const w of forked.workspaces) await del(`/v1/workspaces/${w.id}`);
    await del(`${ws}/checkpoints/${cp.id}`);
  }
}

/** One step back: one file changed since the checkpoint, against an empty exec. */
async function stepBackRounds(gw: BenchGateway, big: string, empty: string, m: Samples) {
  const ws = `/v1/workspaces/${big}`;
  const cp = await json<{ id: string }>(gw.post(`${ws}/checkpoints`, {}));
  for (let i = 0; i < ROUNDS + 2; i++) {
    await gw.post(`${ws}/exec`, { command: ["sh", "-c", "echo changed >> d000/f00000"] });
    const restore = () => gw.post(`${ws}/restore`, { checkpoint: cp.id }).then((r) => r.json());
    m.stepBack.push((await timed(restore))[0]);
    const nothing = () =>
      gw.post(`/v1/workspaces/${empty}/exec`, { command: ["true"] }).then((r) => r.json());
    m.emptyExec.push((await timed(nothing))[0]);
  }
}

type Targets = { target: string; measured: string; met: boolean }[];

function addRows(m: Samples, results: Record<string, unknown>, rows: string[][], targets: Targets) {
  const r = {
    cpAWallMs: median(m.cpWall),
    cpAOnlyMs: median(m.cpOnly),
    checkpointMs: median(m.take),
    restoreFullMs: median(m.restore),
    forkMs: median(m.fork),
    restoreOneStepMs: median(m.stepBack),
    emptyExecMs: median(m.emptyExec),
    rounds: ROUNDS,
    /** checkpoint, restore, fork: each the median of its per-round ratio to the copy. */
    ratios: [] as number[],
  };
  results["checkpoints"] = r;
  const base = `cp -a in docker run ${r.cpAWallMs} ms (copy alone ${r.cpAOnlyMs} ms)`;
  // Each round's own ratio (the copy was timed beside it), then their median:
  // on a shared, loaded engine that drifts less than a ratio of two medians.
  const ratio = (ms: number[]) => {
    const each = ms.map((v, i) => v / (m.cpWall[i] ?? Number.NaN));
    const mid = [...each].sort((a, b) => a - b)[Math.floor((each.length - 1) / 2)] ?? Number.NaN;
    r.ratios.push(+mid.toFixed(2));
    return `${mid.toFixed(2)}x (median of rounds; target <= 1.5x)`;
  };
  const target = (what: string, x: number, max: number) =>
    targets.push({ target: `${what} <= ${max}x`, measured: `${x.toFixed(2)}x`, met: x <= max });
  rows.push(["checkpoint, 10k files / 100 MB", `p50 ${r.checkpointMs} ms`, base, ratio(m.take)]);
  rows.push([
    "restore (all files), 10k / 100 MB",
    `p50 ${r.restoreFullMs} ms`,
    base,
    ratio(m.restore),
  ]);
  rows.push(["fork from checkpoint, 10k / 100 MB", `p50 ${r.forkMs} ms`, base, ratio(m.fork)]);
  rows.push([
    "restore one step back (1 file)",
    `p50 ${r.restoreOneStepMs} ms`,
    `empty workspace exec p50 ${r.emptyExecMs} ms`,
    `${(r.restoreOneStepMs / r.emptyExecMs).toFixed(2)}x (target <= 2x)`,
  ]);
  const [checkpoint, restore, fork] = r.ratios as [number, number, number];
  target("checkpoint / cp -a (10k files, 100 MB)", checkpoint, 1.5);
  target("restore / cp -a", restore, 1.5);
  target("fork / cp -a", fork, 1.5);
  target("restore one step back / empty exec", r.restoreOneStepMs / r.emptyExecMs, 2);
}

export async function checkpointPhase(
  gw: BenchGateway,
  results: Record<string, unknown>,
  rows: string[][],
  targets: Targets = [],
) {
  const auth = { authorization: "Bearer bench-key-0123456789abcdef" };
  const del = (path: string) => fetch(`${gw.url}${path}`, { method: "DELETE", headers: auth });
  const mk = async () =>
    (await json<{ id: string }>(gw.post("/v1/workspaces", { profile: "python" }))).id;
  const big = await mk();
  const empty = await mk();
  try {
    await gw.post(`/v1/workspaces/${big}/exec`, {
      code: "import os\nfor i in range(10000):\n    d = 'd%03d' % (i // 100)\n    os.makedirs(d, exist_ok=True)\n    open('%s/f%05d' % (d, i), 'wb').write(os.urandom(10000))",
      limits: { timeoutMs: 120_000 },
    });
    const m: Samples = {
      cpWall: [],
      cpOnly: [],
      take: [],
      restore: [],
      fork: [],
      stepBack: [],
      emptyExec: [],
    };
    await copyRounds(gw, big, m, del);
    await stepBackRounds(gw, big, empty, m);
    addRows(m, results, rows, targets);
  } finally {
    for (const id of [big, empty]) await del(`/v1/workspaces/${id}`);
  }
}
