// Clients that go away half-way: an upload (PUT a file, PUT an archive) whose
// body is cut off, an SSE exec abandoned after its first events, an archive
// download dropped after its first bytes. The gateway writes nothing half-made
// into the workspace (no partial file, no staging directory), keeps serving,
// and its memory stays within a bound however many times it happens; nor
// should it count the client's leaving as its own fault. An abandoned stream's
// job runs on by contract (docs/api.md: the client may come back for it), so
// the round then cancels it as an agent would, by its execution's Location,
// and the containers must go.
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { MainProcess } from "../support/main-process.ts";
import { metricValue, parseMetrics } from "../support/metrics.ts";
import { makeTar } from "../support/tar.ts";
import {
  airlockObjects,
  call,
  listing,
  newWorkspace,
  rssBytes,
  spawnChaosMain,
  until,
} from "./gateway.ts";

const MB = 1024 * 1024;
/** Declared body sizes; half of each is sent. */
const FILE_BYTES = 16 * MB;
const ROUNDS = 4;
/** Growth of the gateway's resident memory allowed over all rounds after the first. */
const RSS_BOUND = 64 * MB;

let gw: MainProcess;
let ws: string;
let archive: Buffer;
const ORIGINAL = ["dir", "dir/b.txt", "keep.txt"];

beforeAll(async () => {
  gw = await spawnChaosMain();
  ws = await newWorkspace(gw, [
    { path: "keep.txt", content: "original\n" },
    { path: "dir/b.txt", content: "b\n" },
  ]);
  archive = await makeTar([
    { name: "replaced.txt", body: "from the archive\n" },
    { name: "big.bin", body: randomBytes(FILE_BYTES) },
  ]);
});
afterAll(async () => {
  await call(gw, "DELETE", `/v1/workspaces/${ws}`).catch(() => {});
  gw.child.kill("SIGTERM");
  await gw.exited;
  expect(await gw.leftovers()).toEqual({ containers: [], volumes: [] });
  await gw.kill();
});

/**
 * A PUT whose body stops half-way and whose connection is then dropped:
 * with a Content-Length the gateway waits for bytes that never come; chunked,
 * it never sees the last chunk. Resolves with the status if one came first.
 */
function cutUpload(path: string, body: Buffer, chunked: boolean): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({
      host: "127.0.0.1",
      port: gw.port,
      method: "PUT",
      path,
      headers: {
        authorization: `Bearer ${gw.key}`,
        "content-type": "application/octet-stream",
        ...(chunked ? {} : { "content-length": String(body.length) }),
      },
    });
    let status: number | undefined;
    req.on("response", (res) => {
      status = res.statusCode;
      res.resume();
    });
    req.on("error", () => resolve(status));
    req.on("close", () => resolve(status));
    req.write(body.subarray(0, body.length >> 1), () => {
      // Long enough for the gateway to be reading the body when the client goes.
      setTimeout(() => req.destroy(), 300);
    });
  });
}

/** Opens a response, reads until `enough` says so, then drops the connection. */
async function abandon(res: Response, enough: (seen: string) => boolean): Promise<string> {
  if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
  if (res.body === null) throw new Error(`no body: ${res.status}`);
  const reader = res.body.getReader();
  let seen = "";
  while (!enough(seen)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the response ended before the client gave up: ${seen.slice(-200)}`);
    seen += Buffer.from(value).toString("latin1");
  }
  await reader.cancel();
  return seen;
}

/** Two minutes of output unless cancelled: containers gone sooner prove the cancellation. */
const LONG_JOB = "for i in $(seq 1 1200); do echo tick $i; sleep 0.1; done";
const LONG_LIMITS = { timeoutMs: 180_000 };
const SETTLE_MS = 15_000;

/** One round of every kind of disconnect. */
async function round(): Promise<void> {
  const file = randomBytes(FILE_BYTES);
  for (const chunked of [false, true]) {
    const put = (path: string, body: Buffer) => cutUpload(path, body, chunked);
    expect(await put(`/v1/workspaces/${ws}/files/content?path=keep.txt`, file)).toBeUndefined();
    expect(await put(`/v1/workspaces/${ws}/files/content?path=new.bin`, file)).toBeUndefined();
    expect(await put(`/v1/workspaces/${ws}/archive`, archive)).toBeUndefined();
  }
  const oneShot = { profile: "shell", command: LONG_JOB, limits: LONG_LIMITS };
  await abandonThenCancel("/v1/exec", oneShot);
  const inWorkspace = { command: LONG_JOB, limits: LONG_LIMITS };
  await abandonThenCancel(`/v1/workspaces/${ws}/exec`, inWorkspace);
  const download = await call(gw, "GET", `/v1/workspaces/${ws}/archive`);
  await abandon(download, (seen) => seen.length > 0);
}

/**
 * Streams a long job, drops the stream after its first output, finds the job
 * still running without a client, and cancels it through its execution.
 */
async function abandonThenCancel(path: string, body: object): Promise<void> {
  const res = await call(gw, "POST", path, body, { headers: { accept: "text/event-stream" } });
  const location = res.headers.get("location");
  if (location === null) throw new Error(`no Location on the stream of ${path}`);
  await abandon(res, (seen) => seen.includes("event: stdout"));
  const execution = await (await call(gw, "GET", location)).json();
  expect(execution).toMatchObject({ status: "running" });
  const cancelled = await call(gw, "DELETE", location);
  expect(await cancelled.json()).toMatchObject({ status: "cancelled" });
}

/** Nothing but live parked containers (and their volumes) on the engine. */
function settled(o: Awaited<ReturnType<typeof airlockObjects>>): boolean {
  const parked = o.containers.filter((c) => c.job.startsWith("park-") && c.state === "running");
  const volumes = new Set(parked.map((c) => `airlock-${c.job}`));
  return parked.length === o.containers.length && o.volumes.every((v) => volumes.has(v));
}

it("cut uploads and abandoned streams leave no partial file, no container, bounded memory", async () => {
  await round();
  await until("the first round's containers to go", airlockObjects, settled, SETTLE_MS);
  const before = rssBytes(gw.child.pid ?? 0);
  for (let i = 1; i < ROUNDS; i++) await round();
  await until("every round's containers to go", airlockObjects, settled, SETTLE_MS);
  const growth = rssBytes(gw.child.pid ?? 0) - before;
  expect(growth).toBeLessThan(RSS_BOUND);

  // Nothing half-written: the workspace holds exactly what it was made with.
  expect(await listing(gw, ws)).toEqual(ORIGINAL);
  const res = await call(gw, "POST", `/v1/workspaces/${ws}/exec`, {
    command: "ls -A; cat keep.txt",
  });
  expect(await res.json()).toMatchObject({ status: "ok", stdout: "dir\nkeep.txt\noriginal\n" });

  // It serves as before.
  const after = await call(gw, "POST", "/v1/exec", { profile: "shell", command: ["echo", "ok"] });
  expect(await after.json()).toMatchObject({ status: "ok", stdout: "ok\n" });
});

// A client that goes away mid-upload is not a fault of the gateway's: the
// route's body read rejects with Node's "aborted", and app.onError sees the
// request's signal aborted, so nothing is logged as "request failed" nor
// counted in airlock_http_errors_total{code="internal"} (an operator's alert
// on internal errors must not fire on flaky clients).
it("counts no cut upload as an internal error of its own", async () => {
  const metrics = parseMetrics(await (await call(gw, "GET", "/metrics")).text());
  expect(metricValue(metrics, "airlock_http_requests_total")).toBeGreaterThan(ROUNDS * 6);
  expect(metricValue(metrics, "airlock_http_errors_total", { code: "internal" })).toBe(0);
});
