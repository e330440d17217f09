import { describe, expect, it } from "vitest";
import type { ExecRequest } from "../../core/schemas.ts";
import { containerSpec } from "../../executor/container-spec.ts";
import { loadProfiles } from "../../policies/load.ts";
import { resolveJob } from "../../policies/resolve.ts";

const profiles = loadProfiles();

describe("containerSpec", () => {
  const job = resolveJob(
    profiles,
    {
      profile: "python",
      code: "print(1)",
      limits: { memoryMb: 128, cpus: 0.5, pids: 32 },
      env: { A: "1" },
      workdir: "src",
    },
    "t",
  );
  const spec = containerSpec(job.profile, job.limits, {
    instanceId: "gw-1",
    jobId: job.id,
    volume: "airlock-v",
    deadline: 1234,
  });
  const host = spec.HostConfig ?? {};

  it("applies every hardening setting of DESIGN.md", () => {
    expect(host.NetworkMode).toBe("none");
    expect(spec.NetworkDisabled).toBe(true);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.CapDrop).toEqual(["ALL"]);
    expect(host.CapAdd).toBeUndefined();
    expect(host.Privileged).toBeUndefined();
    expect(host.SecurityOpt?.[0]).toBe("no-new-privileges:true");
    expect(host.SecurityOpt?.[1]).toMatch(/^seccomp=\{"defaultAction":"SCMP_ACT_ERRNO"/);
    expect(host.Init).toBe(true);
    expect(spec.User).toBe("1000:1000");
    expect(host.Tmpfs?.["/tmp"]).toContain("size=64m");
    expect(host.ShmSize).toBe(16 * 1024 * 1024);
    expect(host.Ulimits?.map((u) => u.Name)).toEqual(["nofile", "fsize", "core"]);
    expect(host.Runtime).toBe("runc");
  });

  it("sets the job's limits, with no swap beyond memory", () => {
    expect(host.Memory).toBe(128 * 1024 * 1024);
    expect(host.MemorySwap).toBe(host.Memory);
    expect(host.NanoCpus).toBe(500_000_000);
    expect(host.PidsLimit).toBe(32);
  });

  it("labels container and volume for the reaper", () => {
    const labels = { airlock: "gw-1", "airlock.job": job.id, "airlock.deadline": "1234" };
    expect(spec.Labels).toEqual(labels);
    expect(host.Mounts?.[0]).toMatchObject({
      Type: "volume",
      Source: "airlock-v",
      Target: "/workspace",
    });
    expect(host.Mounts?.[0]?.VolumeOptions?.Labels).toEqual(labels);
  });

  it("depends on the profile and limits only: the job arrives on stdin", () => {
    expect(spec.Env?.sort()).toEqual(
      Object.entries(profiles.get("python")?.env ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .sort(),
    );
    expect(spec.WorkingDir).toBe("/workspace");
    expect(spec.Cmd?.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(spec.Cmd?.slice(3)).toEqual(["airlock"]);
    const other = resolveJob(
      profiles,
      { profile: "python", command: ["env"], env: { B: "2" } } as ExecRequest,
      "t",
    );
    const again = containerSpec(other.profile, job.limits, {
      instanceId: "gw-1",
      jobId: job.id,
      volume: "airlock-v",
      deadline: 1234,
    });
    expect(again).toEqual(spec);
  });
});

describe("containerSpec with an egress network", () => {
  const python = profiles.get("python");
  if (python === undefined) throw new Error("no python profile");
  const mounts = [
    {
      Type: "bind" as const,
      Source: "/d/egress/ca-bundle.pem",
      Target: "/etc/airlock/egress-ca-bundle.pem",
      ReadOnly: true as const,
    },
  ];
  const spec = containerSpec(python, python.limits.default, {
    instanceId: "gw-1",
    jobId: "j",
    volume: "airlock-v",
    deadline: 1,
    egress: { network: "airlock-egress-j", mounts, runtime: "runsc-net" },
  });

  it("joins the job's own network, with the CA read-only, and keeps every other setting", () => {
    expect(spec.HostConfig?.NetworkMode).toBe("airlock-egress-j");
    expect(spec.NetworkDisabled).toBe(false);
    expect(spec.HostConfig?.Runtime).toBe("runsc-net");
    expect(spec.HostConfig?.Mounts?.slice(1)).toEqual(mounts);
    expect(spec.HostConfig?.CapDrop).toEqual(["ALL"]);
    expect(spec.HostConfig?.ReadonlyRootfs).toBe(true);
  });
});
