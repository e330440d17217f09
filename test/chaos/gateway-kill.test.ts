// The gateway process (main.ts) is SIGKILLed while one-shot jobs, a workspace
// job and file operations run: no graceful stop, no cleanup of its own. The
// next start with the same instance id (AIRLOCK_INSTANCE_ID) reaps every
// container the dead one left, and its workspaces — Docker volumes — are all
// there, with every write it acknowledged, and usable through the new process.
import { randomBytes } from "node:crypto";
import { afterAll, expect, it } from "vitest";
import type { MainProcess } from "../support/main-process.ts";
import { metricValue, parseMetrics } from "../support/metrics.ts";
import { airlockObjects, call, listing, newWorkspace, spawnChaosMain, until } from "./gateway.ts";

const INSTANCE = `chaos-kill-${randomBytes(4).toString("hex")}`;
const KEY = `chaos-kill-key-${randomBytes(8).toString("hex")}`;
const started: MainProcess[] = [];

async function start(): Promise<MainProcess> {
  const gw = await spawnChaosMain({ instanceId: INSTANCE, key: KEY });
  started.push(gw);
  return gw;
}

afterAll(async () => {
  // Only after a failure does anything remain to kill or remove.
  for (const gw of started) await gw.kill();
});

async function jobsRunning(gw: MainProcess): Promise<number> {
  const res = await call(gw, "GET", "/metrics");
  return metricValue(parseMetrics(await res.text()), "airlock_jobs_running");
}

/** Resolves at the stream's first stdout event; the rest is read (and lost) in the background. */
async function firstOutput(res: Response): Promise<void> {
  if (res.body === null) throw new Error(`no stream: ${res.status}`);
  const reader = res.body.getReader();
  let text = "";
  while (!text.includes("event: stdout")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the stream ended before any output: ${text}`);
    text += Buffer.from(value).toString();
  }
  void (async () => {
    while (!(await reader.read().catch(() => ({ done: true }))).done);
  })();
}

/** Writes files one after another until the process dies; the paths it acknowledged (filled as they are). */
async function writeUntilDead(
  gw: MainProcess,
  id: string,
  acknowledged: Map<string, string>,
): Promise<Map<string, string>> {
  for (let i = 0; i < 500; i++) {
    const path = `put-${i}.txt`;
    const content = `${path} ${randomBytes(512).toString("hex")}\n`;
    try {
      const res = await call(
        gw,
        "PUT",
        `/v1/workspaces/${id}/files/content?path=${path}`,
        Buffer.from(content),
      );
      if (res.status !== 200) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
      acknowledged.set(path, content);
    } catch (err) {
      // The cut connection may be seen before the child's exit is.
      const dead = await Promise.race([
        gw.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
      ]);
      if (!dead) throw err;
      return acknowledged;
    }
  }
  throw new Error("the gateway was still alive after 500 writes");
}

/**
 * Starts what is under way at the moment of the kill: two one-shot jobs, a
 * workspace job appending to a file (streamed, to know it has written), a
 * stream of file writes and archive exports. Resolves once all of it runs,
 * with what settles after the kill: the writes the gateway acknowledged.
 */
async function startWork(
  gw: MainProcess,
  logged: string,
  written: string,
): Promise<() => Promise<Map<string, string>>> {
  const inFlight = [
    call(gw, "POST", "/v1/exec", { profile: "shell", command: "sleep 60" }),
    call(gw, "POST", "/v1/exec", { profile: "shell", command: "sleep 60" }),
  ].map((p) => p.catch((err: unknown) => err));
  const appending = await call(
    gw,
    "POST",
    `/v1/workspaces/${logged}/exec`,
    {
      command: "for i in $(seq 1 600); do echo line $i >> log.txt; echo line $i; sleep 0.1; done",
      limits: { timeoutMs: 120_000 },
    },
    { headers: { accept: "text/event-stream" } },
  );
  const appended = firstOutput(appending);
  const acknowledged = new Map<string, string>();
  const writes = writeUntilDead(gw, written, acknowledged);
  const exports = (async () => {
    while (gw.child.signalCode === null) {
      const res = await call(gw, "GET", `/v1/workspaces/${written}/archive`).catch(() => null);
      await res?.arrayBuffer().catch(() => null);
    }
  })();
  await appended;
  await until(
    "three jobs running",
    () => jobsRunning(gw),
    (n) => n >= 3,
  );
  // The kill lands mid-writes: at least one acknowledged before it (the jobs
  // can be running before a first write's file container has answered).
  await until(
    "a write acknowledged",
    async () => acknowledged.size,
    (n) => n >= 1,
  );
  return async () => {
    await Promise.all([...inFlight, exports]);
    return writes;
  };
}

/** Both workspaces through the new process: every acknowledged write, whole; usable. */
async function expectIntact(
  gw: MainProcess,
  logged: string,
  written: string,
  acknowledged: Map<string, string>,
): Promise<void> {
  const read = (path: string) =>
    call(gw, "GET", `/v1/workspaces/${written}/files/content?path=${path}`);
  for (const [path, content] of acknowledged) {
    const res = await read(path);
    expect({ path, status: res.status, content: await res.text() }).toEqual({
      path,
      status: 200,
      content,
    });
  }
  // A write cut by the kill either landed whole or not at all.
  for (const extra of (await listing(gw, written)).filter((p) => !acknowledged.has(p))) {
    expect(await (await read(extra)).text()).toMatch(new RegExp(`^${extra} [0-9a-f]{1024}\\n$`));
  }
  expect(await listing(gw, logged)).toEqual(["log.txt", "notes.txt"]);
  const used = await call(gw, "POST", `/v1/workspaces/${logged}/exec`, {
    command: "cat notes.txt; head -n 1 log.txt; echo after the kill >> notes.txt",
  });
  expect(await used.json()).toMatchObject({
    status: "ok",
    stdout: "before the kill\nline 1\n",
  });
  const exported = await call(gw, "GET", `/v1/workspaces/${written}/archive`);
  expect(exported.status).toBe(200);
  expect((await exported.arrayBuffer()).byteLength).toBeGreaterThan(acknowledged.size * 1024);
}

it("SIGKILL mid-work: the next start with the same instance id reaps every leftover; workspaces stay intact and usable", async () => {
  const first = await start();
  const logged = await newWorkspace(first, [{ path: "notes.txt", content: "before the kill\n" }]);
  const written = await newWorkspace(first);
  const settle = await startWork(first, logged, written);

  first.child.kill("SIGKILL");
  await first.exited;
  const acknowledged = await settle();
  expect(acknowledged.size).toBeGreaterThan(0);
  const orphaned = (await airlockObjects()).containers.filter((c) => c.instance === INSTANCE);
  // The jobs' containers at least (else this test proved nothing).
  expect(orphaned.filter((c) => c.state === "running").length).toBeGreaterThanOrEqual(3);

  // Same instance id: its start-up reap removes every one of them before it serves.
  const second = await start();
  const now = await airlockObjects();
  expect(now.containers.filter((c) => orphaned.some((o) => o.id === c.id))).toEqual([]);
  const oldVolumes = new Set(orphaned.map((c) => `airlock-${c.job}`));
  expect(now.volumes.filter((v) => oldVolumes.has(v))).toEqual([]);

  await expectIntact(second, logged, written, acknowledged);
  for (const id of [logged, written]) {
    expect((await call(second, "DELETE", `/v1/workspaces/${id}`)).status).toBe(204);
  }
  second.child.kill("SIGTERM");
  await second.exited;
  expect(await second.leftovers()).toEqual({ containers: [], volumes: [] });
});
