// The filtering socket proxy (deploy/socket-proxy.ts) in front of the real
// engine: a gateway that reaches Docker only through it runs one-shot jobs
// (warm pool and attach included), kills on timeout, works with workspaces
// and cleans up; calls airlock never makes, and creates that would escape the
// hardening, are refused with 403, as is any touch of a container not airlock's.
import type { AddressInfo } from "node:net";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSocketProxy } from "../../deploy/socket-proxy.ts";
import { execOnce, workspaceRoundTrip } from "../support/airlock-calls.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let proxy: ReturnType<typeof createSocketProxy>;
let proxied: Dockerode;
let gw: TestGateway;
const refusals: string[] = [];

beforeAll(async () => {
  proxy = createSocketProxy({ upstream: "/var/run/docker.sock", log: (l) => refusals.push(l) });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
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
  const spec = {
    Image: "airlock/shell:1",
    Cmd: ["true"],
    Labels: { airlock: "proxy-test" },
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
    },
  };

  it.each([
    ["a privileged container", { Privileged: true }, "privileged containers are not allowed"],
    ["a bind mount of /", { Binds: ["/:/host"] }, "bind mounts are not allowed"],
    ["the host's network", { NetworkMode: "host" }, "NetworkMode must be none"],
    ["the host's pid namespace", { PidMode: "host" }, "may not share the host's"],
    ["an added capability", { CapAdd: ["SYS_ADMIN"] }, "added capabilities are not allowed"],
    [
      "seccomp unconfined",
      { SecurityOpt: ["no-new-privileges:true", "seccomp=unconfined"] },
      "unconfined",
    ],
  ])("creating %s", async (_what, hostConfig, message) => {
    const result = await status(
      proxied.createContainer({ ...spec, HostConfig: { ...spec.HostConfig, ...hostConfig } }),
    );
    expect(result).toMatch(/^403: /);
    expect(result).toContain(message);
  });

  it("creating a container without airlock's label", async () => {
    const result = await status(proxied.createContainer({ ...spec, Labels: {} }));
    expect(result).toContain("must carry the airlock label");
  });

  it("calls airlock never makes", async () => {
    expect(await status(proxied.listImages())).toMatch(
      /^403: .*GET \/images\/json is not a call airlock makes/,
    );
    expect(await status(proxied.getEvents({ since: 0, until: 1 }))).toMatch(/^403/);
    expect(await status(proxied.pruneContainers())).toMatch(/^403/);
    expect(await status(proxied.buildImage(Buffer.alloc(0) as never, { t: "x" }))).toMatch(/^403/);
  });

  it("touching a container that is not airlock's", async () => {
    const direct = new Dockerode();
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
