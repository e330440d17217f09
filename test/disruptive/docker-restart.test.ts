// The Docker daemon restarted under a running job: the job ends with a clear
// 503 docker_unavailable (or a failed result), requests while the engine is
// down get 503, and once it is back the gateway works again by itself. This
// stops the engine for everyone, so it runs alone, after every other test.
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import Dockerode from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const docker = new Dockerode();
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await engineUp();
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function engineUp(timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await docker.ping().then(
        () => true,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("dockerd did not come back");
}

function dockerdPid(): Promise<number | undefined> {
  return new Promise((resolve) => {
    const p = spawn("pgrep", ["-x", "dockerd"]);
    let out = "";
    p.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    p.on("close", () => resolve(out.trim() === "" ? undefined : Number(out.trim().split("\n")[0])));
  });
}

/** Stops dockerd and starts it again the way .ci/provision.sh does. */
async function restartDockerd(): Promise<void> {
  const pid = await dockerdPid();
  if (pid === undefined) throw new Error("no dockerd process to restart");
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while ((await dockerdPid()) !== undefined && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const logFile = openSync("/var/log/airlock-dockerd.log", "a");
  spawn("dockerd", [], { detached: true, stdio: ["ignore", logFile, logFile] }).unref();
}

it("a job running when the daemon restarts ends clearly, and the gateway recovers by itself", async () => {
  const running = gw.post("/v1/exec", {
    profile: "shell",
    command: "sleep 30",
    limits: { timeoutMs: 60_000 },
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const list = await docker.listContainers({
      filters: { label: [`airlock=${gw.instanceId}`], status: ["running"] },
    });
    if (list.length > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await restartDockerd();

  const res = await running;
  const body = (await res.json()) as { status?: string; error?: { code: string; message: string } };
  // Either the engine's failure reached us (503) or the container's death did (a failed result).
  if (res.status === 503) expect(body.error?.code).toBe("docker_unavailable");
  else expect(res.status === 200 && body.status !== "ok").toBe(true);

  await engineUp();
  const after = await gw.post("/v1/exec", { profile: "shell", command: ["echo", "back"] });
  expect(after.status).toBe(200);
  expect(await after.json()).toMatchObject({ status: "ok", stdout: "back\n" });
}, 120_000);
