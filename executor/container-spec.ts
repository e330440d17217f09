// Job → container create options. All of the hardening lives in this one
// function so that it can be read, reviewed and tested in one place; the
// warm pool (later) must produce exactly the same spec as a cold start.
import type { ContainerSpec } from "./docker.ts";
import type { Job } from "./job.ts";
import { LAUNCHER_SCRIPT } from "./launcher.ts";
import { WORKSPACE_DIR } from "./paths.ts";

export const LABEL_INSTANCE = "airlock";
export const LABEL_JOB = "airlock.job";
export const LABEL_DEADLINE = "airlock.deadline";

const MB = 1024 * 1024;

export interface SpecContext {
  instanceId: string;
  volume: string;
  /** Epoch ms after which anything left of this job is an orphan. */
  deadline: number;
}

export function jobLabels(job: Job, ctx: SpecContext): Record<string, string> {
  return {
    [LABEL_INSTANCE]: ctx.instanceId,
    [LABEL_JOB]: job.id,
    [LABEL_DEADLINE]: String(ctx.deadline),
  };
}

export function containerSpec(job: Job, ctx: SpecContext): ContainerSpec {
  const { profile, limits } = job;
  const memory = limits.memoryMb * MB;
  const labels = jobLabels(job, ctx);
  return {
    name: `airlock-${job.id}`,
    Image: profile.image,
    // The launcher reads a per-job nonce from stdin, runs argv, then reports the
    // cgroup usage after the nonce so the gateway can strip it from stdout.
    Cmd: ["/bin/sh", "-c", LAUNCHER_SCRIPT, "airlock", ...job.argv],
    Entrypoint: [],
    Env: Object.entries(job.env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: job.workdir === "" ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${job.workdir}`,
    User: profile.user,
    Hostname: "sandbox",
    Labels: labels,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    NetworkDisabled: profile.network === "none",
    HostConfig: {
      NetworkMode: profile.network,
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": `rw,nosuid,nodev,size=${profile.tmpfs.tmpMb}m,mode=1777` },
      ShmSize: profile.tmpfs.shmMb * MB,
      Memory: memory,
      // Equal to Memory: no swap, so the memory limit is the real limit.
      MemorySwap: memory,
      NanoCpus: Math.round(limits.cpus * 1e9),
      PidsLimit: limits.pids,
      Ulimits: [
        { Name: "nofile", Soft: profile.ulimits.nofile, Hard: profile.ulimits.nofile },
        { Name: "fsize", Soft: profile.ulimits.fsizeMb * MB, Hard: profile.ulimits.fsizeMb * MB },
        { Name: "core", Soft: 0, Hard: 0 },
      ],
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true", `seccomp=${profile.seccompJson}`],
      Init: true,
      Runtime: profile.runtime,
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
      ],
    },
  };
}
