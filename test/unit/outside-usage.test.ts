import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ContainerClient, Usage } from "../../executor/docker.ts";
import { beginOutsideUsage, jobUsage, parseCpuNs } from "../../executor/outside-usage.ts";

const ID = "a".repeat(64);
let root: string;

afterEach(() => rmSync(root, { recursive: true, force: true }));

function cgroupRoot(files: Record<string, string>): string {
  root = mkdtempSync(join(tmpdir(), "airlock-cgroup-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** Only usage() is called; it records how often. */
function engine(usage: Usage): ContainerClient & { calls: number } {
  const client = {
    calls: 0,
    async usage() {
      client.calls++;
      return usage;
    },
  };
  return client as unknown as ContainerClient & { calls: number };
}

describe("beginOutsideUsage", () => {
  it("reads the host's cgroup v1 files (cgroupfs driver): CPU since it began, the memory peak", async () => {
    const dir = cgroupRoot({
      [`cpuacct/docker/${ID}/cpuacct.usage`]: "130000000\n",
      [`memory/docker/${ID}/memory.max_usage_in_bytes`]: "16637952\n",
    });
    const client = engine({ cpuMs: 1, memoryPeakBytes: 1 });
    const meter = await beginOutsideUsage(client, ID, dir);
    expect(meter.source).toBe("host-cgroup");
    writeFileSync(join(dir, `cpuacct/docker/${ID}/cpuacct.usage`), "375400000\n");
    expect(await meter.read()).toEqual({ cpuMs: 245, memoryPeakBytes: 16637952 });
    expect(client.calls).toBe(0);
  });

  it("reads cgroup v2 under the systemd driver, where memory.peak may be missing", async () => {
    const scope = `system.slice/docker-${ID}.scope`;
    const dir = cgroupRoot({
      [`${scope}/cpu.stat`]: "usage_usec 1000\nuser_usec 800\nsystem_usec 200\n",
      [`${scope}/memory.current`]: "4096\n",
    });
    const meter = await beginOutsideUsage(engine({ cpuMs: 1, memoryPeakBytes: 1 }), ID, dir);
    writeFileSync(join(dir, `${scope}/cpu.stat`), "usage_usec 51000\nuser_usec 800\n");
    expect(await meter.read()).toEqual({ cpuMs: 50, memoryPeakBytes: 4096 });
  });

  it("asks the engine, after the job only, when the host's cgroup is out of sight", async () => {
    const dir = cgroupRoot({ [`cpuacct/docker/${"b".repeat(64)}/cpuacct.usage`]: "1\n" });
    const client = engine({ cpuMs: 170, memoryPeakBytes: 15_000_000 });
    const meter = await beginOutsideUsage(client, ID, dir);
    expect(meter.source).toBe("engine");
    expect(client.calls).toBe(0);
    expect(await meter.read()).toEqual({ cpuMs: 170, memoryPeakBytes: 15_000_000 });
  });

  it("answers null for a figure whose file went away (the container was removed)", async () => {
    const dir = cgroupRoot({ [`cpuacct/docker/${ID}/cpuacct.usage`]: "5\n" });
    const meter = await beginOutsideUsage(engine({ cpuMs: 1, memoryPeakBytes: 1 }), ID, dir);
    rmSync(join(dir, "cpuacct"), { recursive: true });
    expect(await meter.read()).toEqual({ cpuMs: null, memoryPeakBytes: null });
  });
});

describe("parseCpuNs", () => {
  it("reads cpuacct.usage in ns and cpu.stat's usage_usec; nothing from anything else", () => {
    expect(parseCpuNs("/x/cpuacct.usage", "42\n")).toBe(42);
    expect(parseCpuNs("/x/cpu.stat", "user_usec 1\nusage_usec 7\n")).toBe(7000);
    expect(parseCpuNs("/x/cpu.stat", "user_usec 1\n")).toBeUndefined();
    expect(parseCpuNs("/x/cpuacct.usage", "max\n")).toBeUndefined();
  });
});

describe("jobUsage", () => {
  const none: Usage = { cpuMs: null, memoryPeakBytes: null };

  it("prefers the meter outside to the launcher's figures, which the job could forge", async () => {
    const dir = cgroupRoot({});
    const meter = await beginOutsideUsage(engine({ cpuMs: 9, memoryPeakBytes: 900 }), ID, dir);
    expect(await jobUsage(meter, { cpuMs: 1, memoryPeakBytes: 100 })).toEqual({
      cpuMs: 9,
      memoryPeakBytes: 900,
    });
  });

  it("takes each missing figure from the next source, and the launcher's alone without a meter", async () => {
    const dir = cgroupRoot({});
    const meter = await beginOutsideUsage(engine({ cpuMs: null, memoryPeakBytes: 900 }), ID, dir);
    expect(await jobUsage(meter, none, { cpuMs: 3, memoryPeakBytes: 5 })).toEqual({
      cpuMs: 3,
      memoryPeakBytes: 900,
    });
    expect(await jobUsage(undefined, { cpuMs: 1, memoryPeakBytes: 2 })).toEqual({
      cpuMs: 1,
      memoryPeakBytes: 2,
    });
  });

  it("falls back when the engine fails", async () => {
    const client = {
      usage: () => Promise.reject(new Error("engine down")),
    } as unknown as ContainerClient;
    const meter = await beginOutsideUsage(client, ID, cgroupRoot({}));
    expect(await jobUsage(meter, { cpuMs: 4, memoryPeakBytes: null })).toEqual({
      cpuMs: 4,
      memoryPeakBytes: null,
    });
  });
});
