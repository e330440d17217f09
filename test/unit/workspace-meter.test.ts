// The workspace meter (executor/workspace-meter.ts) over a fake engine that
// records calls: when its container starts and goes, what it runs, and how its
// readings turn into a stopped run.
import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ContainerClient, ContainerSpec } from "../../executor/docker.ts";
import { METER_SCRIPT, type MeterReading, WorkspaceMeter } from "../../executor/workspace-meter.ts";
import { loadProfiles } from "../../policies/load.ts";

const shell = loadProfiles().get("shell") as LoadedProfile;

/** A docker attach frame of stdout. */
function frame(text: string): Buffer {
  const header = Buffer.alloc(8);
  header[0] = 1;
  header.writeUInt32BE(Buffer.byteLength(text), 4);
  return Buffer.concat([header, Buffer.from(text)]);
}

function fakeEngine() {
  const calls: string[] = [];
  const specs: ContainerSpec[] = [];
  const stream = new Duplex({ read() {}, write: (_c, _e, done) => done() });
  let exit: (code: number) => void = () => {};
  const exited = new Promise<number>((resolve) => {
    exit = resolve;
  });
  const client = {
    async create(spec: ContainerSpec) {
      calls.push("create");
      specs.push(spec);
      return "m1";
    },
    async attach() {
      calls.push("attach");
      return stream;
    },
    async start() {
      calls.push("start");
    },
    wait: () => exited,
    async remove(id: string) {
      calls.push(`remove ${id}`);
    },
  } as unknown as ContainerClient;
  const say = (text: string) => stream.push(frame(text));
  const end = () => stream.push(null);
  return { calls, specs, client, say, exit, end };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("WorkspaceMeter", () => {
  it("measures once: a container of the profile's image on the volume, as the sandbox user, then removed", async () => {
    const engine = fakeEngine();
    const meter = new WorkspaceMeter({
      client: engine.client,
      instanceId: "gw1",
      orphanGraceMs: 1000,
      warn: () => {},
    });
    // The reading comes before anyone asks for it (a fast pass), split across frames.
    const reading = meter.measure(shell, "airlock-ws-ws_x");
    await tick(5);
    engine.say("12345");
    engine.say(" 0\n");
    engine.exit(0);
    expect(await reading).toEqual({ bytes: 12345, unreadable: 0 });
    expect(engine.calls).toEqual(["create", "attach", "start", "remove m1"]);
    const spec = engine.specs[0] as ContainerSpec;
    expect(spec).toMatchObject({
      Image: shell.image,
      User: shell.user,
      Cmd: ["/bin/sh", "-c", METER_SCRIPT, "airlock-meter", "once"],
      NetworkDisabled: true,
      HostConfig: {
        NetworkMode: "none",
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        Runtime: shell.runtime,
        NanoCpus: 250_000_000,
        Mounts: [{ Type: "volume", Source: "airlock-ws-ws_x", Target: "/workspace" }],
      },
      Labels: { airlock: "gw1" },
    });
  });

  it("fails a measure whose container ends without a reading", async () => {
    const engine = fakeEngine();
    const meter = new WorkspaceMeter({
      client: engine.client,
      instanceId: "gw1",
      orphanGraceMs: 1000,
      warn: () => {},
    });
    const reading = meter.measure(shell, "v");
    await tick(5);
    engine.say("not a reading\n");
    engine.end();
    engine.exit(1);
    await expect(reading).rejects.toThrow("ended without a reading");
    expect(engine.calls.at(-1)).toBe("remove m1");
  });

  it("watches a run only past its delay; past the cap (or unable to read), it stops the run once", async () => {
    const engine = fakeEngine();
    const meter = new WorkspaceMeter({
      client: engine.client,
      instanceId: "gw1",
      orphanGraceMs: 1000,
      warn: () => {},
      delayMs: 30,
      periodMs: 100,
    });
    // A run that ends before the delay never pays for a container.
    const short = meter.watch(shell, "v", 1000, 5000, () => {});
    short.arm();
    await short.stop();
    await tick(50);
    expect(engine.calls).toEqual([]);

    const full: MeterReading[] = [];
    const watch = meter.watch(shell, "v", 1000, 5000, (r) => full.push(r));
    watch.arm();
    await tick(60);
    expect(engine.calls).toEqual(["create", "attach", "start"]);
    expect((engine.specs[0] as ContainerSpec).Cmd?.slice(-2)).toEqual(["watch", "100"]);
    engine.say("999 0\n1000 0\n");
    await tick(5);
    expect(full).toEqual([]);
    engine.say("1001 0\n5000 0\n");
    await tick(5);
    expect(full).toEqual([{ bytes: 1001, unreadable: 0 }]);
    expect(watch.tripped).toEqual({ bytes: 1001, unreadable: 0 });
    await watch.stop();
    expect(engine.calls.at(-1)).toBe("remove m1");

    // A path it cannot read counts as full: its bytes are unknown.
    const again = fakeEngine();
    const hidden: MeterReading[] = [];
    const other = new WorkspaceMeter({ ...meter.deps, client: again.client }).watch(
      shell,
      "v",
      1000,
      5000,
      (r) => hidden.push(r),
    );
    other.arm();
    await tick(60);
    again.say("10 1\n");
    await tick(5);
    expect(hidden).toEqual([{ bytes: 10, unreadable: 1 }]);
    await other.stop();
  });

  it("a meter that cannot start leaves the run unwatched and says so", async () => {
    const engine = fakeEngine();
    const warned: string[] = [];
    const client = {
      ...engine.client,
      create: async () => {
        throw new Error("engine busy");
      },
    } as ContainerClient;
    const meter = new WorkspaceMeter({
      client,
      instanceId: "gw1",
      orphanGraceMs: 1000,
      warn: (message) => warned.push(message),
      delayMs: 1,
    });
    const watch = meter.watch(shell, "v", 1000, 5000, () => {});
    watch.arm();
    await tick(20);
    await watch.stop();
    expect(watch.tripped).toBeUndefined();
    expect(warned).toEqual([
      "the workspace meter could not watch a run; it is checked after it ends only",
    ]);
  });
});
