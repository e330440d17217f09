// Profile + limits → container create options. All of the hardening lives in
// this one function so that it can be read, reviewed and tested in one place.
// Nothing here depends on the job's command, env or workdir (those arrive on
// stdin, see launcher.ts), so a container started ahead of demand by the warm
// pool is, by construction, the same container a cold start would make.

import type { JobMount } from "../core/job.ts";
import { WORKSPACE_DIR } from "../core/paths.ts";
import type { Limits, LoadedProfile } from "../core/profile.ts";
import type { ContainerSpec } from "./docker.ts";
import { LAUNCHER_SCRIPT } from "./launcher.ts";

export const LABEL_INSTANCE = "airlock";
export const LABEL_JOB = "airlock.job";
export const LABEL_DEADLINE = "airlock.deadline";

const MB = 1024 * 1024;

export interface SpecContext {
  instanceId: string;
  /** The job's id, or a parked container's own id until a job takes it. */
  jobId: string;
  volume: string;
  /** Epoch ms after which anything left of this job is an orphan. */
  deadline: number;
  /** A job granted a network: its egress holder's namespace (egress-network.ts), the CA mounts, the runtime. */
  egress?: { network: string; mounts: Mount[]; runtime: string } | undefined;
  /** Volumes beside /workspace (a system job's copy between volumes). */
  mounts?: readonly JobMount[] | undefined;
}

type Mount = { Type: "bind" | "volume"; Source: string; Target: string; ReadOnly: true };

export function jobLabels(ctx: SpecContext): Record<string, string> {
  return {
    [LABEL_INSTANCE]: ctx.instanceId,
    [LABEL_JOB]: ctx.jobId,
    [LABEL_DEADLINE]: String(ctx.deadline),
  };
}

export function containerSpec(
  profile: LoadedProfile,
  limits: Limits,
  ctx: SpecContext,
): ContainerSpec {
  const labels = jobLabels(ctx);
  return {
    name: `airlock-${ctx.jobId}`,
    Image: profile.image,
    // The launcher waits for its job on stdin (launcher.ts).
    Cmd: ["/bin/sh", "-c", LAUNCHER_SCRIPT, "airlock"],
    Entrypoint: [],
    Env: Object.entries(profile.env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: WORKSPACE_DIR,
    User: profile.user,
    // In an egress holder's namespace the holder's name is the container's (egress-network.ts).
    ...(ctx.egress === undefined ? { Hostname: "sandbox" } : {}),
    Labels: labels,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: ctx.egress === undefined && profile.network === "none",
    HostConfig: {
      ...limitSettings(limits),
      NetworkMode: ctx.egress?.network ?? profile.network,
      ReadonlyRootfs: true,
      // Docker mounts a tmpfs noexec unless told `exec`: compiled languages run their build from /tmp.
      Tmpfs: {
        "/tmp": `rw,${profile.tmpfs.exec === true ? "exec," : ""}nosuid,nodev,size=${profile.tmpfs.tmpMb}m,mode=1777`,
      },
      ShmSize: profile.tmpfs.shmMb * MB,
      Ulimits: [
        { Name: "nofile", Soft: profile.ulimits.nofile, Hard: profile.ulimits.nofile },
        { Name: "fsize", Soft: profile.ulimits.fsizeMb * MB, Hard: profile.ulimits.fsizeMb * MB },
        { Name: "core", Soft: 0, Hard: 0 },
      ],
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true", `seccomp=${profile.seccompJson}`],
      Init: true,
      Runtime: ctx.egress?.runtime ?? profile.runtime,
      IpcMode: "private",
      // Output is streamed through attach; a logging driver would copy every
      // byte of a 1 GB flood to the engine's disk for nothing.
      LogConfig: { Type: "none", Config: {} },
      Mounts: [
        {
          Type: "volume",
          Source: ctx.volume,
          Target: WORKSPACE_DIR,
          // NoCopy false: a new volume starts with the image's /workspace (its owner and mode).
          VolumeOptions: {
            NoCopy: false,
            Labels: labels,
            DriverConfig: { Name: "local", Options: {} },
          },
        },
        ...(ctx.egress?.mounts ?? []),
        ...(ctx.mounts ?? []).map((m) => ({
          Type: "volume" as const,
          Source: m.volume,
          Target: m.target,
          ReadOnly: m.readOnly,
        })),
      ],
    },
  };
}

/**
 * A created, never started container of the profile's image with a volume at
 * /workspace: the engine's archive API reads and writes the volume through it
 * (workspaces.ts). Though it never runs, it carries a sandbox's hardening,
 * seccomp profile and runtime included, so that behind the socket proxy every
 * container create is held to one rule (deploy/docker-api-rules.ts).
 */
export function fileContainerSpec(profile: LoadedProfile, ctx: SpecContext): ContainerSpec {
  return {
    Image: profile.image,
    Cmd: ["/bin/true"],
    User: profile.user,
    NetworkDisabled: true,
    Labels: jobLabels(ctx),
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true", `seccomp=${profile.seccompJson}`],
      Runtime: profile.runtime,
      LogConfig: { Type: "none", Config: {} },
      Mounts: [{ Type: "volume", Source: ctx.volume, Target: WORKSPACE_DIR }],
    },
  };
}

/** Whether a started container under `runtime` can take other limits (docker update): runsc cannot. */
export function limitsUpdatable(runtime: LoadedProfile["runtime"]): boolean {
  return runtime === "runc";
}

/** Whether two limit sets give the same container (time and output limits are the gateway's own). */
export function sameContainerLimits(a: Limits, b: Limits): boolean {
  return a.memoryMb === b.memoryMb && a.cpus === b.cpus && a.pids === b.pids;
}

/**
 * The workspace meter's container (workspace-meter.ts): the profile's image,
 * hardening, seccomp profile and runtime, the workspace's volume at
 * /workspace, running `argv` (find and awk over /workspace) as the sandbox
 * user, with small limits of its own. It runs beside a job, in a PID namespace
 * of its own, so the job can neither signal it nor see it.
 */
export function meterContainerSpec(
  profile: LoadedProfile,
  ctx: SpecContext,
  argv: string[],
): ContainerSpec {
  return {
    Image: profile.image,
    Cmd: argv,
    Entrypoint: [],
    User: profile.user,
    Labels: jobLabels(ctx),
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: true,
    HostConfig: {
      // The profile's memory and pids (a gVisor sandbox needs room and threads
      // for its own kernel), and a fraction of a CPU.
      ...limitSettings({ ...profile.limits.default, cpus: 0.25 }),
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true", `seccomp=${profile.seccompJson}`],
      Init: true,
      Runtime: profile.runtime,
      LogConfig: { Type: "none", Config: {} },
      Mounts: [{ Type: "volume", Source: ctx.volume, Target: WORKSPACE_DIR }],
    },
  };
}

/** The limits a job may change on a started container (docker update), as the engine names them. */
export function limitSettings(limits: Limits) {
  const memory = limits.memoryMb * MB;
  return {
    Memory: memory,
    // Equal to Memory: no swap, so the memory limit is the real limit.
    MemorySwap: memory,
    NanoCpus: Math.round(limits.cpus * 1e9),
    PidsLimit: limits.pids,
  };
}
