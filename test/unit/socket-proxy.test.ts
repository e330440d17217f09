// The socket proxy (deploy/socket-proxy.ts) in front of a fake engine that
// records what reaches it (test/support/fake-engine.ts): airlock's own calls
// go through, re-serialised, and every loosening of a create body is refused
// before anything reaches the engine, including the spellings the engine would
// read as the same field (it matches JSON keys without regard to case). The
// same proxy in front of the real engine: test/integration/socket-proxy.test.ts.
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ruleFor } from "../../deploy/docker-api-rules.ts";
import { createSocketProxy } from "../../deploy/socket-proxy.ts";
import {
  containerSpec,
  fileContainerSpec,
  limitSettings,
  meterContainerSpec,
  type SpecContext,
} from "../../executor/container-spec.ts";
import {
  CA_BUNDLE_PATH,
  CA_CERT_PATH,
  HOLDER_CMD,
  RELAY_SCRIPT,
} from "../../executor/egress-relay.ts";
import { METER_SCRIPT } from "../../executor/workspace-meter.ts";
import { LABEL_STOP, LABEL_STOPPED_AT } from "../../policies/access/stop.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";
import { type FakeEngine, startFakeEngine } from "../support/fake-engine.ts";

type Obj = Record<string, unknown>;

const profiles = loadProfiles({ extraDir: join(POLICIES_DIR, "gvisor") });
const profile = (name: string) => {
  const p = profiles.get(name);
  if (p === undefined) throw new Error(`no profile ${name}`);
  return p;
};
const ctx: SpecContext = { instanceId: "unit", jobId: "j1", volume: "airlock-j1", deadline: 1 };
const jobSpec = (name = "python"): Obj =>
  structuredClone(containerSpec(profile(name), profile(name).limits.default, ctx)) as Obj;
const host = (spec: Obj) => spec["HostConfig"] as Obj;
const NNP = "no-new-privileges:true";
const ALLOW_ALL = 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}';

let engine: FakeEngine;
let proxy: ReturnType<typeof createSocketProxy>;
let port: number;
const refusals: string[] = [];

beforeAll(async () => {
  engine = await startFakeEngine();
  engine.volumes.set("airlock-ws-1", { Labels: { "airlock.workspace": "ws_1" } });
  engine.volumes.set("foreign", { Labels: {} });
  engine.volumes.set("foreign-marker", { Labels: { "airlock.workspace.touch": "ws_1" } });
  engine.volumes.set("airlock-bound", { Labels: { airlock: "x" }, Options: { o: "bind" } });
  engine.containers.set("c1", { airlock: "unit" });
  proxy = createSocketProxy({ upstream: engine.socketPath, log: (l) => refusals.push(l) });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  port = (proxy.address() as AddressInfo).port;
});
afterAll(async () => {
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
  await engine.close();
});
beforeEach(() => {
  engine.received.length = 0;
  refusals.length = 0;
});

/** A request to the proxy; a non-string body is sent as JSON. */
async function send(method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { message: string }).message;
  } catch {}
  return { status: res.status, text: message };
}
const create = (body: unknown, query = "?name=airlock-j1") =>
  send("POST", `/containers/create${query}`, body);
const reached = (path: string) => engine.received.filter((r) => r.url.split("?")[0] === path);

describe("airlock's own calls go through", () => {
  it.each([...profiles.keys()])(
    "a job container, a file container and a workspace meter of %s",
    async (name) => {
      const spec = jobSpec(name);
      const files = fileContainerSpec(profile(name), { ...ctx, volume: "airlock-ws-1" });
      const meter = meterContainerSpec(profile(name), { ...ctx, volume: "airlock-ws-1" }, [
        "/bin/sh",
        "-c",
        METER_SCRIPT,
        "airlock-meter",
        "watch",
        "250",
      ]);
      expect((await create(spec)).status).toBe(201);
      expect((await create(files, "")).status).toBe(201);
      expect((await create(meter, "")).status).toBe(201);
      const bodies = reached("/containers/create").map((r) => JSON.parse(r.body.toString()));
      // What the engine got is what airlock asked for.
      expect(bodies).toEqual([spec, files, meter]);
      expect(refusals).toEqual([]);
    },
  );

  it("limits updates, and volumes: workspaces, their markers, stop markers", async () => {
    const limits = limitSettings(profile("python").limits.max);
    expect((await send("POST", "/containers/c1/update", limits)).status).toBe(200);
    for (const Labels of [
      { "airlock.workspace": "ws_1", "airlock.tenant": "t", "airlock.profile": "python" },
      { "airlock.workspace.touch": "ws_1", "airlock.touched": "1" },
      { [LABEL_STOP]: "*", [LABEL_STOPPED_AT]: "2026-01-01T00:00:00.000Z" },
    ]) {
      expect((await send("POST", "/volumes/create", { Name: "airlock-v", Labels })).status).toBe(
        201,
      );
    }
    expect(refusals).toEqual([]);
    expect(JSON.parse(reached("/containers/c1/update")[0]?.body.toString() ?? "")).toEqual(limits);
  });
});

describe("a create body may hold only what airlock sends", () => {
  const seccompOf = (name: string) => (host(jobSpec(name))["SecurityOpt"] as string[])[1];
  it.each<[string, (s: Obj) => void, string]>([
    ["User 0", (s) => (s["User"] = "0"), "User"],
    ["User 0:0", (s) => (s["User"] = "0:0"), "User"],
    ["gid 0", (s) => (s["User"] = "1000:0"), "User"],
    ["a user name", (s) => (s["User"] = "root"), "User"],
    ["no User", (s) => delete s["User"], "User"],
    ["MaskedPaths: []", (s) => (host(s)["MaskedPaths"] = []), '"MaskedPaths" is not a field'],
    ["ReadonlyPaths: []", (s) => (host(s)["ReadonlyPaths"] = []), '"ReadonlyPaths"'],
    ["an inline allow-all seccomp", (s) => (host(s)["SecurityOpt"] = [NNP, ALLOW_ALL]), "seccomp"],
    ["no seccomp profile", (s) => (host(s)["SecurityOpt"] = [NNP]), "SecurityOpt"],
    [
      "a second, allow-all seccomp",
      (s) => (host(s)["SecurityOpt"] = [NNP, seccompOf("python"), ALLOW_ALL]),
      "SecurityOpt",
    ],
    [
      "an AppArmor option",
      (s) => (host(s)["SecurityOpt"] = [NNP, seccompOf("python"), "apparmor=docker-default"]),
      "SecurityOpt",
    ],
    [
      "the gVisor form of a profile under runc (clone3 allowed)",
      (s) => (host(s)["SecurityOpt"] = [NNP, seccompOf("python-gvisor")]),
      "none of the shipped ones",
    ],
    ["CgroupParent", (s) => (host(s)["CgroupParent"] = "/"), '"CgroupParent"'],
    ["DeviceCgroupRules", (s) => (host(s)["DeviceCgroupRules"] = ["a *:* rwm"]), '"DeviceCgroup'],
    [
      "Devices",
      (s) => (host(s)["Devices"] = [{ PathOnHost: "/dev/sda", PathInContainer: "/dev/sda" }]),
      '"Devices"',
    ],
    ["Privileged", (s) => (host(s)["Privileged"] = true), '"Privileged"'],
    ["CapAdd", (s) => (host(s)["CapAdd"] = ["SYS_ADMIN"]), '"CapAdd"'],
    ["CapDrop short of ALL", (s) => (host(s)["CapDrop"] = ["NET_RAW"]), "CapDrop"],
    ["PidMode host", (s) => (host(s)["PidMode"] = "host"), '"PidMode"'],
    ["IpcMode host", (s) => (host(s)["IpcMode"] = "host"), "IpcMode must be private"],
    ["IpcMode shareable", (s) => (host(s)["IpcMode"] = "shareable"), "IpcMode must be private"],
    ["UsernsMode host", (s) => (host(s)["UsernsMode"] = "host"), '"UsernsMode"'],
    ["UTSMode host", (s) => (host(s)["UTSMode"] = "host"), '"UTSMode"'],
    ["Binds", (s) => (host(s)["Binds"] = ["/:/host"]), '"Binds"'],
    ["VolumesFrom", (s) => (host(s)["VolumesFrom"] = ["other"]), '"VolumesFrom"'],
    [
      "a bind mount",
      (s) => (host(s)["Mounts"] = [{ Type: "bind", Source: "/", Target: "/workspace" }]),
      "no bind",
    ],
    [
      "a second mount elsewhere than /airlock/ (where a checkpoint's job puts its volumes)",
      (s) =>
        (host(s)["Mounts"] = [
          ...(host(s)["Mounts"] as Obj[]),
          { Type: "volume", Source: "other", Target: "/data" },
        ]),
      "a further volume goes at /airlock/src",
    ],
    [
      "a second mount that would make a volume",
      (s) =>
        (host(s)["Mounts"] = [
          ...(host(s)["Mounts"] as Obj[]),
          { Type: "volume", Source: "other", Target: "/airlock/src", VolumeOptions: {} },
        ]),
      "VolumeOptions",
    ],
    [
      "volume driver options (o=bind)",
      (s) => {
        const [m] = host(s)["Mounts"] as { VolumeOptions: { DriverConfig: Obj } }[];
        if (m !== undefined) m.VolumeOptions.DriverConfig["Options"] = { o: "bind", device: "/" };
      },
      "driver options",
    ],
    ["anonymous volumes", (s) => (s["Volumes"] = { "/data": {} }), '"Volumes"'],
    ["NetworkMode bridge", (s) => (host(s)["NetworkMode"] = "bridge"), "NetworkMode must be none"],
    ["NetworkMode host", (s) => (host(s)["NetworkMode"] = "host"), "NetworkMode must be none"],
    ["a network left enabled", (s) => (s["NetworkDisabled"] = false), "NetworkDisabled"],
    ["published ports", (s) => (host(s)["PortBindings"] = { "22/tcp": [{}] }), '"PortBindings"'],
    ["sysctls", (s) => (host(s)["Sysctls"] = { "kernel.x": "1" }), '"Sysctls"'],
    ["a writable root", (s) => (host(s)["ReadonlyRootfs"] = false), "read-only"],
    ["another runtime", (s) => (host(s)["Runtime"] = "kata"), "Runtime must be runc or runsc"],
    ["swap", (s) => (host(s)["MemorySwap"] = -1), "MemorySwap"],
    ["a logging driver", (s) => (host(s)["LogConfig"] = { Type: "json-file", Config: {} }), "log"],
    ["no airlock label", (s) => (s["Labels"] = { other: "x" }), "label"],
    ["a label not airlock's", (s) => (s["Labels"] = { airlock: "x", "com.x": "y" }), "label"],
    ["the image's entrypoint", (s) => (s["Entrypoint"] = ["/bin/sh"]), "Entrypoint"],
  ])("%s", async (_what, edit, message) => {
    const spec = jobSpec();
    edit(spec);
    const res = await create(spec);
    expect(res.status).toBe(403);
    expect(res.text).toContain(message);
    expect(reached("/containers/create")).toEqual([]);
  });

  it("an inline seccomp equal to a shipped one is accepted, and the proxy's own text goes on", async () => {
    const spec = jobSpec();
    const shipped = (host(spec)["SecurityOpt"] as string[])[1] ?? "";
    const reordered = JSON.stringify(
      Object.fromEntries(Object.entries(JSON.parse(shipped.slice(8))).reverse()),
      null,
      2,
    );
    host(spec)["SecurityOpt"] = [NNP, `seccomp=${reordered}`];
    expect((await create(spec)).status).toBe(201);
    const sent = JSON.parse(reached("/containers/create")[0]?.body.toString() ?? "{}");
    expect(host(sent)["SecurityOpt"]).toEqual([NNP, shipped]);
  });
});

describe("the engine reads keys without regard to case: other spellings are refused", () => {
  const KELVIN = "\u212a";
  const LONG_S = "\u017f";
  it.each<[string, (s: Obj) => void, string]>([
    ['"user" beside User', (s) => (s["user"] = "0"), 'keys "User" and "user" differ only in case'],
    ['"USER" beside User', (s) => (s["USER"] = "0"), "differ only in case"],
    [
      '"user" alone',
      (s) => {
        delete s["User"];
        s["user"] = "0";
      },
      "user",
    ],
    ['"privileged"', (s) => (host(s)["privileged"] = true), '"privileged" is not a field'],
    ['"binds"', (s) => (host(s)["binds"] = ["/:/host"]), '"binds"'],
    ['"cgroupParent"', (s) => (host(s)["cgroupParent"] = "/"), '"cgroupParent"'],
    ['"pidmode"', (s) => (host(s)["pidmode"] = "host"), '"pidmode"'],
    ['"networkmode" beside NetworkMode', (s) => (host(s)["networkmode"] = "host"), "differ only"],
    [
      `"${LONG_S}ecurityOpt" (long s) beside SecurityOpt`,
      (s) => (host(s)[`${LONG_S}ecurityOpt`] = ["seccomp=unconfined"]),
      "differ only in case",
    ],
    [
      `"Mas${KELVIN}edPaths" (Kelvin sign)`,
      (s) => (host(s)[`Mas${KELVIN}edPaths`] = []),
      "is not a field",
    ],
    [
      '"hostconfig" beside HostConfig',
      (s) => (s["hostconfig"] = { Privileged: true }),
      "differ only in case",
    ],
    [
      '"source" beside a mount\'s Source',
      (s) => {
        const [m] = host(s)["Mounts"] as Obj[];
        if (m !== undefined) m["source"] = "foreign";
      },
      "differ only in case",
    ],
  ])("%s", async (_what, edit, message) => {
    const spec = jobSpec();
    edit(spec);
    const res = await create(spec);
    expect(res.status).toBe(403);
    expect(res.text).toContain(message);
    expect(reached("/containers/create")).toEqual([]);
  });
});

describe("a mounted volume must be airlock's, asked of the engine", () => {
  const withSource = (source: string, options: boolean) => {
    const spec = fileContainerSpec(profile("python"), { ...ctx, volume: source }) as Obj;
    if (options) host(spec)["Mounts"] = host(jobSpec())["Mounts"];
    (host(spec)["Mounts"] as Obj[])[0] = {
      ...(host(spec)["Mounts"] as Obj[])[0],
      Source: source,
    };
    return spec;
  };
  it.each([
    ["a volume without airlock's label", "foreign", false, "volume foreign is not airlock's"],
    ["one with its options in the mount", "foreign", true, "volume foreign is not airlock's"],
    ["a workspace's touch marker", "foreign-marker", false, "is not airlock's"],
    ["an airlock-labelled bind volume", "airlock-bound", false, "not a plain local volume"],
    ["a missing volume made unlabelled", "airlock-nothing", false, "without airlock's label"],
  ])("%s", async (_what, source, options, message) => {
    const res = await create(withSource(source, options), "");
    expect(res.status).toBe(403);
    expect(res.text).toContain(message);
    expect(reached("/containers/create")).toEqual([]);
  });
});

describe("what reaches the engine is what was checked", () => {
  it("the body re-serialised with its length, the query cut to the name", async () => {
    const spec = jobSpec();
    const query = `?name=airlock-j1&HostConfig=${encodeURIComponent('{"Privileged":true}')}`;
    expect((await create(JSON.stringify(spec, null, 2), query)).status).toBe(201);
    const [got] = reached("/containers/create");
    expect(got?.url).toBe("/containers/create?name=airlock-j1");
    expect(got?.body.toString()).toBe(JSON.stringify(JSON.parse(got?.body.toString() ?? "")));
    expect(got?.headers["content-length"]).toBe(String(got?.body.length));
    expect(JSON.parse(got?.body.toString() ?? "")).toEqual(spec);
  });

  it("a name not airlock's, or two names, is refused", async () => {
    expect((await create(jobSpec(), "?name=evil")).status).toBe(403);
    expect((await create(jobSpec(), "?name=airlock-a&name=airlock-b")).status).toBe(403);
    expect(reached("/containers/create")).toEqual([]);
  });

  it("a start carries no body (API < 1.24 would read a HostConfig from it)", async () => {
    const res = await send("POST", "/containers/c1/start", {
      Binds: ["/:/host"],
      Privileged: true,
    });
    expect(res.status).toBe(200);
    expect(reached("/containers/c1/start")[0]?.body.length).toBe(0);
  });

  it("API versions older than 1.41 are refused", async () => {
    const res = await send("POST", "/v1.23/containers/c1/start", { Binds: ["/:/host"] });
    expect(res.status).toBe(403);
    expect(res.text).toContain("API version 1.23 is older than 1.41");
    expect(engine.received).toEqual([]);
    expect((await send("GET", "/v1.41/containers/c1/json")).status).toBe(200);
  });

  it.each<[string, Obj, string]>([
    ["a restart policy", { RestartPolicy: { Name: "always" } }, '"RestartPolicy"'],
    ["a cpuset", { CpusetCpus: "0" }, '"CpusetCpus"'],
    ["swap", { MemorySwap: -1 }, "MemorySwap"],
    ["a case trick", { memory: 1 }, "differ only in case"],
  ])("an update with %s is refused", async (_what, extra, message) => {
    const limits = { ...limitSettings(profile("python").limits.default), ...extra };
    const res = await send("POST", "/containers/c1/update", limits);
    expect(res.status).toBe(403);
    expect(res.text).toContain(message);
    expect(reached("/containers/c1/update")).toEqual([]);
  });

  it.each<[string, Obj, string]>([
    ["driver options", { DriverOpts: { o: "bind", device: "/" } }, '"DriverOpts"'],
    ["driver options, spelled otherwise", { driverOpts: { o: "bind" } }, '"driverOpts"'],
    ["another driver", { Driver: "nfs" }, '"Driver"'],
    ["no airlock label", { Labels: { other: "x" } }, "label"],
  ])("a volume create with %s is refused", async (_what, extra, message) => {
    const body = { Name: "airlock-v", Labels: { airlock: "unit" }, ...extra };
    const res = await send("POST", "/volumes/create", body);
    expect(res.status).toBe(403);
    expect(res.text).toContain(message);
    expect(reached("/volumes/create")).toEqual([]);
  });
});

describe("attach", () => {
  /** Opens a raw connection, sends `bytes`, and returns all that comes back until it closes. */
  const raw = (bytes: string, after?: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => {
        chunks.push(c);
        if (after !== undefined && Buffer.concat(chunks).includes("\r\n\r\n")) {
          socket.write(after);
          after = undefined;
        }
      });
      socket.on("end", () => resolve(Buffer.concat(chunks).toString()));
      socket.on("error", reject);
      socket.write(bytes);
      setTimeout(() => socket.end(), 1000);
    });
  const attach = (id: string) =>
    `POST /containers/${id}/attach?stream=1&stdin=1 HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`;
  const SMUGGLED =
    'POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"Privileged":1}\n';

  it("is spliced once the engine has switched protocols", async () => {
    const answer = await raw(attach("c1"), "hello");
    expect(answer).toMatch(/^HTTP\/1\.1 101 /);
    expect(answer.endsWith("hello")).toBe(true);
  });

  it("is not spliced when the engine answers otherwise: what follows never reaches it", async () => {
    engine.containers.set("gone", { airlock: "unit" });
    expect((await send("GET", "/containers/gone/json")).status).toBe(200);
    engine.containers.delete("gone");
    const answer = await raw(attach("gone") + SMUGGLED);
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(engine.afterRefusedAttach().toString()).toBe("");
  });

  it("only attach may upgrade", async () => {
    const answer = await raw(
      "POST /containers/c1/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    );
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(engine.received).toEqual([]);
  });
});

describe("which calls are airlock's", () => {
  it.each([
    ["GET", "/v1.41/_ping", "allow"],
    ["GET", "/info", "allow"],
    ["GET", "/images/airlock/shell:1/json", "allow"],
    ["POST", "/v1.41/containers/create", "create-container"],
    ["POST", "/containers/abc123/attach", "container"],
    ["PUT", "/containers/abc123/archive", "container"],
    ["HEAD", "/containers/abc123/archive", "container"],
    ["DELETE", "/containers/abc123", "container"],
    ["DELETE", "/volumes/airlock-x", "volume"],
    ["POST", "/containers/abc123/exec", "deny"],
    ["POST", "/build", "deny"],
    ["GET", "/images/json", "deny"],
    ["POST", "/containers/abc123/archive", "deny"],
    ["GET", "/containers/abc123/logs", "deny"],
    ["POST", "/images/create", "deny"],
    ["POST", "/v1.40/containers/create", "deny"],
    ["POST", "/v1.23/containers/abc123/start", "deny"],
  ])("%s %s → %s", (method, path, kind) => {
    expect(ruleFor(method, path).kind).toBe(kind);
  });
});

describe("egress: exactly airlock's networks, relay and CA mounts", () => {
  const egressCtx: SpecContext = {
    ...ctx,
    egress: {
      network: "airlock-egress-j1",
      runtime: "runc",
      mounts: [
        {
          Type: "bind",
          Source: "/var/lib/airlock/egress/ca-bundle.pem",
          Target: CA_BUNDLE_PATH,
          ReadOnly: true,
        },
        {
          Type: "bind",
          Source: "/var/lib/airlock/egress/ca.pem",
          Target: CA_CERT_PATH,
          ReadOnly: true,
        },
      ],
    },
  };
  const egressSpec = (name = "shell", runtime = "runc"): Obj =>
    structuredClone(
      containerSpec(profile(name), profile(name).limits.default, {
        ...egressCtx,
        egress: { ...(egressCtx.egress as NonNullable<SpecContext["egress"]>), runtime },
      }),
    ) as Obj;
  const relay = (): Obj => ({
    name: "airlock-egress-relay-unit",
    Image: "airlock/node:1",
    Entrypoint: [],
    Cmd: ["node", "-e", RELAY_SCRIPT, "172.17.0.1", "40000"],
    User: "65534:65534",
    Labels: { airlock: "unit", "airlock.egress": "relay" },
    HostConfig: {
      NetworkMode: "bridge",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: [NNP],
      Memory: 134217728,
      PidsLimit: 64,
      LogConfig: { Type: "none", Config: {} },
    },
  });
  const network = (): Obj => ({
    Name: "airlock-egress-j1",
    Driver: "bridge",
    Internal: true,
    CheckDuplicate: true,
    IPAM: { Driver: "default", Config: [{ Subnet: "10.213.0.0/29" }] },
    Options: { "com.docker.network.bridge.inhibit_ipv4": "true" },
    Labels: { airlock: "unit", "airlock.egress": "network" },
  });
  beforeAll(() => {
    engine.networks.set("airlock-egress-j1", { airlock: "unit", "airlock.egress": "network" });
    engine.networks.set("airlock-egress-foreign", {});
    engine.networks.set("bridge", {});
    engine.containers.set("relay1", { airlock: "unit", "airlock.egress": "relay" });
    engine.containers.set("airlock-egress-holder-h1", {
      airlock: "unit",
      "airlock.egress": "holder",
    });
    engine.networkModes.set("airlock-egress-holder-h1", "airlock-egress-j1");
    // Named like a holder, labelled like one, but on the default bridge.
    engine.containers.set("airlock-egress-holder-h2", {
      airlock: "unit",
      "airlock.egress": "holder",
    });
    engine.networkModes.set("airlock-egress-holder-h2", "bridge");
    engine.containers.set("airlock-egress-holder-h3", {
      airlock: "unit",
      "airlock.egress": "relay",
    });
    engine.networkModes.set("airlock-egress-holder-h3", "airlock-egress-j1");
  });
  const holder = (): Obj => ({
    name: "airlock-egress-holder-h1",
    Image: "airlock/node:1",
    Entrypoint: [],
    Cmd: [...HOLDER_CMD],
    User: "65534:65534",
    Hostname: "sandbox",
    Labels: { airlock: "unit", "airlock.egress": "holder", "airlock.deadline": "1" },
    NetworkingConfig: {
      EndpointsConfig: { "airlock-egress-j1": { IPAMConfig: { IPv4Address: "10.213.0.3" } } },
    },
    HostConfig: {
      NetworkMode: "airlock-egress-j1",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: [NNP],
      Memory: 33554432,
      PidsLimit: 8,
      LogConfig: { Type: "none", Config: {} },
    },
  });
  const inHolder = (name: string) => () => {
    const spec = egressSpec();
    host(spec)["NetworkMode"] = `container:${name}`;
    return spec;
  };

  it("a holder on its network, and a job in a holder's namespace, go through", async () => {
    expect((await create(holder(), "?name=airlock-egress-holder-h1")).status).toBe(201);
    expect((await create(inHolder("airlock-egress-holder-h1")())).status).toBe(201);
    expect(refusals).toEqual([]);
  });

  it.each<[string, () => Obj, string]>([
    ["a holder named like a job", holder, "?name=airlock-j1"],
    ["a job in the namespace of a holder on the bridge", inHolder("airlock-egress-holder-h2"), ""],
    [
      "a job in the namespace of a relay named as a holder",
      inHolder("airlock-egress-holder-h3"),
      "",
    ],
    ["a job in the namespace of a missing holder", inHolder("airlock-egress-holder-h9"), ""],
    ["a job in any other container's namespace", inHolder("c1"), ""],
  ])("refused: %s", async (_, make, query) => {
    const res = await create(make(), query);
    expect(res.status).toBe(403);
    expect(reached("/containers/create")).toEqual([]);
  });

  it("airlock's egress calls go through: a job on its network (runc and runsc-net), the relay, the network", async () => {
    expect((await create(egressSpec())).status).toBe(201);
    expect((await create(egressSpec("shell-gvisor", "runsc-net"))).status).toBe(201);
    expect((await create(relay(), "?name=airlock-egress-relay-unit")).status).toBe(201);
    expect((await send("POST", "/networks/create", network())).status).toBe(200);
    const endpoint = {
      Container: "relay1",
      EndpointConfig: { IPAMConfig: { IPv4Address: "10.213.0.2" } },
    };
    expect((await send("POST", "/networks/airlock-egress-j1/connect", endpoint)).status).toBe(200);
    expect(
      (
        await send("POST", "/networks/airlock-egress-j1/disconnect", {
          Container: "relay1",
          Force: true,
        })
      ).status,
    ).toBe(200);
    expect((await send("DELETE", "/networks/airlock-egress-j1")).status).toBe(200);
    expect((await send("GET", "/networks/bridge")).status).toBe(200);
    expect(refusals).toEqual([]);
  });

  it.each<[string, () => Obj, (s: Obj) => void, string]>([
    [
      "a sandbox on the default bridge",
      egressSpec,
      (s) => (host(s)["NetworkMode"] = "bridge"),
      "NetworkMode must be none, an airlock-egress-* network or container:airlock-egress-holder-*",
    ],
    [
      "a sandbox on the host's network",
      egressSpec,
      (s) => (host(s)["NetworkMode"] = "host"),
      "NetworkMode",
    ],
    [
      "NetworkDisabled on an egress network",
      egressSpec,
      (s) => (s["NetworkDisabled"] = true),
      "NetworkDisabled must be true exactly when",
    ],
    [
      "a bind of /etc",
      egressSpec,
      (s) =>
        ((host(s)["Mounts"] as Obj[])[1] = {
          Type: "bind",
          Source: "/etc",
          Target: CA_BUNDLE_PATH,
          ReadOnly: true,
        }),
      "Mounts",
    ],
    [
      "the CA writable",
      egressSpec,
      (s) => (((host(s)["Mounts"] as Obj[])[1] as Obj)["ReadOnly"] = false),
      "Mounts",
    ],
    [
      "the CA elsewhere",
      egressSpec,
      (s) => (((host(s)["Mounts"] as Obj[])[1] as Obj)["Target"] = "/etc/ld.so.preload"),
      "Mounts",
    ],
    [
      "the CA without a network",
      egressSpec,
      (s) => {
        host(s)["NetworkMode"] = "none";
        s["NetworkDisabled"] = true;
      },
      "only for a job on an egress network",
    ],
    [
      "a relay running other code",
      relay,
      (s) => ((s["Cmd"] as string[])[2] = "require('child_process')"),
      "the relay runs only its own script",
    ],
    [
      "a relay on the host's network",
      relay,
      (s) => (host(s)["NetworkMode"] = "host"),
      "the relay is on the default bridge",
    ],
    ["a relay as root", relay, (s) => (s["User"] = "0:0"), "User"],
    ["a holder running other code", holder, (s) => ((s["Cmd"] as string[])[0] = "node"), "Cmd"],
    [
      "a holder on the bridge",
      holder,
      (s) => (host(s)["NetworkMode"] = "bridge"),
      "a holder is on an airlock-egress-* network",
    ],
    ["a holder as root", holder, (s) => (s["User"] = "0:0"), "User"],
  ])("refused: %s", async (_, make, edit, message) => {
    const spec = make();
    edit(spec);
    const res = await create(
      spec,
      spec["name"] === undefined ? "?name=airlock-j1" : `?name=${spec["name"]}`,
    );
    expect(res).toEqual({ status: 403, text: expect.stringContaining(message) });
    expect(reached("/containers/create")).toEqual([]);
  });

  it.each<[string, string, string, unknown, string]>([
    [
      "a network that is not internal",
      "POST",
      "/networks/create",
      { ...network(), Internal: false },
      "internal",
    ],
    [
      "a network with a host address",
      "POST",
      "/networks/create",
      { ...network(), Options: {} },
      "inhibit_ipv4",
    ],
    [
      "a network of another name",
      "POST",
      "/networks/create",
      { ...network(), Name: "mine" },
      "airlock-egress",
    ],
    [
      "a network without airlock's labels",
      "POST",
      "/networks/create",
      { ...network(), Labels: { airlock: "u" } },
      "airlock.egress=network",
    ],
    [
      "joining another's network",
      "POST",
      "/networks/airlock-egress-foreign/connect",
      { Container: "relay1" },
      "is not airlock's",
    ],
    [
      "joining a container not airlock's",
      "POST",
      "/networks/airlock-egress-j1/connect",
      { Container: "nobody" },
      "No such container",
    ],
    [
      "joining the default bridge",
      "POST",
      "/networks/bridge/connect",
      { Container: "relay1" },
      "not a call airlock makes",
    ],
    [
      "removing the default bridge",
      "DELETE",
      "/networks/bridge",
      undefined,
      "not a call airlock makes",
    ],
  ])("refused: %s", async (_, method, path, body, message) => {
    const res = await send(method, path, body);
    expect(res.text).toContain(message);
    expect(res.status === 403 || res.status === 404).toBe(true);
    expect(engine.received.filter((r) => r.method !== "GET")).toEqual([]);
  });
});
