import type Dockerode from "dockerode";
import { describe, expect, it } from "vitest";
import { engineChecks, failures } from "../../executor/hardening.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";

const profiles = loadProfiles({ extraDir: `${POLICIES_DIR}/gvisor` });
const healthy = {
  MemoryLimit: true,
  SwapLimit: true,
  PidsLimit: true,
  CpuCfsQuota: true,
  SecurityOptions: ["name=seccomp,profile=default"],
  Runtimes: { runc: {}, runsc: {} },
};

function engine(info: object, apiVersion = "1.41"): Dockerode {
  return {
    version: async () => ({ ApiVersion: apiVersion, Version: "20.10.24" }),
    info: async () => info,
  } as unknown as Dockerode;
}

describe("engineChecks", () => {
  it("passes a healthy engine", async () => {
    expect(failures(await engineChecks(engine(healthy), profiles))).toBeUndefined();
  });

  it.each([
    [{ ...healthy, SecurityOptions: ["name=apparmor"] }, "1.41", "seccomp"],
    [{ ...healthy, SwapLimit: false }, "1.41", "swap limits"],
    [{ ...healthy, PidsLimit: false }, "1.41", "pids limits"],
    [healthy, "1.40", "engine version"],
    [
      { ...healthy, Runtimes: { runc: {} } },
      "1.41",
      "profiles c-gvisor, python-gvisor, shell-gvisor name runtime runsc, which the engine does not have",
    ],
  ])("refuses to start when a protection is missing (%#)", async (info, api, message) => {
    const refusal = failures(await engineChecks(engine(info, api), profiles));
    expect(refusal).toMatch(/^refusing to start: /);
    expect(refusal).toContain(message);
  });
});
