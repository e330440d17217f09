// The engine goes away under a running gateway: every route that needs it —
// workspaces and files, not only exec — answers 503 docker_unavailable with
// the documented body, never 500; when the engine is back the gateway serves
// again by itself. The gateway reaches the real engine through a unix-socket
// relay this test owns, so closing the relay takes the engine away from this
// gateway alone, not from the other tests sharing the engine.
import { randomUUID } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const socketPath = join(tmpdir(), `airlock-relay-${randomUUID().slice(0, 8)}.sock`);
let relay: { server: Server; sockets: Set<Socket> } | undefined;
let gw: TestGateway;

/** Relays each connection on `socketPath` to the engine's own socket. */
function openRelay(): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const engine = createConnection("/var/run/docker.sock");
    for (const s of [client, engine]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(engine).pipe(client);
  });
  relay = { server, sockets };
  return new Promise((resolve) => server.listen(socketPath, resolve));
}

/** The engine vanishes for this gateway: the socket file is gone, live connections are cut. */
async function closeRelay(): Promise<void> {
  if (relay === undefined) return;
  const { server, sockets } = relay;
  relay = undefined;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

beforeAll(async () => {
  await openRelay();
  gw = await startGateway({ docker: new Dockerode({ socketPath }) });
});
afterAll(async () => {
  if (relay === undefined) await openRelay();
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  await closeRelay();
});

async function expectUnavailable(res: Response, what: string): Promise<void> {
  const body = (await res.json()) as { error?: { code?: string; message?: string } };
  expect({ what, status: res.status, code: body.error?.code }).toEqual({
    what,
    status: 503,
    code: "docker_unavailable",
  });
  expect(body.error?.message).toMatch(/Docker engine/);
  expect(res.headers.get("retry-after")).toBe("5");
}

it("answers 503 docker_unavailable on every engine-backed route while the engine is away", async () => {
  const made = await gw.post("/v1/workspaces", { profile: "shell" });
  expect(made.status).toBe(201);
  const { id } = (await made.json()) as { id: string };
  const put = await gw.call(gw.key, "PUT", `/v1/workspaces/${id}/files/content?path=a.txt`);
  expect(put.status).toBe(200);

  await closeRelay();
  const calls: [string, string, string, unknown?][] = [
    ["create a workspace", "POST", "/v1/workspaces", { profile: "shell" }],
    ["get a workspace", "GET", `/v1/workspaces/${id}`],
    ["list files", "GET", `/v1/workspaces/${id}/files`],
    ["read a file", "GET", `/v1/workspaces/${id}/files/content?path=a.txt`],
    ["export the archive", "GET", `/v1/workspaces/${id}/archive`],
    ["exec in the workspace", "POST", `/v1/workspaces/${id}/exec`, { command: ["true"] }],
    ["exec", "POST", "/v1/exec", { profile: "shell", command: ["true"] }],
    ["delete the workspace", "DELETE", `/v1/workspaces/${id}`],
  ];
  for (const [what, method, path, body] of calls) {
    await expectUnavailable(await gw.call(gw.key, method, path, body), what);
  }

  await openRelay();
  const back = await gw.call(gw.key, "GET", `/v1/workspaces/${id}/files/content?path=a.txt`);
  expect(back.status).toBe(200);
  expect((await gw.call(gw.key, "DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
});
