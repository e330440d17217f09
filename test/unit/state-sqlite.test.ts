// The embedded state store (state/sqlite.ts) on real SQLite files, a fresh
// temporary directory per test: every method, the rules it enforces (final
// statuses, tenants, idempotency ownership, bounds), migrations, a restart,
// two connections and two threads on one file, and the disk's failures.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AuditRecord,
  type StateStore,
  StoreConflictError,
  StoreUnavailableError,
  StoreVersionError,
} from "../../core/state.ts";
import {
  defaultDataDir,
  openSqliteState,
  type SqliteStateOptions,
  STATE_FILE,
} from "../../state/sqlite.ts";
import { Db } from "../../state/sqlite-db.ts";
import { MIGRATIONS, migrate } from "../../state/sqlite-schema.ts";

let dir: string;
const opened: StateStore[] = [];
const LATEST = MIGRATIONS.at(-1)?.version ?? 0;
let t = 1_800_000_000_000;
const clock = { now: () => t, advance: (ms: number) => (t += ms) };

async function open(options: SqliteStateOptions = {}): Promise<StateStore> {
  const store = await openSqliteState({ dataDir: dir, now: clock.now, ...options });
  opened.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "airlock-state-"));
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const bytes = (s: string) => Buffer.from(s);
const text = (d: Uint8Array) => Buffer.from(d).toString();

function audit(fields: Partial<AuditRecord>): AuditRecord {
  return {
    time: new Date(t).toISOString(),
    requestId: null,
    op: "exec",
    method: "POST",
    path: "/v1/exec",
    tenant: "a",
    keyId: "k",
    scope: "exec",
    profile: "shell",
    workspace: null,
    commandDigest: null,
    status: "ok",
    httpStatus: 200,
    exitCode: 0,
    durationMs: 5,
    bytesIn: 10,
    bytesOut: 10,
    approvalId: null,
    ...fields,
  };
}

describe("opening", () => {
  it("creates the directory and the file, and reopens the same schema", async () => {
    const nested = join(dir, "a", "b");
    const s = await openSqliteState({ dataDir: nested });
    await s.close();
    await s.close(); // twice is harmless
    const again = await openSqliteState({ dataDir: nested });
    await again.close();
    // Tenants' results and audit records: readable by the owner only.
    expect(statSync(join(nested, STATE_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(nested).mode & 0o777).toBe(0o700);
    const raw = new DatabaseSync(join(nested, STATE_FILE));
    expect(raw.prepare("SELECT version FROM schema_migrations").all()).toEqual(
      MIGRATIONS.map((m) => ({ version: m.version })),
    );
    expect(raw.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(raw.prepare("PRAGMA user_version").get()).toEqual({ user_version: LATEST });
    raw.close();
  });

  it("defaults to $XDG_STATE_HOME/airlock, else ~/.local/state/airlock", () => {
    expect(defaultDataDir({ XDG_STATE_HOME: "/x/state", HOME: "/home/u" })).toBe(
      "/x/state/airlock",
    );
    expect(defaultDataDir({ XDG_STATE_HOME: "relative", HOME: "/home/u" })).toBe(
      "/home/u/.local/state/airlock",
    );
    expect(defaultDataDir({ HOME: "/home/u" })).toBe("/home/u/.local/state/airlock");
  });

  it("refuses a file written by a newer airlock, and changes nothing", async () => {
    await (await open()).close();
    const raw = new DatabaseSync(join(dir, STATE_FILE));
    raw.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    raw.close();
    const err = await openSqliteState({ dataDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreVersionError);
    expect((err as Error).message).toMatch(
      new RegExp(`schema version 99.*newer airlock.*up to ${LATEST}`),
    );
  });

  it("applies a new migration once, after the ones already applied", async () => {
    await (await open()).close();
    const next = LATEST + 1;
    const extra = [...MIGRATIONS, { version: next, name: "extra", sql: "CREATE TABLE extra (x)" }];
    for (let i = 0; i < 2; i++) {
      const db = new Db(new DatabaseSync(join(dir, STATE_FILE)), "f");
      expect(migrate(db, extra)).toBe(next);
      expect(db.raw.prepare("SELECT count(*) AS n FROM schema_migrations").get()).toEqual({
        n: MIGRATIONS.length + 1,
      });
      db.close();
    }
  });
});

describe("executions", () => {
  it("runs a lifecycle, stamping the times, and keeps the result", async () => {
    const s = await open();
    const created = await s.executions.create({
      id: "e1",
      tenant: "a",
      profile: "shell",
      workspace: "ws1",
      instanceId: "gw1",
    });
    expect(created).toMatchObject({ id: "e1", status: "queued", workspace: "ws1", outputBytes: 0 });
    expect(created.startedAt).toBeUndefined();
    clock.advance(10);
    const running = await s.executions.transition("e1", "running");
    expect(running?.changed).toBe(true);
    expect(running?.record.startedAt).toBe(new Date(t).toISOString());
    clock.advance(10);
    const done = await s.executions.transition("e1", "done", { result: { stdout: "hi" } });
    expect(done?.record).toMatchObject({ status: "done", result: { stdout: "hi" } });
    expect(done?.record.endedAt).toBe(new Date(t).toISOString());
    expect(await s.executions.get("a", "e1")).toEqual(done?.record);
  });

  it("never leaves a final status, and never goes back to queued", async () => {
    const s = await open();
    await s.executions.create({ id: "q", tenant: "a", profile: "p", instanceId: "gw" });
    // (queued → done, a short job's one write, is in the contract suite.)
    const back = await s.executions.transition("q", "queued");
    expect(back).toMatchObject({ changed: false, record: { status: "queued" } });
    await s.executions.transition("q", "cancelled", {
      error: { code: "internal", message: "cancelled by the caller" },
    });
    for (const to of ["queued", "running", "done", "failed", "lost", "cancelled"] as const) {
      const r = await s.executions.transition("q", to, { result: { late: true } });
      expect(r).toMatchObject({ changed: false, record: { status: "cancelled" } });
      expect(r?.record.result).toBeUndefined();
    }
    expect(await s.executions.transition("nope", "running")).toBeUndefined();
  });

  it("refuses a second create of the same id", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await expect(
      s.executions.create({ id: "e", tenant: "b", profile: "p", instanceId: "gw" }),
    ).rejects.toBeInstanceOf(StoreConflictError);
    expect((await s.executions.get("a", "e"))?.tenant).toBe("a");
  });

  it("hides another tenant's executions from get, list, transition and output", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    expect(await s.executions.get("b", "e")).toBeUndefined();
    expect(await s.executions.list("b", { limit: 10 })).toEqual([]);
    expect(await s.executions.transition("e", "cancelled", { tenant: "b" })).toBeUndefined();
    expect(await s.output.read("b", "e")).toBeUndefined();
    expect((await s.executions.get("a", "e"))?.status).toBe("queued");
  });

  it("lists newest first, filtered by status and workspace, without results", async () => {
    const s = await open();
    for (const [id, ws] of [
      ["e1", "w1"],
      ["e2", undefined],
      ["e3", "w1"],
      ["e4", "w2"],
    ] as const) {
      await s.executions.create({ id, tenant: "a", profile: "p", workspace: ws, instanceId: "gw" });
      clock.advance(1);
    }
    await s.executions.create({ id: "same-ms", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e3", "running");
    await s.executions.transition("e3", "done", { result: { big: "x" } });
    const ids = async (q: Parameters<StateStore["executions"]["list"]>[1]) =>
      (await s.executions.list("a", q)).map((e) => e.id);
    expect(await ids({ limit: 10 })).toEqual(["same-ms", "e4", "e3", "e2", "e1"]);
    expect(await ids({ limit: 2 })).toEqual(["same-ms", "e4"]);
    expect(await ids({ workspace: "w1", limit: 10 })).toEqual(["e3", "e1"]);
    expect(await ids({ status: "done", limit: 10 })).toEqual(["e3"]);
    expect(await ids({ status: "queued", workspace: "w1", limit: 10 })).toEqual(["e1"]);
    expect((await s.executions.list("a", { status: "done", limit: 1 }))[0]).not.toHaveProperty(
      "result",
    );
  });

  it("does not keep a result over the cap, and says how large it was", async () => {
    const s = await open({ limits: { maxResultBytes: 100 } });
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "running");
    const big = { stdout: "x".repeat(200) };
    const r = await s.executions.transition("e", "done", { result: big });
    expect(r?.record.result).toBeUndefined();
    expect(r?.record.resultDroppedBytes).toBe(JSON.stringify(big).length);
  });

  it("marks an instance's open executions lost, and only those", async () => {
    const s = await open();
    for (const [id, gw] of [
      ["q1", "gw1"],
      ["r1", "gw1"],
      ["d1", "gw1"],
      ["r2", "gw2"],
    ] as const) {
      await s.executions.create({ id, tenant: "a", profile: "p", instanceId: gw });
    }
    await s.executions.transition("r1", "running");
    await s.executions.transition("r2", "running");
    await s.executions.transition("d1", "running");
    await s.executions.transition("d1", "done");
    const error = { code: "internal", message: "the gateway stopped" };
    expect(await s.executions.markLost("gw1", error)).toBe(2);
    const status = async (id: string) => (await s.executions.get("a", id))?.status;
    expect([
      await status("q1"),
      await status("r1"),
      await status("d1"),
      await status("r2"),
    ]).toEqual(["lost", "lost", "done", "running"]);
    expect((await s.executions.get("a", "r1"))?.error).toEqual(error);
    expect((await s.executions.get("a", "r1"))?.endedAt).toBeDefined();
    expect(await s.executions.markLost("gw1")).toBe(0);
  });

  it("purges executions (and their output) that ended before the retention, never open ones", async () => {
    const s = await open();
    for (const id of ["old", "open", "new"]) {
      await s.executions.create({ id, tenant: "a", profile: "p", instanceId: "gw" });
    }
    s.output.append("old", { seq: 1, stream: "stdout", data: bytes("x") });
    await s.executions.transition("old", "failed");
    clock.advance(60_000);
    await s.executions.transition("new", "failed");
    expect(await s.executions.purge(30_000)).toBe(1);
    expect(await s.executions.get("a", "old")).toBeUndefined();
    expect(await s.output.read("a", "old")).toBeUndefined();
    expect((await s.executions.list("a", { limit: 10 })).map((e) => e.id).sort()).toEqual([
      "new",
      "open",
    ]);
    const raw = new DatabaseSync(join(dir, STATE_FILE));
    expect(raw.prepare("SELECT count(*) AS n FROM output").get()).toEqual({ n: 0 });
    raw.close();
  });
});

describe("output", () => {
  it("replays from a sequence number on, a page at a time", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    for (let seq = 1; seq <= 5; seq++) {
      s.output.append("e", { seq, stream: seq % 2 ? "stdout" : "stderr", data: bytes(`c${seq}`) });
    }
    const all = await s.output.read("a", "e");
    expect(all?.events.map((e) => [e.seq, e.stream, text(e.data)])).toEqual([
      [1, "stdout", "c1"],
      [2, "stderr", "c2"],
      [3, "stdout", "c3"],
      [4, "stderr", "c4"],
      [5, "stdout", "c5"],
    ]);
    expect(all).toMatchObject({ storedBytes: 10, droppedBytes: 0, more: false });
    const page = await s.output.read("a", "e", { afterSeq: 2, limit: 2 });
    expect(page?.events.map((e) => e.seq)).toEqual([3, 4]);
    expect(page?.more).toBe(true);
    expect((await s.output.read("a", "e", { afterSeq: 5 }))?.events).toEqual([]);
  });

  it("copies the data, so the caller may reuse its buffer", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    const buf = Buffer.from("first");
    s.output.append("e", { seq: 1, stream: "stdout", data: buf });
    buf.write("XXXXX");
    expect(text((await s.output.read("a", "e"))?.events[0]?.data ?? new Uint8Array())).toBe(
      "first",
    );
  });

  it("keeps at most maxOutputBytes: the event that passes it and all later ones are dropped", async () => {
    const s = await open({ limits: { maxOutputBytes: 10 } });
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("123456") });
    s.output.append("e", { seq: 2, stream: "stdout", data: bytes("12345") }); // would make 11
    s.output.append("e", { seq: 3, stream: "stderr", data: bytes("1") }); // would fit, but after a drop
    await s.output.flush();
    s.output.append("e", { seq: 4, stream: "stdout", data: bytes("12") }); // a later batch too
    const page = await s.output.read("a", "e");
    expect(page?.events.map((e) => e.seq)).toEqual([1]);
    expect(page).toMatchObject({ storedBytes: 6, droppedBytes: 8 });
    await s.executions.transition("e", "failed");
    expect(await s.executions.get("a", "e")).toMatchObject({
      outputBytes: 6,
      outputDroppedBytes: 8,
    });
  });

  it("makes the output readable on a final transition, also to another connection", async () => {
    const s = await open({ outputFlushMs: 60_000, outputBatchEvents: 1000 });
    const other = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "running");
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("out") });
    expect((await other.output.read("a", "e"))?.events).toEqual([]);
    await s.executions.transition("e", "done");
    expect((await other.output.read("a", "e"))?.events.map((e) => text(e.data))).toEqual(["out"]);
  });

  it("writes a batch after flushMs, or at once past batchEvents", async () => {
    const s = await open({ outputFlushMs: 5, outputBatchEvents: 3 });
    const other = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("a") });
    await new Promise((r) => setTimeout(r, 50));
    expect((await other.output.read("a", "e"))?.events).toHaveLength(1);
    for (let seq = 2; seq <= 4; seq++)
      s.output.append("e", { seq, stream: "stdout", data: bytes("b") });
    expect((await other.output.read("a", "e"))?.events).toHaveLength(4);
  });

  it("keeps every byte as given though batches reuse one buffer, and one larger than a batch", async () => {
    const s = await open({ outputFlushMs: 60_000, outputBatchBytes: 10 });
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    const given = ["abcd", "efgh", "ijkl", "a much longer piece", "mnop", "qr"];
    given.forEach((t, i) => {
      const data = bytes(t);
      s.output.append("e", { seq: i + 1, stream: "stdout", data });
      data.fill(0x2a); // the caller's buffer, used again at once
    });
    await s.output.flush();
    const page = await s.output.read("a", "e");
    expect(page?.events.map((e) => text(e.data))).toEqual(given);
  });

  it("ignores a repeated seq and an unknown execution, and refuses a bad seq", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("one") });
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("again") });
    s.output.append("ghost", { seq: 1, stream: "stdout", data: bytes("boo") });
    await s.output.flush();
    const page = await s.output.read("a", "e");
    expect(page?.events.map((e) => text(e.data))).toEqual(["one"]);
    expect(page?.storedBytes).toBe(3);
    expect(() => s.output.append("e", { seq: 0, stream: "stdout", data: bytes("") })).toThrow(
      RangeError,
    );
    expect(() => s.output.append("e", { seq: 1.5, stream: "stdout", data: bytes("") })).toThrow(
      /seq/,
    );
  });
});

describe("idempotency", () => {
  const ttl = { ttlMs: 60_000, instanceId: "gw1" };

  it("begins, sees it in flight, completes, then replays the answer", async () => {
    const s = await open();
    const first = await s.idempotency.begin("a", "k", "fp", ttl);
    expect(first.state).toBe("new");
    if (first.state !== "new") return;
    expect(await s.idempotency.begin("a", "k", "fp", ttl)).toEqual({ state: "in_flight" });
    const answer = {
      status: 200,
      headers: { "content-type": "application/json" },
      body: bytes("{}"),
    };
    expect(await s.idempotency.complete("a", "k", first.token, answer)).toBe("stored");
    const again = await s.idempotency.begin("a", "k", "fp", ttl);
    expect(again).toMatchObject({ state: "done", status: 200, headers: answer.headers });
    expect(again.state === "done" && text(again.body)).toBe("{}");
    // The entry belongs to its tenant: the same key of another tenant is free.
    expect((await s.idempotency.begin("b", "k", "other", ttl)).state).toBe("new");
  });

  it("reports the same key with another request as a mismatch, in flight or done", async () => {
    const s = await open();
    const first = await s.idempotency.begin("a", "k", "fp1", ttl);
    expect(await s.idempotency.begin("a", "k", "fp2", ttl)).toEqual({ state: "mismatch" });
    if (first.state !== "new") throw new Error("expected new");
    await s.idempotency.complete("a", "k", first.token, {
      status: 201,
      headers: {},
      body: bytes(""),
    });
    expect(await s.idempotency.begin("a", "k", "fp2", ttl)).toEqual({ state: "mismatch" });
  });

  it("lets a retry run after abandon, and only the owner complete or abandon", async () => {
    const s = await open();
    const first = await s.idempotency.begin("a", "k", "fp", ttl);
    if (first.state !== "new") throw new Error("expected new");
    const answer = { status: 200, headers: {}, body: bytes("x") };
    expect(await s.idempotency.complete("a", "k", "not-the-token", answer)).toBe("not_owner");
    expect(await s.idempotency.abandon("a", "k", "not-the-token")).toBe(false);
    expect(await s.idempotency.abandon("a", "k", first.token)).toBe(true);
    const retry = await s.idempotency.begin("a", "k", "fp", ttl);
    expect(retry.state).toBe("new");
    // The first owner, back late, cannot overwrite the retry's entry.
    expect(await s.idempotency.complete("a", "k", first.token, answer)).toBe("not_owner");
  });

  it("forgets an entry at expiry, counted from begin and again from complete", async () => {
    const s = await open();
    const first = await s.idempotency.begin("a", "k", "fp", ttl);
    if (first.state !== "new") throw new Error("expected new");
    clock.advance(50_000);
    await s.idempotency.complete("a", "k", first.token, {
      status: 200,
      headers: {},
      body: bytes(""),
    });
    clock.advance(50_000); // 100 s after begin, 50 s after complete: still kept
    expect((await s.idempotency.begin("a", "k", "fp", ttl)).state).toBe("done");
    clock.advance(10_001);
    expect(await s.idempotency.purge()).toBe(1);
    expect((await s.idempotency.begin("a", "k", "fp2", ttl)).state).toBe("new");
    // An expired entry is free even before a purge.
    clock.advance(60_000);
    expect((await s.idempotency.begin("a", "k", "fp3", ttl)).state).toBe("new");
  });

  it("drops an answer over maxAnswerBytes, so a retry runs", async () => {
    const s = await open({ limits: { maxAnswerBytes: 4 } });
    const first = await s.idempotency.begin("a", "k", "fp", ttl);
    if (first.state !== "new") throw new Error("expected new");
    const big = { status: 200, headers: {}, body: bytes("12345") };
    expect(await s.idempotency.complete("a", "k", first.token, big)).toBe("too_large");
    expect((await s.idempotency.begin("a", "k", "fp", ttl)).state).toBe("new");
  });

  it("releases a dead instance's in-flight keys, not its answers or a sibling's", async () => {
    const s = await open();
    await s.idempotency.begin("a", "k1", "fp", ttl);
    await s.idempotency.begin("a", "k2", "fp", { ttlMs: 60_000, instanceId: "gw2" });
    const done = await s.idempotency.begin("a", "k3", "fp", ttl);
    if (done.state !== "new") throw new Error("expected new");
    await s.idempotency.complete("a", "k3", done.token, {
      status: 200,
      headers: {},
      body: bytes(""),
    });
    expect(await s.idempotency.releaseInstance("gw1")).toBe(1);
    expect((await s.idempotency.begin("a", "k1", "fp", ttl)).state).toBe("new");
    expect((await s.idempotency.begin("a", "k2", "fp", ttl)).state).toBe("in_flight");
    expect((await s.idempotency.begin("a", "k3", "fp", ttl)).state).toBe("done");
  });

  it("gives one of two concurrent begins (two connections) the key, the other in_flight", async () => {
    const s1 = await open();
    const s2 = await open();
    const [a, b] = await Promise.all([
      s1.idempotency.begin("a", "k", "fp", ttl),
      s2.idempotency.begin("a", "k", "fp", { ttlMs: 60_000, instanceId: "gw2" }),
    ]);
    expect([a.state, b.state].sort()).toEqual(["in_flight", "new"]);
  });
});

describe("approvals", () => {
  const request = {
    tenant: "a",
    keyId: "k",
    profile: "shell",
    reasons: ["network"],
    commandDigest: "sha256:x",
    timeoutMs: 1000,
  };
  const create = async (s: StateStore, extra: { tenant?: string; ttlMs?: number } = {}) => {
    const r = await s.approvals.create({
      request: { ...request, tenant: extra.tenant ?? "a" },
      ttlMs: extra.ttlMs ?? 60_000,
      maxPendingPerTenant: 2,
      job: { argv: ["echo", "hi"] },
    });
    if (!r.created) throw new Error("not created");
    return r.approval;
  };

  it("approves exactly once, and hands the job to that one caller only", async () => {
    const s1 = await open();
    const s2 = await open();
    const a = await create(s1);
    expect(a).toMatchObject({ status: "pending", reasons: ["network"], tenant: "a" });
    expect(a).not.toHaveProperty("job");
    const [x, y] = await Promise.all([
      s1.approvals.approve(a.id, "admin1", "gw1"),
      s2.approvals.approve(a.id, "admin2", "gw2"),
    ]);
    const winner = x?.changed ? x : y;
    const loser = x?.changed ? y : x;
    expect(winner).toMatchObject({ changed: true, record: { status: "running" } });
    expect(winner?.job).toEqual({ argv: ["echo", "hi"] });
    expect(loser).toMatchObject({ changed: false, record: { status: "running" } });
    expect(loser?.job).toBeUndefined();
    expect((await s1.approvals.deny(a.id, "admin"))?.changed).toBe(false);
    const done = await s1.approvals.finish(a.id, "done", { result: { stdout: "hi" } });
    expect(done?.record).toMatchObject({ status: "done", result: { stdout: "hi" } });
    expect((await s1.approvals.finish(a.id, "failed", {}))?.changed).toBe(false);
    expect(await s1.approvals.approve("apr_nope", "admin", "gw1")).toBeUndefined();
  });

  it("denies, expires and cancels; none of them can be approved after", async () => {
    const s = await open();
    const denied = await create(s);
    expect((await s.approvals.deny(denied.id, "admin"))?.record).toMatchObject({
      status: "denied",
      decidedBy: "admin",
    });
    const expiring = await create(s, { ttlMs: 1000 });
    clock.advance(1000);
    expect((await s.approvals.get(expiring.id))?.status).toBe("expired");
    expect((await s.approvals.approve(expiring.id, "admin", "gw"))?.record.status).toBe("expired");
    const mine = await create(s);
    const theirs = await create(s, { tenant: "b" });
    expect(await s.approvals.cancelPending("a", "admin")).toBe(1);
    expect((await s.approvals.get(mine.id))?.status).toBe("cancelled");
    expect((await s.approvals.get(theirs.id))?.status).toBe("pending");
    expect(await s.approvals.cancelPending(undefined, "admin")).toBe(1);
    for (const id of [denied.id, expiring.id, mine.id, theirs.id]) {
      expect((await s.approvals.approve(id, "admin", "gw"))?.changed).toBe(false);
    }
  });

  it("creates no more than maxPendingPerTenant pending approvals per tenant", async () => {
    const s = await open();
    await create(s);
    await create(s, { ttlMs: 1000 });
    const refused = await s.approvals.create({ request, ttlMs: 1000, maxPendingPerTenant: 2 });
    expect(refused).toEqual({ created: false, pending: 2 });
    expect((await create(s, { tenant: "b" })).status).toBe("pending");
    clock.advance(1000); // one of a's expires: room again
    expect((await create(s)).status).toBe("pending");
  });

  it("lists by status and tenant, oldest first", async () => {
    const s = await open();
    const a1 = await create(s);
    clock.advance(1);
    const b1 = await create(s, { tenant: "b" });
    clock.advance(1);
    const a2 = await create(s, { ttlMs: 10 });
    await s.approvals.deny(b1.id, "admin");
    clock.advance(10);
    const ids = async (q: Parameters<StateStore["approvals"]["list"]>[0]) =>
      (await s.approvals.list(q)).map((a) => a.id);
    expect(await ids({})).toEqual([a1.id]);
    expect(await ids({ status: "expired" })).toEqual([a2.id]);
    expect(await ids({ status: "denied" })).toEqual([b1.id]);
    expect(await ids({ status: "all" })).toEqual([a1.id, b1.id, a2.id]);
    expect(await ids({ status: "all", tenant: "a", limit: 1 })).toEqual([a1.id]);
  });

  it("fails a dead instance's running approvals, and purges settled ones past retention", async () => {
    const s = await open();
    const a = await create(s);
    const b = await create(s);
    await s.approvals.approve(a.id, "admin", "gw1");
    await s.approvals.approve(b.id, "admin", "gw2");
    const error = { code: "internal", message: "the gateway running it stopped" };
    expect(await s.approvals.failRunning("gw1", error)).toBe(1);
    expect((await s.approvals.get(a.id))?.error).toEqual(error);
    expect((await s.approvals.get(b.id))?.status).toBe("running");
    clock.advance(10_000);
    expect(await s.approvals.purge(5_000)).toBe(1);
    expect(await s.approvals.get(a.id)).toBeUndefined();
    expect(await s.approvals.get(b.id)).toBeDefined();
  });
});

describe("audit", () => {
  it("appends and queries with GET /v1/audit's filters, the latest appended first", async () => {
    const s = await open();
    await s.audit.append(audit({ requestId: "r1", scope: "exec,workspaces", tenant: "a" }));
    clock.advance(1000);
    await s.audit.append(audit({ requestId: "r2", tenant: "b", status: "timeout" }));
    await s.audit.append(audit({ requestId: "r3", op: "files.read", scope: "files.read" }));
    const ids = async (q: Parameters<StateStore["audit"]["query"]>[0]) =>
      (await s.audit.query(q)).map((r) => r.requestId);
    expect(await ids({})).toEqual(["r3", "r2", "r1"]);
    expect(await ids({ tenant: "b" })).toEqual(["r2"]);
    expect(await ids({ scope: "workspaces" })).toEqual(["r1"]);
    expect(await ids({ scope: "files" })).toEqual([]); // a whole scope, not a prefix
    expect(await ids({ status: "timeout" })).toEqual(["r2"]);
    expect(await ids({ op: "files.read" })).toEqual(["r3"]);
    expect(await ids({ since: t })).toEqual(["r3", "r2"]);
    expect(await ids({ limit: 1 })).toEqual(["r3"]);
    expect((await s.audit.query({ tenant: "b" }))[0]).toEqual(
      audit({ requestId: "r2", tenant: "b", status: "timeout", time: new Date(t).toISOString() }),
    );
  });

  it("purges by age and keeps at most N", async () => {
    const s = await open();
    await s.audit.append(audit({ requestId: "old" }));
    clock.advance(10_000);
    for (const id of ["n1", "n2", "n3"]) await s.audit.append(audit({ requestId: id }));
    expect(await s.audit.purge(5_000)).toBe(1);
    expect(await s.audit.purge(5_000, 2)).toBe(1);
    expect((await s.audit.query({})).map((r) => r.requestId)).toEqual(["n3", "n2"]);
  });
});

describe("workspace manifests", () => {
  it("keeps the last bytes written per workspace, across a reopen, until deleted or purged", async () => {
    const s = await open();
    const manifests = s.manifests;
    if (manifests === undefined) throw new Error("the embedded store keeps manifests");
    expect(await manifests.get("ws1")).toBeUndefined();
    await manifests.put("ws1", bytes("first"));
    await manifests.put("ws1", bytes("second"));
    await manifests.put("ws2", bytes("other"));
    await s.close();
    const again = await open();
    expect(text((await again.manifests?.get("ws1")) ?? bytes(""))).toBe("second");
    await again.manifests?.delete("ws1");
    expect(await again.manifests?.get("ws1")).toBeUndefined();
    clock.advance(10_000);
    await again.manifests?.put("ws3", bytes("fresh"));
    await again.purge({ executionsMs: 5_000, auditMs: 5_000, auditKeepAtMost: 100 });
    expect(await again.manifests?.get("ws2")).toBeUndefined();
    expect(text((await again.manifests?.get("ws3")) ?? bytes(""))).toBe("fresh");
  });
});

describe("the whole store", () => {
  it("keeps everything across a close and a reopen (a gateway restart)", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "running");
    s.output.append("e", { seq: 1, stream: "stdout", data: bytes("kept") });
    await s.executions.create({ id: "open", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "done", { result: { ok: true } });
    const key = await s.idempotency.begin("a", "k", "fp", { ttlMs: 60_000, instanceId: "gw" });
    if (key.state !== "new") throw new Error("expected new");
    await s.idempotency.complete("a", "k", key.token, {
      status: 200,
      headers: {},
      body: bytes("b"),
    });
    const approval = await s.approvals.create({
      request: {
        tenant: "a",
        keyId: "k",
        profile: "p",
        reasons: [],
        commandDigest: "",
        timeoutMs: 1,
      },
      ttlMs: 60_000,
      maxPendingPerTenant: 5,
      job: { j: 1 },
    });
    await s.audit.append(audit({ requestId: "r" }));
    s.output.append("open", { seq: 1, stream: "stderr", data: bytes("buffered") });
    await s.close();

    const r = await open();
    expect(await r.executions.get("a", "e")).toMatchObject({
      status: "done",
      result: { ok: true },
    });
    expect((await r.output.read("a", "e"))?.events.map((e) => text(e.data))).toEqual(["kept"]);
    expect((await r.output.read("a", "open"))?.events.map((e) => text(e.data))).toEqual([
      "buffered",
    ]);
    expect(await r.executions.markLost("gw")).toBe(1);
    expect((await r.idempotency.begin("a", "k", "fp", { ttlMs: 1, instanceId: "gw" })).state).toBe(
      "done",
    );
    if (!approval.created) throw new Error("not created");
    const approved = await r.approvals.approve(approval.approval.id, "admin", "gw");
    expect(approved?.job).toEqual({ j: 1 });
    expect((await r.audit.query({})).map((a) => a.requestId)).toEqual(["r"]);
  });

  it("purges every kind of record past its retention at once", async () => {
    const s = await open();
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "failed");
    await s.idempotency.begin("a", "k", "fp", { ttlMs: 1000, instanceId: "gw" });
    await s.audit.append(audit({}));
    clock.advance(100_000);
    expect(await s.purge({ executionsMs: 50_000, auditMs: 50_000 })).toEqual({
      executions: 1,
      idempotency: 1,
      approvals: 0,
      audit: 1,
    });
  });

  it("stays whole with two threads writing the same file at once", async () => {
    const barrier = new SharedArrayBuffer(4);
    const run = (name: string) =>
      new Promise<{ won: string[] }>((resolve, reject) => {
        const w = new Worker(new URL("../support/state-worker.ts", import.meta.url), {
          workerData: { dataDir: dir, name, executions: 150, keys: 150, barrier },
        });
        w.once("message", resolve);
        w.once("error", reject);
      });
    const [a, b] = await Promise.all([run("gw1"), run("gw2")]);
    // Each key was taken by exactly one of the two.
    expect([...a.won, ...b.won].sort()).toEqual(
      Array.from({ length: 150 }, (_, i) => `key-${i}`).sort(),
    );
    const s = await open();
    for (const gw of ["gw1", "gw2"]) {
      for (const i of [0, 77, 149]) {
        const e = await s.executions.get("t", `${gw}-${i}`);
        expect(e).toMatchObject({
          status: "done",
          result: { id: `${gw}-${i}` },
          outputBytes: 3 * `${gw}-${i}:1\n`.length,
        });
      }
    }
    expect(await s.executions.list("t", { status: "done", limit: 1000 })).toHaveLength(300);
    const raw = new DatabaseSync(join(dir, STATE_FILE));
    expect(raw.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    expect(raw.prepare("SELECT count(*) AS n FROM output").get()).toEqual({ n: 900 });
    raw.close();
  }, 60_000);
});

describe("when the disk fails", () => {
  it("answers StoreUnavailableError (full) past the size limit, and still records what fits", async () => {
    const s = await open({ maxBytes: 256 * 1024 });
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    await s.executions.transition("e", "running");
    const err = await s.executions
      .transition("e", "done", { result: "x".repeat(1024 * 1024) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ reason: "full" });
    expect((err as Error).message).toMatch(/state store .*state\.db cannot grow: .*full/);
    // Nothing of the failed call was recorded; the store still answers.
    expect((await s.executions.get("a", "e"))?.status).toBe("running");
    await s.executions.transition("e", "done", { result: "small" });
  });

  it("reports an output batch that could not be written at the next flush", async () => {
    const errors: unknown[] = [];
    const s = await open({ maxBytes: 256 * 1024, onError: (e) => errors.push(e) });
    await s.executions.create({ id: "e", tenant: "a", profile: "p", instanceId: "gw" });
    for (let seq = 1; seq <= 3; seq++) {
      s.output.append("e", { seq, stream: "stdout", data: Buffer.alloc(200 * 1024) });
    }
    await expect(s.output.flush()).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(errors).toHaveLength(1);
    await expect(s.output.flush()).resolves.toBeUndefined();
  });

  it("refuses to open a read-only file, saying so", async () => {
    await (await open()).close();
    const file = join(dir, STATE_FILE);
    // As root, permissions do not stop a write: the immutable flag does.
    const root = process.getuid?.() === 0;
    execFileSync(root ? "chattr" : "chmod", root ? ["+i", file] : ["0444", file]);
    try {
      const err = await openSqliteState({ dataDir: dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).toMatchObject({ reason: "read_only" });
      expect((err as Error).message).toMatch(/read-only/);
    } finally {
      execFileSync(root ? "chattr" : "chmod", root ? ["-i", file] : ["0644", file]);
    }
  });

  it("refuses a file that is not a state store, and a data directory that cannot be made", async () => {
    writeFileSync(join(dir, STATE_FILE), "not a database ".repeat(100));
    await expect(openSqliteState({ dataDir: dir })).rejects.toMatchObject({
      name: "StoreUnavailableError",
      reason: "corrupt",
    });
    const blocked = join(dir, "file");
    writeFileSync(blocked, "");
    await expect(openSqliteState({ dataDir: join(blocked, "sub") })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
