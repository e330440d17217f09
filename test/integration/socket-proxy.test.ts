// The filtering socket proxy (deploy/socket-proxy.ts) in front of the real
// engine: a gateway that reaches Docker only through it runs one-shot jobs
// (warm pool and attach included, gVisor too), kills on timeout, works with
// workspaces and the emergency stop, and cleans up; calls airlock never
// makes, and creates that would loosen the hardening in any way (other
// fields, other values, other spellings of a field), are refused with 403
// before the engine sees them, as is any touch of a container not airlock's.
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../client/index.ts";
import { createSocketProxy } from "../../deploy/socket-proxy.ts";
import { containerSpec } from "../../executor/container-spec.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";
import { checkpointRoundTrip, execOnce, workspaceRoundTrip } from "../support/airlock-calls.ts";
import { startUpstream } from "../support/egress-upstream.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";

type Obj = Record<string, unknown>;

let proxy: ReturnType<typeof createSocketProxy>;
let proxyUrl: string;
let proxied: Dockerode;
let gw: TestGateway;
const direct = new Dockerode();
const refusals: string[] = [];

beforeAll(async () => {
  proxy = createSocketProxy({ upstream: "/var/run/docker.sock", log: (l) => refusals.push(l) });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  proxyUrl = `http://127.0.0.1:${port}`;
  proxied = new Dockerode({ host: "127.0.0.1", port, protocol: "http" });
  gw = await startGateway({ docker: proxied, poolMin: 1, poolMax: 1 });
});
afterAll(async () => {
  await gw?.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
});

describe("what airlock does goes through", () => {
  it("one-shot jobs, cold and from the warm pool, and a timeout kill", async () => {
    const first = await execOnce(gw, { profile: "shell", command: "echo one" });
    const second = await execOnce(gw, { profile: "python", code: "print(6 * 7)" });
    const killed = await execOnce(gw, {
      profile: "shell",
      command: "sleep 30",
      limits: { timeoutMs: 500 },
    });
    expect([first.stdout, second.stdout, killed.status]).toEqual(["one\n", "42\n", "timeout"]);
  });

  it("a workspace round trip", async () => {
    await workspaceRoundTrip(gw);
  });

  it("checkpoints: take, diff, restore, fork (system jobs mounting more volumes)", async () => {
    await checkpointRoundTrip(gw);
  });

  it("a job with its own limits on a parked container (docker update)", async () => {
    const result = await execOnce(gw, {
      profile: "shell",
      command: "echo limited",
      limits: { memoryMb: 128, pids: 32 },
    });
    expect(result).toMatchObject({ status: "ok", stdout: "limited\n" });
  });

  it("egress: a job on its own network, through the relay and the proxy, and every network removed", async () => {
    const suffix = randomUUID().slice(0, 8);
    const up = await startUpstream("unused", `airlock-sp-upstream-${suffix}`);
    const key = `egress-${randomUUID()}`;
    const egress = await startGateway({
      docker: proxied,
      egress: {},
      policy: {
        networks: { up: { allow: ["plain.test:8080"], resolve: { "plain.test": up.ip } } },
        tenants: { t: { keys: [{ hash: keyHash(key), scopes: ["exec"], networks: ["up"] }] } },
      },
    });
    try {
      const res = await egress.call(key, "POST", "/v1/exec", {
        profile: "shell",
        command: ["curl", "-sS", "http://plain.test:8080/"],
        networks: ["up"],
      });
      expect(await res.json()).toMatchObject({
        status: "ok",
        stdout: "hello from upstream\n",
        egress: [{ host: "plain.test", decision: "allowed" }],
      });
      expect(refusals).toEqual([]);
    } finally {
      await egress.close();
      await up.stop();
    }
    expect(await egress.leftovers()).toEqual({ containers: 0, volumes: 0 });
    const label = { label: [`airlock=${egress.instanceId}`] };
    expect(await direct.listNetworks({ filters: label })).toEqual([]);
  });

  it("gVisor: a job, and a workspace whose file containers name runsc", async () => {
    const gvisor = await startGateway({
      docker: proxied,
      profilesDir: join(POLICIES_DIR, "gvisor"),
    });
    try {
      const result = await execOnce(gvisor, { profile: "python-gvisor", code: "print(6 * 7)" });
      expect(result).toMatchObject({ status: "ok", stdout: "42\n" });
      const client = createClient({ baseUrl: gvisor.url, apiKey: gvisor.key });
      const { id } = await client.workspaces.create({
        profile: "shell-gvisor",
        files: [{ path: "a.txt", content: "x" }],
      });
      expect(await client.workspaces.readText(id, "a.txt")).toBe("x");
      await client.workspaces.delete(id);
    } finally {
      await gvisor.close();
    }
    expect(await gvisor.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });

  it("the emergency stop's marker volumes", async () => {
    const tenant = `proxy-test-${randomUUID().slice(0, 8)}`;
    const stopped = await gw.access.deps.stop.stop(tenant);
    expect(stopped.tenants.map((t) => t.tenant)).toContain(tenant);
    const resumed = await gw.access.deps.stop.resume(tenant);
    expect(resumed.tenants.map((t) => t.tenant)).not.toContain(tenant);
  });

  it("/readyz: the engine's version, info and images", async () => {
    const res = await fetch(`${gw.url}/readyz`);
    expect(res.status).toBe(200);
  });

  it("refused nothing airlock asked for", () => {
    expect(refusals).toEqual([]);
  });
});

describe("anything else is refused", () => {
  const status = (p: Promise<unknown>) =>
    p.then(
      () => "allowed",
      (err: { statusCode?: number; message?: string }) => `${err.statusCode}: ${err.message}`,
    );
  const python = loadProfiles().get("python");
  /** airlock's own create body for a job that never runs (each is refused before the engine). */
  const spec = (): { job: string; body: Obj; host: Obj } => {
    if (python === undefined) throw new Error("no python profile");
    const job = `proxy-refused-${randomUUID().slice(0, 8)}`;
    const body = structuredClone(
      containerSpec(python, python.limits.default, {
        instanceId: gw.instanceId,
        jobId: job,
        volume: `airlock-${job}`,
        deadline: Date.now() + 60_000,
      }),
    ) as Obj;
    return { job, body, host: body["HostConfig"] as Obj };
  };
  /** POSTs a create body as is (keys the typed client would never send included). */
  const createRaw = async (body: Obj, prefix = "") => {
    const res = await fetch(`${proxyUrl}${prefix}/containers/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return `${res.status}: ${((await res.json()) as { message: string }).message}`;
  };
  const containersOf = async (label: string) =>
    direct.listContainers({ all: true, filters: { label: [label] } });
  /** Removes what a create let through would have made (nothing, unless the proxy failed). */
  const cleanup = async (job: string) => {
    for (const c of await containersOf(`airlock.job=${job}`)) {
      await direct.getContainer(c.Id).remove({ force: true });
    }
    await direct
      .getVolume(`airlock-${job}`)
      .remove()
      .catch(() => undefined);
  };

  it.each<[string, (body: Obj, host: Obj) => void, string]>([
    ["User 0", (b) => (b["User"] = "0"), "User: must be a numeric uid:gid, neither of them 0"],
    ["MaskedPaths: []", (_, h) => (h["MaskedPaths"] = []), '"MaskedPaths" is not a field'],
    ["ReadonlyPaths: []", (_, h) => (h["ReadonlyPaths"] = []), '"ReadonlyPaths" is not a field'],
    [
      "an inline allow-all seccomp",
      (_, h) =>
        (h["SecurityOpt"] = [
          "no-new-privileges:true",
          'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
        ]),
      "none of the shipped ones",
    ],
    ["CgroupParent", (_, h) => (h["CgroupParent"] = "/"), '"CgroupParent" is not a field'],
    [
      "DeviceCgroupRules",
      (_, h) => (h["DeviceCgroupRules"] = ["a *:* rwm"]),
      '"DeviceCgroupRules" is not a field',
    ],
    ["a privileged container", (_, h) => (h["Privileged"] = true), '"Privileged" is not a field'],
    ["a bind mount of /", (_, h) => (h["Binds"] = ["/:/host"]), '"Binds" is not a field'],
    ["the host's network", (_, h) => (h["NetworkMode"] = "host"), "NetworkMode must be none"],
    ["the host's pid namespace", (_, h) => (h["PidMode"] = "host"), '"PidMode" is not a field'],
    ["an added capability", (_, h) => (h["CapAdd"] = ["SYS_ADMIN"]), '"CapAdd" is not a field'],
    [
      "seccomp unconfined",
      (_, h) => (h["SecurityOpt"] = ["no-new-privileges:true", "seccomp=unconfined"]),
      "none of the shipped ones",
    ],
    ['"user": "0" beside User', (b) => (b["user"] = "0"), "differ only in case"],
    ['"privileged": true', (_, h) => (h["privileged"] = true), '"privileged" is not a field'],
    [
      '"\u017fecurityOpt" (long s, which the engine folds to "s")',
      (_, h) => (h["\u017fecurityOpt"] = ["seccomp=unconfined"]),
      "differ only in case",
    ],
  ])("creating with %s", async (_what, edit, message) => {
    const { job, body, host } = spec();
    edit(body, host);
    try {
      const result = await createRaw(body);
      expect(result).toMatch(/^403: /);
      expect(result).toContain(message);
      expect(await containersOf(`airlock.job=${job}`)).toEqual([]);
    } finally {
      await cleanup(job);
    }
  });

  it("creating with a mount of a volume that is not airlock's", async () => {
    const foreign = `proxy-foreign-${randomUUID().slice(0, 8)}`;
    await direct.createVolume({ Name: foreign, Labels: { "airlock.test-foreign": foreign } });
    try {
      const { job, body, host } = spec();
      const [mount] = host["Mounts"] as Obj[];
      host["Mounts"] = [{ ...mount, Source: foreign }];
      try {
        expect(await createRaw(body)).toBe(
          `403: airlock socket proxy: HostConfig.Mounts: volume ${foreign} is not airlock's`,
        );
        expect(await containersOf(`airlock.job=${job}`)).toEqual([]);
      } finally {
        await cleanup(job);
      }
    } finally {
      await direct.getVolume(foreign).remove();
    }
  });

  it("creating a container without airlock's label", async () => {
    const { body } = spec();
    body["Labels"] = {};
    expect(await status(proxied.createContainer(body))).toContain("must carry the airlock label");
  });

  it("a start that carries a HostConfig under an old API version", async () => {
    const { job, body } = spec();
    const created = (await (
      await fetch(`${proxyUrl}/containers/create?name=airlock-${job}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })
    ).json()) as { Id: string };
    try {
      // A read-only bind of an empty directory: what a start let through would do, harmlessly.
      const res = await fetch(`${proxyUrl}/v1.23/containers/${created.Id}/start`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ Binds: [`${mkdtempSync(join(tmpdir(), "airlock-"))}:/host:ro`] }),
      });
      expect(res.status).toBe(403);
      const info = await direct.getContainer(created.Id).inspect();
      expect([info.State.Status, info.HostConfig.Binds, info.HostConfig.Privileged]).toEqual([
        "created",
        null,
        false,
      ]);
    } finally {
      await cleanup(job);
    }
  });

  // The engine answers these with a plain HTTP error and goes on reading
  // requests on the connection (a missing container it answers hijacked, and closes).
  it.each([
    ["a malformed query", (id: string) => `/containers/${id}/attach?stream=1&%zz`],
    ["an API version too new", (id: string) => `/v9.99/containers/${id}/attach?stream=1`],
  ])(
    "a request sent after an attach refused for %s never reaches the engine",
    async (_what, url) => {
      const { job, body } = spec();
      const created = await proxied.createContainer(body);
      const smuggled = JSON.stringify({
        Image: "airlock/shell:1",
        Cmd: ["true"],
        Labels: { airlock: gw.instanceId, "airlock.job": `${job}-smuggled` },
        HostConfig: { Privileged: true },
      });
      try {
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = connect(Number(new URL(proxyUrl).port), "127.0.0.1");
          const chunks: Buffer[] = [];
          socket.on("data", (c: Buffer) => chunks.push(c));
          socket.on("close", () => resolve(Buffer.concat(chunks).toString()));
          socket.on("error", reject);
          socket.write(
            `POST ${url(created.id)} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n` +
              `POST /containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(smuggled)}\r\n\r\n${smuggled}`,
          );
          setTimeout(() => socket.end(), 2000);
        });
        expect(answer).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer).not.toContain("HTTP/1.1 201");
        expect(await containersOf(`airlock.job=${job}-smuggled`)).toEqual([]);
      } finally {
        await cleanup(`${job}-smuggled`);
        await cleanup(job);
      }
    },
  );

  it("calls airlock never makes", async () => {
    expect(await status(proxied.listImages())).toMatch(
      /^403: .*GET \/images\/json is not a call airlock makes/,
    );
    expect(await status(proxied.getEvents({ since: 0, until: 1 }))).toMatch(/^403/);
    expect(await status(proxied.pruneContainers())).toMatch(/^403/);
    expect(await status(proxied.buildImage(Buffer.alloc(0) as never, { t: "x" }))).toMatch(/^403/);
  });

  it("touching a container that is not airlock's", async () => {
    const foreign = await direct.createContainer({ Image: "airlock/shell:1", Cmd: ["true"] });
    try {
      const via = proxied.getContainer(foreign.id);
      expect(await status(via.inspect())).toMatch(/^403: .*not airlock's/);
      expect(await status(via.remove({ force: true }))).toMatch(/^403/);
      expect(await status(via.start())).toMatch(/^403/);
      expect(await status(via.exec({ Cmd: ["id"] }))).toMatch(/^403/);
      // Still there: the proxy did not let the removal through.
      expect((await foreign.inspect()).Id).toBe(foreign.id);
    } finally {
      await foreign.remove({ force: true });
    }
  });
});
