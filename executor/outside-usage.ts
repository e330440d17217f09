// A job's CPU time and memory peak read from outside its sandbox, for gVisor
// (runsc): its kernel shows the sandbox no cgroup files, so the launcher's
// trailer has none. The host does keep a cgroup for the container, holding
// gVisor's sandbox and gofer processes (the job's own work and gVisor's on its
// behalf). Two ways to it, best first:
// - its files, when this process sees the engine's host's /sys/fs/cgroup (a
//   gateway on that host): read just before the job and after it, so cpuMs is
//   the job's own, as the launcher's is under runc; a read takes microseconds;
// - otherwise the engine's one-shot stats after the job (the same counters,
//   so CPU since the container started: gVisor's start-up, ~130 ms here, is
//   counted). The engine samples on a one-second tick, so this read can take
//   up to a second when another stats call came within the last one.
// Either way the job cannot forge these figures, unlike the launcher's.
import { readFile } from "node:fs/promises";
import type { ContainerClient, Usage } from "./docker.ts";

export const HOST_CGROUP_ROOT = "/sys/fs/cgroup";

export interface OutsideUsage {
  /** Where the figures come from. */
  source: "host-cgroup" | "engine";
  /** CPU since the meter began (the engine: since the container started); the memory peak since it started. */
  read(): Promise<Usage>;
}

interface CgroupFiles {
  /** cgroup v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec). */
  cpu: string;
  memory: string[];
}

/** dockerd's layouts: cgroupfs and systemd drivers, cgroup v1 (cpuacct, or cpu,cpuacct) and v2. */
function layouts(root: string, id: string): CgroupFiles[] {
  const out: CgroupFiles[] = [];
  for (const dir of [`docker/${id}`, `system.slice/docker-${id}.scope`]) {
    const memory = [`${root}/memory/${dir}/memory.max_usage_in_bytes`];
    out.push({ cpu: `${root}/cpuacct/${dir}/cpuacct.usage`, memory });
    out.push({ cpu: `${root}/cpu,cpuacct/${dir}/cpuacct.usage`, memory });
    // v2 has memory.peak from Linux 5.19; before it, the current usage is the best sample.
    out.push({
      cpu: `${root}/${dir}/cpu.stat`,
      memory: [`${root}/${dir}/memory.peak`, `${root}/${dir}/memory.current`],
    });
  }
  return out;
}

/** CPU time in ns from a cpuacct.usage or cpu.stat text; undefined if it has none. */
export function parseCpuNs(path: string, text: string): number | undefined {
  if (path.endsWith("cpuacct.usage")) {
    const ns = Number(text.trim());
    return Number.isSafeInteger(ns) ? ns : undefined;
  }
  const usec = /^usage_usec (\d+)$/m.exec(text)?.[1];
  return usec === undefined ? undefined : Number(usec) * 1000;
}

async function readCpuNs(path: string): Promise<number | undefined> {
  try {
    return parseCpuNs(path, await readFile(path, "utf8"));
  } catch {
    return undefined;
  }
}

async function readPeak(paths: readonly string[]): Promise<number | null> {
  for (const path of paths) {
    try {
      const bytes = Number((await readFile(path, "utf8")).trim());
      if (Number.isSafeInteger(bytes) && bytes > 0) return bytes;
    } catch {
      // Not this layout, or not this kernel: try the next.
    }
  }
  return null;
}

/**
 * Starts measuring container `id` (call it just before the job's code starts).
 * Never fails: where the host's cgroup is out of sight, the engine answers later.
 */
export async function beginOutsideUsage(
  client: ContainerClient,
  id: string,
  root: string = HOST_CGROUP_ROOT,
): Promise<OutsideUsage> {
  // An id names one container on every engine, so a cgroup by that name is this one's.
  for (const files of layouts(root, id)) {
    const before = await readCpuNs(files.cpu);
    if (before === undefined) continue;
    return {
      source: "host-cgroup",
      async read() {
        const after = await readCpuNs(files.cpu);
        return {
          cpuMs: after === undefined ? null : Math.round(Math.max(0, after - before) / 1e6),
          memoryPeakBytes: await readPeak(files.memory),
        };
      },
    };
  }
  return { source: "engine", read: () => client.usage(id) };
}

/**
 * The job's usage, each figure from the first source that has it: the meter
 * outside the sandbox where there is one (the job cannot forge it), then
 * `fallbacks` in order (the launcher's trailer, an earlier sample).
 */
export async function jobUsage(
  outside: OutsideUsage | undefined,
  ...fallbacks: Usage[]
): Promise<Usage> {
  const sources = [...fallbacks];
  if (outside !== undefined) sources.unshift(await outside.read().catch(() => NO_USAGE));
  return {
    cpuMs: sources.find((u) => u.cpuMs !== null)?.cpuMs ?? null,
    memoryPeakBytes: sources.find((u) => u.memoryPeakBytes !== null)?.memoryPeakBytes ?? null,
  };
}

const NO_USAGE: Usage = { cpuMs: null, memoryPeakBytes: null };
