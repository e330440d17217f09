// The chaos engine restarts (SIGTERM, a few seconds down, started again on the
// same data root) under a steady load of one-shot and workspace jobs. Every
// answer is a documented 200, 429 or 503 — never a 500, a cut connection or a
// hung request; the gateway, never restarted, runs jobs again within a bounded
// time; and within a minute nothing labelled airlock is left but what the
// warm pool keeps parked. The engine is the chaos project's own (engine.ts).
import { afterAll, beforeAll, expect, it } from "vitest";
import type { MainProcess } from "../support/main-process.ts";
import { restartEngine } from "./engine.ts";
import {
  airlockObjects,
  call,
  newWorkspace,
  spawnChaosMain,
  undocumented,
  until,
} from "./gateway.ts";

const CLIENTS = 4;
/** Bounds on the load, whatever happens: requests per client, and time. */
const MAX_REQUESTS = 150;
const MAX_LOAD_MS = 90_000;
/** A request that has no answer by then is hung. */
const HUNG_MS = 45_000;
const DOWN_MS = 3000;
const RECOVERY_MS = 30_000;

let gw: MainProcess;
const workspaces: string[] = [];

beforeAll(async () => {
  gw = await spawnChaosMain({
    env: {
      AIRLOCK_CONCURRENCY: "2",
      AIRLOCK_MAX_QUEUE: "3",
      // Orphans of the restart are past their deadline soon, and reaped soon after.
      AIRLOCK_ORPHAN_GRACE_MS: "5000",
      AIRLOCK_REAP_INTERVAL_MS: "2000",
    },
  });
  for (let i = 0; i < CLIENTS; i++) workspaces.push(await newWorkspace(gw));
});
afterAll(async () => {
  for (const id of workspaces) await call(gw, "DELETE", `/v1/workspaces/${id}`).catch(() => {});
  gw.child.kill("SIGTERM");
  await gw.exited;
  // SIGTERM removes what the instance owns, dead parked containers included.
  expect(await gw.leftovers()).toEqual({ containers: [], volumes: [] });
  await gw.kill();
});

interface Answer {
  at: number;
  status: number | "hung" | "broken";
  problem?: string | undefined;
}

/** One client: one-shot and workspace jobs in turn, until told to stop or out of budget. */
async function client(n: number, stop: { now: boolean }, answers: Answer[]): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < MAX_REQUESTS && !stop.now && Date.now() - started < MAX_LOAD_MS; i++) {
    const [path, body] =
      i % 2 === 0
        ? ["/v1/exec", { profile: "shell", command: `echo ${n}-${i}`, limits: { timeoutMs: 5000 } }]
        : [
            `/v1/workspaces/${workspaces[n]}/exec`,
            { command: `echo ${i} >> log.txt; tail -n 1 log.txt`, limits: { timeoutMs: 5000 } },
          ];
    const at = Date.now();
    try {
      const res = await call(gw, "POST", path, body, { timeoutMs: HUNG_MS });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Judged below as an undocumented body.
      }
      answers.push({
        at,
        status: res.status,
        problem: undocumented(res.status, parsed, [200, 429, 503]),
      });
      // Backs off as a client told to wait would, a little (Retry-After is whole seconds).
      if (res.status !== 200) await new Promise((r) => setTimeout(r, 200));
    } catch (err) {
      const hung = (err as Error).name === "TimeoutError";
      answers.push({ at, status: hung ? "hung" : "broken", problem: String(err) });
    }
  }
}

/** True once a one-shot job runs to `ok` again. */
async function jobSucceeds(): Promise<boolean> {
  const res = await call(gw, "POST", "/v1/exec", { profile: "shell", command: ["echo", "back"] });
  const body = (await res.json()) as { status?: string; stdout?: string };
  return res.status === 200 && body.status === "ok" && body.stdout === "back\n";
}

/** When the load stopped: the minute for leftovers counts from there. */
let loadEnded = 0;

it("answers only documented statuses through an engine restart and recovers by itself", async () => {
  const stop = { now: false };
  const answers: Answer[] = [];
  const load = Promise.all(workspaces.map((_, n) => client(n, stop, answers)));

  await new Promise((r) => setTimeout(r, 3000));
  const down = Date.now();
  await restartEngine(DOWN_MS);
  const up = Date.now();
  await until("a job to succeed again", jobSucceeds, (ok) => ok, RECOVERY_MS);
  const recovered = Date.now();
  // Some load on the recovered engine too, then stop.
  await new Promise((r) => setTimeout(r, 3000));
  stop.now = true;
  await load;
  loadEnded = Date.now();

  // A workspace job whose container the stopping engine killed before its
  // listing answered 500 "the sandbox ended before it listed /workspace" in
  // about every other run, before job-run.ts asked the engine: none may now.
  expect(answers.filter((a) => a.problem !== undefined)).toEqual([]);
  const count = (s: Answer["status"], from = 0, to = Number.POSITIVE_INFINITY) =>
    answers.filter((a) => a.status === s && a.at >= from && a.at < to).length;
  // The outage was seen (else this test proved nothing), and jobs ran before and after it.
  expect(count(503, down, up)).toBeGreaterThan(0);
  expect(count(200, 0, down)).toBeGreaterThan(0);
  expect(count(200, recovered)).toBeGreaterThan(0);
});

type Objects = Awaited<ReturnType<typeof airlockObjects>>;
const isParking = (job: string) => job.startsWith("park-");

it("removes every job's container and volume the restart orphaned within a minute", async () => {
  expect(loadEnded).toBeGreaterThan(0);
  const jobsGone = (o: Objects) =>
    o.containers.every((c) => isParking(c.job)) &&
    o.volumes.every((v) => isParking(v.replace(/^airlock-/, "")));
  await until("job containers and volumes to go", airlockObjects, jobsGone, 60_000);
});

// The warm pool drops parked containers the moment the engine kills them, and
// retries the removals the stopping engine refused (a park it failed half-way
// by the container's name), so what the restart killed goes within a tick of
// the engine's return — not at AIRLOCK_POOL_MAX_PARK_MS
// (5 min), nor at their deadline (park time + the maximum job time + grace).
it("within a minute leaves nothing labelled airlock but live parked containers", async () => {
  expect(loadEnded).toBeGreaterThan(0);
  const parkedOnly = (o: Objects) => {
    const live = o.containers.filter((c) => isParking(c.job) && c.state === "running");
    const volumes = new Set(live.map((c) => `airlock-${c.job}`));
    return live.length === o.containers.length && o.volumes.every((v) => volumes.has(v));
  };
  const left = Math.max(0, loadEnded + 60_000 - Date.now());
  await until("only live parked containers to be left", airlockObjects, parkedOnly, left);
});
