// Start-up hardening checks ("airlock doctor"): what the engine says it
// enforces, then what a real sandbox of each profile actually gets. airlock
// refuses to start when a protection it promises is missing, rather than run
// code with less isolation than SECURITY.md describes.

import { profileJob } from "../core/job.ts";
import type { LoadedProfile } from "../core/profile.ts";
import type { ContainerClient } from "./docker.ts";
import { runSandbox } from "./sandbox.ts";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Docker 20.10 (API 1.41) is the oldest engine checked here: one-shot stats, cgroup v2 support. */
const MIN_API = [1, 41] as const;

interface EngineInfo {
  ServerVersion?: string;
  MemoryLimit?: boolean;
  SwapLimit?: boolean;
  PidsLimit?: boolean;
  CpuCfsQuota?: boolean;
  CgroupVersion?: string;
  SecurityOptions?: string[];
  Runtimes?: Record<string, unknown>;
}

function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

/** The engine's own description of itself (dockerode's `version()` and `info()`). */
export interface EngineFacts {
  version(): Promise<unknown>;
  info(): Promise<unknown>;
}

/** What `docker info` and `docker version` promise, for the profiles in use. */
export async function engineChecks(
  docker: EngineFacts,
  profiles: ReadonlyMap<string, LoadedProfile>,
): Promise<Check[]> {
  const version = (await docker.version()) as { ApiVersion?: string; Version?: string };
  const info = (await docker.info()) as EngineInfo;
  const [major = 0, minor = 0] = (version.ApiVersion ?? "0.0").split(".").map(Number);
  const apiOk = major > MIN_API[0] || (major === MIN_API[0] && minor >= MIN_API[1]);
  const checks = [
    check(
      "engine version",
      apiOk,
      `Docker ${version.Version ?? "?"} (API ${version.ApiVersion ?? "?"}); needs API ${MIN_API.join(".")} or newer`,
    ),
    check(
      "seccomp",
      (info.SecurityOptions ?? []).some((o) => o.includes("name=seccomp")),
      `engine security options: ${(info.SecurityOptions ?? []).join(", ") || "none"}`,
    ),
    check("memory limits", info.MemoryLimit === true, "the kernel enforces cgroup memory limits"),
    check(
      "swap limits",
      info.SwapLimit === true,
      "MemorySwap == Memory needs swap accounting (swapaccount=1)",
    ),
    check("pids limits", info.PidsLimit === true, "the pids cgroup controller bounds fork bombs"),
    check("cpu limits", info.CpuCfsQuota === true, "CFS quota enforces NanoCpus"),
  ];
  const runtimes = new Set(Object.keys(info.Runtimes ?? {}));
  for (const runtime of new Set([...profiles.values()].map((p) => p.runtime))) {
    const users = [...profiles.values()].filter((p) => p.runtime === runtime).map((p) => p.name);
    checks.push(
      check(
        `runtime ${runtime}`,
        runtimes.has(runtime),
        runtimes.has(runtime)
          ? `configured (profiles ${users.join(", ")})`
          : `profiles ${users.join(", ")} name runtime ${runtime}, which the engine does not have (it has ${[...runtimes].join(", ")}); install it or remove those profiles`,
      ),
    );
  }
  return checks;
}

const PROBE = [
  "grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status",
  "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null | head -1 | sed 's/^/MemLimit: /'",
  "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null | head -1 | sed 's/^/PidsMax: /'",
  'echo "Uid: $(id -u)"',
].join("; ");

function field(out: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, "m").exec(out)?.[1];
}

/**
 * Runs one real sandbox per profile, through the same code path as every job,
 * and reads back what it got: under runc, seccomp filtering, no new privileges,
 * no capabilities, the memory and pids limits, a non-root uid. A runsc profile
 * is its own kernel (gVisor reports neither seccomp nor cgroups inside), so only
 * that it runs, unprivileged and without capabilities, is checked there.
 */
/** Probes run at once at start-up: a dozen language profiles need not mean a dozen probes in a row. */
const PROBES_AT_ONCE = 4;

export async function sandboxChecks(
  client: ContainerClient,
  profiles: ReadonlyMap<string, LoadedProfile>,
  instanceId: string,
): Promise<Check[]> {
  const all = [...profiles.values()];
  const checks: Check[] = new Array(all.length);
  let next = 0;
  const worker = async () => {
    while (next < all.length) {
      const i = next++;
      checks[i] = await sandboxCheck(client, all[i] as LoadedProfile, instanceId);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBES_AT_ONCE, all.length) }, worker));
  return checks;
}

/** One profile's probe: a job under its hardening that reports what the kernel says of it. */
async function sandboxCheck(
  client: ContainerClient,
  profile: LoadedProfile,
  instanceId: string,
): Promise<Check> {
  const job = profileJob(profile, "airlock-doctor", ["/bin/sh", "-c", PROBE]);
  let out: string;
  try {
    const result = await runSandbox(
      { client, instanceId, orphanGraceMs: 60_000, warn: () => {} },
      job,
    );
    out = result.stdout;
    if (result.status !== "ok") {
      return check(
        `sandbox ${profile.name}`,
        false,
        `the probe ended ${result.status}: ${result.stderr.trim()}`,
      );
    }
  } catch (err) {
    return check(
      `sandbox ${profile.name}`,
      false,
      `the probe could not run: ${(err as Error).message}`,
    );
  }
  const problems: string[] = [];
  const uid = field(out, "Uid");
  if (uid === undefined || uid === "0") problems.push(`runs as uid ${uid ?? "?"}`);
  if (field(out, "CapEff") !== "0000000000000000")
    problems.push(`CapEff is ${field(out, "CapEff") ?? "?"}`);
  // Under gVisor too: runsc applies the profile's seccomp filter only when the
  // engine registered it with --oci-seccomp, so a missing flag shows up here.
  if (field(out, "Seccomp") !== "2") {
    const hint = profile.runtime === "runsc" ? " (register runsc with --oci-seccomp)" : "";
    problems.push(`Seccomp is ${field(out, "Seccomp") ?? "?"}, not 2 (filtering)${hint}`);
  }
  if (profile.runtime === "runc") {
    if (field(out, "NoNewPrivs") !== "1")
      problems.push(`NoNewPrivs is ${field(out, "NoNewPrivs") ?? "?"}`);
    const mem = Number(field(out, "MemLimit"));
    if (mem !== job.limits.memoryMb * 1024 * 1024)
      problems.push(`memory limit is ${field(out, "MemLimit") ?? "?"}`);
    if (Number(field(out, "PidsMax")) !== job.limits.pids)
      problems.push(`pids limit is ${field(out, "PidsMax") ?? "?"}`);
  }
  return check(
    `sandbox ${profile.name}`,
    problems.length === 0,
    problems.length === 0 ? `hardening in place (${profile.runtime})` : problems.join("; "),
  );
}

export function failures(checks: readonly Check[]): string | undefined {
  const bad = checks.filter((c) => !c.ok);
  if (bad.length === 0) return undefined;
  return `refusing to start: ${bad.map((c) => `${c.name}: ${c.detail}`).join("; ")}`;
}

export function formatChecks(checks: readonly Check[]): string {
  return checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(22)} ${c.detail}`).join("\n");
}
