// The bench's workspace rows: the first exec on a 10,000-file workspace after
// a gateway restart against a warm one (manifests kept in the state store),
// and the costs of create, exec, get, list files and the TTL sweep (its
// periodic full listing reported beside it) with 10, 100 and 1,000 workspaces
// on the engine (the others made as the store makes them: a labelled volume
// each, of other tenants).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LABEL_CREATED,
  LABEL_PROFILE,
  LABEL_TENANT,
  LABEL_TTL,
  LABEL_WORKSPACE,
  volumeOf,
} from "../executor/workspace-labels.ts";
import { RESYNC_MS } from "../executor/workspace-ttl.ts";
import { docker, type Gateway, type Report, startGateway, stats, timed } from "./harness.ts";

const TEN_THOUSAND_FILES =
  "import os\nfor i in range(10000):\n    d = 'd%03d' % (i // 100)\n    os.makedirs(d, exist_ok=True)\n    open('%s/f%05d' % (d, i), 'wb').write(os.urandom(10000))";
const CHANGE_ONE = { command: ["sh", "-c", "echo changed >> d000/f00000"] };

async function makeWorkspace(gw: Gateway, profile = "python"): Promise<string> {
  const res = await gw.post("/v1/workspaces", { profile });
  return ((await res.json()) as { id: string }).id;
}

/** A gateway restart between warm execs on a 10,000-file workspace: the first one after it, against the warm p50. */
export async function restartGroup(r: Report) {
  const dataDir = mkdtempSync(join(tmpdir(), "airlock-bench-restart-"));
  const open = () => startGateway({ concurrency: 4, dataDir, poolMin: 1, settleMs: 1000 });
  let gw = await open();
  let id: string | undefined;
  try {
    id = await makeWorkspace(gw);
    await gw.post(`/v1/workspaces/${id}/exec`, {
      code: TEN_THOUSAND_FILES,
      limits: { timeoutMs: 120_000 },
    });
    const phases: string[] = [];
    const exec = (g: Gateway) =>
      timed(async () => {
        const res = await g.post(`/v1/workspaces/${id}/exec`, CHANGE_ONE);
        phases.push(res.headers.get("server-timing") ?? "");
        await res.json();
      });
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) warm.push(await exec(gw));
    await gw.close();
    gw = await open();
    const first = Math.round(await exec(gw));
    const w = stats(warm).p50;
    const ratio = first / w;
    r.results["restart"] = {
      warmP50: w,
      firstAfterRestartMs: first,
      ratio: +ratio.toFixed(2),
      serverTiming: { warm: phases.slice(0, -1), first: phases.at(-1) },
    };
    r.rows.push([
      "first exec after a restart, 10k files",
      `${first} ms (manifest from the store)`,
      `warm p50 ${w} ms`,
      `${ratio.toFixed(2)}x the warm one`,
    ]);
    r.targets.push({
      target: "first exec after a restart <= 1.5x a warm one (10k files)",
      measured: `${ratio.toFixed(2)}x`,
      met: ratio <= 1.5,
    });
  } finally {
    if (id !== undefined) await gw.remove(`/v1/workspaces/${id}`).catch(() => undefined);
    await gw.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const CURVE = [10, 100, 1000];
/** The pause before each timed operation of the curves. */
const SETTLE_MS = 200;
const BACKGROUND_TENANTS = 10;

/** n workspaces of other tenants, made as the store makes them (a labelled volume each). */
async function background(n: number, made: string[]) {
  const now = Date.now();
  while (made.length < n) {
    const batch = Array.from({ length: Math.min(20, n - made.length) }, async () => {
      const id = `ws_${randomBytes(13).toString("hex").slice(0, 20)}`;
      await docker.createVolume({
        Name: volumeOf(id),
        Labels: {
          airlock: "bench-curve",
          [LABEL_WORKSPACE]: id,
          [LABEL_TENANT]: `bench-bg-${made.length % BACKGROUND_TENANTS}`,
          [LABEL_PROFILE]: "shell",
          [LABEL_CREATED]: String(now),
          [LABEL_TTL]: String(3600_000),
        },
      });
      return volumeOf(id);
    });
    made.push(...(await Promise.all(batch)));
  }
}

/** Each operation's p50 with `n` workspaces on the engine. */
async function costsAt(gw: Gateway, rounds: number) {
  const create: number[] = [];
  const exec: number[] = [];
  const get: number[] = [];
  const list: number[] = [];
  const sweep: number[] = [];
  const listing: number[] = [];
  // Each on an engine done with the one before: an exec's container is
  // still being removed when it answers, and a get timed then waits on it.
  const alone = async (samples: number[], op: () => Promise<unknown>) => {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    samples.push(await timed(op));
  };
  for (let i = 0; i < rounds; i++) {
    let id = "";
    await alone(create, async () => (id = await makeWorkspace(gw, "shell")));
    await alone(exec, () =>
      gw.post(`/v1/workspaces/${id}/exec`, { command: ["true"] }).then((res) => res.json()),
    );
    await alone(get, () => gw.get(`/v1/workspaces/${id}`).then((res) => res.json()));
    await alone(list, () => gw.get(`/v1/workspaces/${id}/files`).then((res) => res.json()));
    await alone(sweep, () => gw.core.store.collectExpired());
    await alone(listing, () => gw.core.store.collectExpired(true));
    await gw.remove(`/v1/workspaces/${id}`);
  }
  return {
    create: stats(create).p50,
    exec: stats(exec).p50,
    get: stats(get).p50,
    list: stats(list).p50,
    // A sweep with nothing due takes microseconds: kept to them, not rounded to 0.
    sweep: +(sweep.sort((a, b) => a - b)[sweep.length >> 1] ?? 0).toFixed(3),
    listing: stats(listing).p50,
  };
}

/** The costs with 10, 100 and 1,000 workspaces on the engine; the target is 1,000 at most 1.2x 10. */
export async function curvesGroup(r: Report) {
  const gw = await startGateway({ concurrency: 4, poolMin: 1, settleMs: 1000 });
  const made: string[] = [];
  const curve: Record<number, Awaited<ReturnType<typeof costsAt>>> = {};
  try {
    await costsAt(gw, 1); // warm-up: the first level is not to carry the first calls' costs
    for (const n of CURVE) {
      await background(n, made);
      curve[n] = await costsAt(gw, Number(process.env["BENCH_CURVE_ROUNDS"] ?? 11));
    }
  } finally {
    await gw.close();
    for (let i = 0; i < made.length; i += 20) {
      await Promise.all(made.slice(i, i + 20).map((v) => docker.getVolume(v).remove()));
    }
  }
  r.results["curves"] = curve;
  const first = curve[CURVE[0] as number];
  const last = curve[CURVE.at(-1) as number];
  if (first === undefined || last === undefined) return;
  for (const op of ["create", "exec", "get", "list", "sweep"] as const) {
    // Both floored at the clock's millisecond: below it, a ratio is noise.
    const ratio = Math.max(1, last[op]) / Math.max(1, first[op]);
    r.rows.push([
      `workspace ${op}, with 10/100/1000 on the engine`,
      `${CURVE.map((n) => `${curve[n]?.[op]}`).join(" / ")} ms`,
      "",
      `${ratio.toFixed(2)}x at 1000 vs 10`,
    ]);
    r.targets.push({
      target: `workspace ${op} with 1000 workspaces <= 1.2x with 10`,
      measured: `${ratio.toFixed(2)}x`,
      met: ratio <= 1.2,
    });
  }
  // Not a target: the sweep lists every workspace on the engine once per
  // RESYNC_MS only, to learn of those other gateways made (workspace-ttl.ts).
  r.rows.push([
    `TTL sweep's full listing, every ${RESYNC_MS / 60_000} min`,
    `${CURVE.map((n) => `${curve[n]?.listing}`).join(" / ")} ms`,
    "",
    `${(last.listing / Math.max(1, first.listing)).toFixed(2)}x at 1000 vs 10`,
  ]);
}
