// Honest throughput: each level runs for BENCH_TP_SECONDS (30 s by default),
// and its clock stops only when the background work of its jobs is done too
// (airlock: the removal of every job's container and the pool's refills, seen
// from the engine; the baseline: `docker run --rm`'s removals). The engine's
// own loop is driven as airlock drives it: the same container spec, create →
// attach → start → remove → remove the volume, no needless `wait`. The CPU of
// dockerd and containerd per job says what bounds the figures.

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { containerSpec } from "../executor/container-spec.ts";
import { DockerodeClient } from "../executor/docker.ts";
import { docker, dockerRun, type Gateway, profiles } from "./harness.ts";

export const TP_SECONDS = Number(process.env["BENCH_TP_SECONDS"] ?? 30);
const SETTLE_MAX_MS = 120_000;
const ENGINE_PROCESSES = new Set(["dockerd", "containerd"]);

export interface Sustained {
  /** Jobs per second, from the first job to the end of the background work. */
  rate: number;
  jobs: number;
  /** From the last answer to the end of the background work. */
  settleMs: number;
  /** CPU of dockerd and containerd per job, in ms. */
  engineCpuMsPerJob: number;
}

/** CPU time (ms) of the engine's long-lived processes, from /proc. */
function engineCpuMs(): number {
  const tick = 10; // USER_HZ is 100 on Linux
  let total = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!ENGINE_PROCESSES.has(comm)) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * tick;
    } catch {
      // Gone since the listing.
    }
  }
  return total;
}

/** `concurrency` workers call fn for `seconds`; then `settled` waits for their background work. */
export async function sustained(
  concurrency: number,
  fn: () => Promise<unknown>,
  settled: () => Promise<void>,
  seconds = TP_SECONDS,
): Promise<Sustained> {
  const cpu0 = engineCpuMs();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let jobs = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await fn();
        jobs++;
      }
    }),
  );
  const answered = performance.now();
  await settled();
  const t1 = performance.now();
  return {
    rate: +(jobs / ((t1 - t0) / 1000)).toFixed(2),
    jobs,
    settleMs: Math.round(t1 - answered),
    engineCpuMsPerJob: +((engineCpuMs() - cpu0) / Math.max(1, jobs)).toFixed(1),
  };
}

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + SETTLE_MAX_MS;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what} did not settle in 120 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The gateway's background work is done: only its parked containers (and their volumes) are left, none filling. */
export function gatewaySettled(gw: Gateway): () => Promise<void> {
  return () =>
    until("the gateway's removals and refills", async () => {
      const stats = gw.core.pool?.stats();
      const parked = Object.values(stats?.parked ?? {}).reduce((a, b) => a + b, 0);
      const label = { label: [`airlock=${gw.instanceId}`] };
      const containers = await docker.listContainers({ all: true, filters: label });
      const volumes = (await docker.listVolumes({ filters: label })).Volumes ?? [];
      return (
        (stats?.filling ?? 0) === 0 &&
        gw.core.executor.running === 0 &&
        containers.length === parked &&
        volumes.length === parked
      );
    });
}

/** Every `docker run --rm` of the baseline is gone. */
export async function baselineSettled(): Promise<void> {
  await until("the baseline's removals", async () => {
    const left = await docker.listContainers({
      all: true,
      filters: { label: ["airlock.bench=baseline"] },
    });
    return left.length === 0;
  });
}

const client = new DockerodeClient(docker);
const shell = profiles.get("shell");

/** One job's worth of engine work as airlock asks for it, with no job: create → attach → start → remove, and the volume. */
export async function engineAsAirlock(): Promise<void> {
  if (shell === undefined) throw new Error("no shell profile");
  const jobId = `bench-engine-${randomBytes(6).toString("hex")}`;
  const volume = `airlock-${jobId}`;
  const spec = containerSpec(shell, shell.limits.default, {
    instanceId: `bench-engine-${process.pid}`,
    jobId,
    volume,
    deadline: Date.now() + 600_000,
  });
  const id = await client.create({ ...spec, Cmd: ["/bin/true"] });
  const stream = await client.attach(id);
  try {
    await client.start(id);
  } finally {
    stream.destroy();
    await client.remove(id);
    await client.removeVolume(volume);
  }
}

export const dockerRunEcho = () => dockerRun("shell", ["echo", "hi"]);
