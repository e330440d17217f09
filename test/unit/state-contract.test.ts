// The state store's contract (core/state.ts), one suite run against both
// stores: the embedded one (SQLite file) and PostgreSQL (a real server, a
// database of this file's own, emptied before each test; test/support/postgres.ts).
// Where atomicity is the point, two stores are opened on the same data — two
// gateways — and race. Skipped on PostgreSQL only when no server answers
// outside CI, saying why.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AuditRecord, ClusterRecords, StateLimits, StateStore } from "../../core/state.ts";
import { StoreConflictError, StoreUnavailableError } from "../../core/state.ts";
import { openPgState } from "../../state/pg.ts";
import { openSqliteState } from "../../state/sqlite.ts";
import { postgresMissing, type TestDatabase, testDatabase } from "../support/postgres.ts";

let t = 1_800_000_000_000;
const now = () => t;

interface Backend {
  name: string;
  skip?: string | undefined;
  setup(): Promise<void>;
  /** A store on the shared data (a second call: a second gateway on it). */
  open(limits?: Partial<StateLimits>): Promise<StateStore>;
  reset(): Promise<void>;
  teardown(): Promise<void>;
}

function sqliteBackend(): Backend {
  let dir = "";
  return {
    name: "sqlite",
    async setup() {},
    open: (limits = {}) => openSqliteState({ dataDir: dir, now, limits }),
    async reset() {
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), "airlock-contract-"));
    },
    async teardown() {
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pgMissing = await postgresMissing();

function pgBackend(): Backend {
  let db: TestDatabase | undefined;
  return {
    name: "postgres",
    skip: pgMissing,
    async setup() {
      db = await testDatabase("airlock_contract");
    },
    open: (limits = {}) => openPgState({ url: (db as TestDatabase).url, now, poolSize: 4, limits }),
    async reset() {
      if (db === undefined) return;
      // Migrated by the first open; emptied between tests.
      const s = await openPgState({ url: db.url });
      await s.close();
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query(
        "TRUNCATE executions, output, idempotency, approvals, audit, gateways, workspace_engines, rate_takes, stops, quota_slots, usage, workspace_manifests",
      );
      await c.end();
    },
    async teardown() {
      await db?.drop();
    },
  };
}

const bytes = (s: string) => Buffer.from(s);
const text = (d: Uint8Array) => Buffer.from(d).toString();

function auditRecord(fields: Partial<AuditRecord>): AuditRecord {
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

for (const backend of [sqliteBackend(), pgBackend()]) {
  describe.skipIf(backend.skip !== undefined)(`state store contract: ${backend.name}`, () => {
    const opened: StateStore[] = [];
    const open = async (limits?: Partial<StateLimits>) => {
      const s = await backend.open(limits);
      opened.push(s);
      return s;
    };
    const cluster = (s: StateStore) => s.cluster as ClusterRecords;

    beforeAll(() => backend.setup());
    afterAll(() => backend.teardown());
    beforeEach(async () => {
      t = 1_800_000_000_000;
      await backend.reset();
    });
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => {});
    });

    it("executions: a lifecycle, the transition table, tenants, conflicts, lists", async () => {
      const s = await open();
      await s.executions.create({ id: "e1", tenant: "a", profile: "shell", instanceId: "g1" });
      await expect(
        s.executions.create({ id: "e1", tenant: "a", profile: "shell", instanceId: "g1" }),
      ).rejects.toBeInstanceOf(StoreConflictError);
      t += 10;
      const started = await s.executions.transition("e1", "running");
      expect(started?.changed).toBe(true);
      expect(started?.record.startedAt).toBe(new Date(t).toISOString());
      // A final status is never left.
      const done = await s.executions.transition("e1", "done", { result: { exit: 0 } });
      expect(done).toMatchObject({
        changed: true,
        record: { status: "done", result: { exit: 0 } },
      });
      const again = await s.executions.transition("e1", "cancelled");
      expect(again).toMatchObject({ changed: false, record: { status: "done" } });
      expect(await s.executions.transition("nope", "done")).toBeUndefined();
      expect(await s.executions.get("b", "e1")).toBeUndefined();
      expect((await s.executions.get("a", "e1"))?.result).toEqual({ exit: 0 });
      t += 10;
      await s.executions.create({
        id: "e2",
        tenant: "a",
        profile: "shell",
        workspace: "ws",
        instanceId: "g1",
        status: "running",
      });
      expect((await s.executions.list("a", { limit: 10 })).map((e) => e.id)).toEqual(["e2", "e1"]);
      expect(
        (await s.executions.list("a", { limit: 10, workspace: "ws" })).map((e) => e.id),
      ).toEqual(["e2"]);
      expect(
        (await s.executions.list("a", { limit: 10, status: "done" })).map((e) => e.id),
      ).toEqual(["e1"]);
    });

    it("executions: an end straight from queued stamps startedAt for a job that ran", async () => {
      const s = await open();
      for (const id of ["e1", "e2", "e3", "e4"]) {
        await s.executions.create({ id, tenant: "a", profile: "shell", instanceId: "g" });
      }
      t += 10;
      // A short job, never written running: its result means it ran, started and ended now.
      s.output.append("e1", { seq: 1, stream: "stdout", data: bytes("hi\n") });
      const done = await s.executions.transition("e1", "done", { result: { exit: 0 } });
      const at = new Date(t).toISOString();
      expect(done).toMatchObject({
        changed: true,
        record: { status: "done", startedAt: at, endedAt: at, result: { exit: 0 } },
      });
      expect(await s.executions.get("a", "e1")).toMatchObject({ startedAt: at, endedAt: at });
      expect((await s.output.read("a", "e1"))?.events.map((e) => text(e.data))).toEqual(["hi\n"]);
      // Failed after it started, and cancelled before it did (no start to stamp).
      await s.executions.transition("e2", "failed", {
        error: { code: "x", message: "m" },
        started: true,
      });
      expect((await s.executions.get("a", "e2"))?.startedAt).toBe(at);
      await s.executions.transition("e3", "cancelled");
      expect((await s.executions.get("a", "e3"))?.startedAt).toBeUndefined();
      // A job written running keeps the start it was written with.
      await s.executions.transition("e4", "running");
      t += 10;
      const later = await s.executions.transition("e4", "done", { result: {}, started: true });
      expect(later?.record).toMatchObject({ startedAt: at, endedAt: new Date(t).toISOString() });
    });

    it("executions: markLost ends an instance's open ones, purge only ended ones past retention", async () => {
      const s = await open();
      for (const [id, gw] of [
        ["e1", "g1"],
        ["e2", "g1"],
        ["e3", "g2"],
      ] as const) {
        await s.executions.create({ id, tenant: "a", profile: "shell", instanceId: gw });
      }
      await s.executions.transition("e2", "running");
      expect((await cluster(s).openExecutions(10)).map((e) => e.id)).toEqual(["e1", "e2", "e3"]);
      expect(await s.executions.markLost("g1", { code: "internal", message: "gone" })).toBe(2);
      expect(await s.executions.get("a", "e2")).toMatchObject({
        status: "lost",
        error: { code: "internal" },
      });
      expect((await cluster(s).openExecutions(10)).map((e) => e.id)).toEqual(["e3"]);
      expect(await cluster(s).runnerOf("e3")).toBe("g2");
      expect(await cluster(s).runnerOf("e2")).toBeUndefined();
      t += 1000;
      expect(await s.executions.purge(500)).toBe(2);
      expect(await s.executions.get("a", "e3")).toBeDefined();
    });

    it("output: appended events are read back in order, capped, and visible with the end", async () => {
      const s = await open();
      await s.executions.create({ id: "e1", tenant: "a", profile: "shell", instanceId: "g" });
      await s.executions.transition("e1", "running");
      s.output.append("e1", { seq: 1, stream: "stdout", data: bytes("hello ") });
      s.output.append("e1", { seq: 2, stream: "stderr", data: bytes("world") });
      await s.executions.transition("e1", "done", { result: {} });
      const page = await s.output.read("a", "e1");
      expect(page?.events.map((e) => [e.seq, e.stream, text(e.data)])).toEqual([
        [1, "stdout", "hello "],
        [2, "stderr", "world"],
      ]);
      expect(page?.storedBytes).toBe(11);
      expect((await s.output.read("a", "e1", { afterSeq: 1 }))?.events.length).toBe(1);
      expect(await s.output.read("b", "e1")).toBeUndefined();
      // Another gateway on the same data reads it all.
      const other = await open();
      expect((await other.output.read("a", "e1"))?.events.length).toBe(2);
    });

    it("output: past maxOutputBytes, that event and every later one are dropped and counted", async () => {
      const s = await open({ maxOutputBytes: 10 });
      await s.executions.create({ id: "e1", tenant: "a", profile: "shell", instanceId: "g" });
      await s.executions.transition("e1", "running");
      s.output.append("e1", { seq: 1, stream: "stdout", data: bytes("123456") });
      await s.output.flush();
      s.output.append("e1", { seq: 2, stream: "stdout", data: bytes("789012") });
      s.output.append("e1", { seq: 3, stream: "stderr", data: bytes("x") });
      // A writer's retry of a seq already kept is neither stored nor counted again.
      s.output.append("e1", { seq: 1, stream: "stdout", data: bytes("123456") });
      s.output.append("e9", { seq: 1, stream: "stdout", data: bytes("nobody") });
      await s.executions.transition("e1", "done", { result: {} });
      const page = await s.output.read("a", "e1");
      expect(page?.events.map((e) => text(e.data))).toEqual(["123456"]);
      expect([page?.storedBytes, page?.droppedBytes]).toEqual([6, 13]);
    });

    it("idempotency: one owner, then the answer; mismatch; abandon and release free the key", async () => {
      const s = await open();
      const o = { ttlMs: 60_000, instanceId: "g1" };
      const first = await s.idempotency.begin("a", "k1", "fp", o);
      expect(first.state).toBe("new");
      expect(await s.idempotency.begin("a", "k1", "fp", o)).toEqual({ state: "in_flight" });
      expect(await s.idempotency.begin("a", "k1", "other", o)).toEqual({ state: "mismatch" });
      const token = (first as { token: string }).token;
      expect(
        await s.idempotency.complete("a", "k1", token, {
          status: 201,
          headers: { "content-type": "application/json" },
          body: bytes('{"ok":true}'),
        }),
      ).toBe("stored");
      const done = await s.idempotency.begin("a", "k1", "fp", o);
      expect(done).toMatchObject({ state: "done", status: 201 });
      expect(text((done as { body: Uint8Array }).body)).toBe('{"ok":true}');
      const k2 = await s.idempotency.begin("a", "k2", "fp", o);
      expect(await s.idempotency.abandon("a", "k2", "wrong")).toBe(false);
      expect(await s.idempotency.abandon("a", "k2", (k2 as { token: string }).token)).toBe(true);
      expect((await s.idempotency.begin("a", "k2", "fp", o)).state).toBe("new");
      expect(await s.idempotency.releaseInstance("g1")).toBe(1);
      t += 120_000;
      expect((await s.idempotency.begin("a", "k1", "fp", o)).state).toBe("new");
      expect(await s.idempotency.purge()).toBe(0);
    });

    it("idempotency: of many begins at once on two stores, exactly one owns the key", async () => {
      const [a, b] = [await open(), await open()];
      const o = { ttlMs: 60_000, instanceId: "g" };
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).idempotency.begin("a", "k", "fp", o)),
      );
      expect(answers.filter((x) => x.state === "new")).toHaveLength(1);
    });

    it("approvals: the pending limit, approve once across stores, deny, finish, failRunning", async () => {
      const [a, b] = [await open(), await open()];
      const request = {
        tenant: "a",
        keyId: "k",
        profile: "shell",
        reasons: ["network"],
        commandDigest: "sha256:x",
        timeoutMs: 1000,
      };
      const made = await a.approvals.create({
        request,
        ttlMs: 60_000,
        maxPendingPerTenant: 2,
        job: { kind: "exec", request: { code: "1" } },
      });
      expect(made.created).toBe(true);
      await a.approvals.create({ request, ttlMs: 60_000, maxPendingPerTenant: 2 });
      expect(await a.approvals.create({ request, ttlMs: 60_000, maxPendingPerTenant: 2 })).toEqual({
        created: false,
        pending: 2,
      });
      const id = (made as { approval: { id: string } }).approval.id;
      const decisions = await Promise.all([
        a.approvals.approve(id, "root", "g1"),
        b.approvals.approve(id, "root", "g2"),
        b.approvals.approve(id, "root", "g2"),
      ]);
      const winners = decisions.filter((d) => d?.changed);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.job).toEqual({ kind: "exec", request: { code: "1" } });
      expect(decisions.filter((d) => d?.job !== undefined)).toHaveLength(1);
      const finished = await b.approvals.finish(id, "done", { result: { exitCode: 0 } });
      expect(finished?.record).toMatchObject({ status: "done", result: { exitCode: 0 } });
      const [other] = await a.approvals.list({ status: "pending" });
      expect((await a.approvals.deny(other?.id ?? "", "root"))?.record.status).toBe("denied");
      const third = await a.approvals.create({ request, ttlMs: 60_000, maxPendingPerTenant: 5 });
      const thirdId = (third as { approval: { id: string } }).approval.id;
      await a.approvals.approve(thirdId, "root", "g9");
      expect(await a.approvals.failRunning("g9", { code: "internal", message: "died" })).toBe(1);
      expect((await a.approvals.get(thirdId))?.status).toBe("failed");
      expect((await a.approvals.list({ status: "all" })).length).toBe(3);
    });

    it("audit: every store's records, newest first, filtered, purged by age and count", async () => {
      const [a, b] = [await open(), await open()];
      await a.audit.append(auditRecord({ requestId: "r1", scope: "exec,network" }));
      t += 1000;
      await b.audit.append(auditRecord({ requestId: "r2", tenant: "b", status: "timeout" }));
      t += 1000;
      await a.audit.append(auditRecord({ requestId: "r3", op: "files.read", scope: "files.read" }));
      const ids = async (q = {}) => (await b.audit.query(q)).map((r) => r.requestId);
      expect(await ids()).toEqual(["r3", "r2", "r1"]);
      expect(await ids({ scope: "network" })).toEqual(["r1"]);
      expect(await ids({ tenant: "b" })).toEqual(["r2"]);
      expect(await ids({ status: "timeout" })).toEqual(["r2"]);
      expect(await ids({ op: "files.read" })).toEqual(["r3"]);
      expect(await ids({ since: t - 1000 })).toEqual(["r3", "r2"]);
      expect(await ids({ limit: 1 })).toEqual(["r3"]);
      expect(await a.audit.purge(1500)).toBe(1);
      expect(await a.audit.purge(60_000, 1)).toBe(1);
      expect(await ids()).toEqual(["r3"]);
    });

    it("cluster: gateways heartbeat, are live, and a silent one is claimed by one caller", async () => {
      const [a, b] = [await open(), await open()];
      await cluster(a).gateways.heartbeat({ instanceId: "g1", engineId: "A", url: "http://a" });
      await cluster(b).gateways.heartbeat({ instanceId: "g2", engineId: "B", url: "http://b" });
      const live = await cluster(a).gateways.live(60_000);
      expect(live.map((g) => [g.instanceId, g.engineId, g.url])).toEqual([
        ["g1", "A", "http://a"],
        ["g2", "B", "http://b"],
      ]);
      // Heartbeats use the store's clock (PostgreSQL's, on every host): a real wait.
      // Generous margins: this machine may be loaded.
      t += 1000;
      await new Promise((r) => setTimeout(r, 1000));
      await cluster(b).gateways.heartbeat({ instanceId: "g2", engineId: "B", url: "http://b" });
      const claims = await Promise.all([
        cluster(a).gateways.claimDead(600),
        cluster(b).gateways.claimDead(600),
      ]);
      expect(claims.flat()).toEqual(["g1"]);
      expect((await cluster(a).gateways.live(60_000)).map((g) => g.instanceId)).toEqual(["g2"]);
      await cluster(b).gateways.leave("g2");
      expect(await cluster(a).gateways.live(60_000)).toEqual([]);
    });

    it("cluster: workspace placements and stops", async () => {
      const [a, b] = [await open(), await open()];
      await cluster(a).workspaces.place("ws1", "a", "B");
      expect(await cluster(b).workspaces.engineOf("ws1")).toBe("B");
      expect(await cluster(b).workspaces.engineOf("ws2")).toBeUndefined();
      await cluster(b).workspaces.remove("ws1");
      expect(await cluster(a).workspaces.engineOf("ws1")).toBeUndefined();
      expect(await cluster(a).stops.add("*", "2026-01-01T00:00:00.000Z")).toEqual({
        target: "*",
        since: "2026-01-01T00:00:00.000Z",
      });
      // A stop in force keeps its time.
      expect((await cluster(b).stops.add("*", "2027-01-01T00:00:00.000Z")).since).toBe(
        "2026-01-01T00:00:00.000Z",
      );
      await cluster(b).stops.add("t1", "2026-02-01T00:00:00.000Z");
      expect((await cluster(a).stops.list()).map((x) => x.target)).toEqual(["*", "t1"]);
      await cluster(a).stops.remove("*");
      expect((await cluster(b).stops.list()).map((x) => x.target)).toEqual(["t1"]);
    });

    it("cluster: a rate limit holds across stores under concurrency, and room comes back", async () => {
      const [a, b] = [await open(), await open()];
      const checks = [
        { key: "k:exec:m", windowMs: 60_000, limit: 5 },
        { key: "k:exec:h", windowMs: 3600_000, limit: 100 },
      ];
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) => cluster(i % 2 ? a : b).rates.take(checks)),
      );
      expect(answers.filter((x) => x === undefined)).toHaveLength(5);
      const refused = answers.find((x) => x !== undefined);
      expect(refused).toEqual({ index: 0, retryAfterMs: 60_000 });
      t += 60_001;
      expect(await cluster(a).rates.take(checks)).toBeUndefined();
      t += 2 * 3600_000;
      expect(await cluster(a).rates.purge(3600_000)).toBeGreaterThan(0);
    });

    it("cluster: job slots are taken atomically across stores; usage is every store's", async () => {
      const [a, b] = [await open(), await open()];
      const taken = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          cluster(i % 2 ? a : b).quotas.acquireSlot("t", 2, i % 2 ? "g1" : "g2"),
        ),
      );
      const slots = taken.flatMap((x) => ("slot" in x ? [x.slot] : []));
      expect(slots).toHaveLength(2);
      expect(taken.find((x) => "running" in x)).toEqual({ running: 2 });
      expect(await cluster(a).quotas.running("t")).toBe(2);
      await cluster(b).quotas.releaseSlot(slots[0] as string);
      expect(await cluster(a).quotas.running("t")).toBe(1);
      expect(
        "slot" in (await cluster(a).quotas.acquireSlot("t", Number.MAX_SAFE_INTEGER, "g3")),
      ).toBe(true);
      expect(await cluster(a).quotas.releaseInstance("g3")).toBe(1);
      await cluster(a).quotas.recordUsage("t", { at: t, cpuMs: 100, containerMs: 200 });
      await cluster(b).quotas.recordUsage("t", { at: t + 1, cpuMs: 50, containerMs: 60 });
      await cluster(b).quotas.recordUsage("u", { at: t + 1, cpuMs: 7, containerMs: 7 });
      expect(await cluster(b).quotas.usageSince("t", t - 1)).toEqual([
        { at: t, cpuMs: 100, containerMs: 200 },
        { at: t + 1, cpuMs: 50, containerMs: 60 },
      ]);
      t += 10_000;
      expect(await cluster(a).quotas.purge(5000)).toBe(3);
    });

    it("manifests: put replaces, get reads another store's, delete and purge forget", async () => {
      const [a, b] = [await open(), await open()];
      if (a.manifests === undefined || b.manifests === undefined) throw new Error("no manifests");
      await a.manifests.put("ws1", bytes("one"));
      await a.manifests.put("ws1", bytes("two"));
      expect(text((await b.manifests.get("ws1")) as Uint8Array)).toBe("two");
      await b.manifests.delete("ws1");
      expect(await a.manifests.get("ws1")).toBeUndefined();
    });

    if (backend.name === "postgres") {
      it("a server that does not answer is StoreUnavailableError naming it", async () => {
        const err = await openPgState({ url: "postgres://airlock:x@127.0.0.1:1/none" }).catch(
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as Error).message).toMatch(/127\.0\.0\.1:1.*ECONNREFUSED|ECONNREFUSED/);
        expect((err as Error).message).not.toContain(":x@");
      });

      it("prepared statements outlive a migration under them and connections that died", async () => {
        // A database of its own: the schema is changed as a newer gateway's migration would.
        const own = await testDatabase("airlock_prepared");
        const s = await openPgState({ url: own.url, now, poolSize: 2 });
        const admin = new pg.Client({ connectionString: own.url });
        const job = async (id: string) => {
          await s.executions.create({ id, tenant: "a", profile: "shell", instanceId: "i1" });
          s.output.append(id, { seq: 1, stream: "stdout", data: bytes("hi\n") });
          const end = await s.executions.transition(id, "done", { result: { ok: id } });
          expect(end?.record).toMatchObject({ id, status: "done", result: { ok: id } });
          expect((await s.output.read("a", id))?.events.map((e) => text(e.data))).toEqual(["hi\n"]);
        };
        try {
          await admin.connect();
          await job("e1");
          // A column more (the end returns a whole executions row) and the end function replaced.
          await admin.query("ALTER TABLE executions ADD COLUMN newer text");
          const { rows } = await admin.query(
            "SELECT pg_get_functiondef('airlock_end_execution(text, text, text[], bigint, text, bigint, text, text, boolean, int[], text[], bytea[], bigint)'::regprocedure) AS def",
          );
          await admin.query(rows[0].def);
          await job("e2");
          // A column's type changed: the server refuses the statements prepared before; sent again.
          await admin.query("ALTER TABLE executions ALTER COLUMN profile TYPE varchar(200)");
          await job("e3");
          await job("e4");
          // Every connection of the store's pool killed: new ones prepare the statements again.
          await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
          );
          await new Promise((r) => setTimeout(r, 200));
          await job("e5");
          expect((await s.executions.list("a", { limit: 10 })).map((e) => e.id)).toHaveLength(5);
        } finally {
          await admin.end().catch(() => {});
          await s.close();
          await own.drop();
        }
      });
    }
  });
}

if (pgMissing !== undefined) {
  describe("state store contract: postgres", () => {
    it.skip(`skipped: ${pgMissing}`, () => {});
  });
}
