// The workspace's use markers, the sweep of idle workspaces and the per-tenant
// count, over an in-memory engine that holds only labelled volumes.
import { describe, expect, it } from "vitest";
import type { ContainerClient, LabelledObject } from "../../executor/docker.ts";
import {
  LABEL_CREATED,
  LABEL_TENANT,
  LABEL_TOUCH,
  LABEL_TOUCHED,
  LABEL_TTL,
  LABEL_WORKSPACE,
  volumeOf,
} from "../../executor/workspace-labels.ts";
import {
  assertRoomForWorkspace,
  countWorkspaces,
  gatewayLimit,
  LocalWorkspaceReservations,
} from "../../executor/workspace-quota.ts";
import { RESYNC_MS, WorkspaceUse } from "../../executor/workspace-ttl.ts";

/** Volumes and their labels; a label filter is `key` or `key=value`, as the engine's. */
function volumes() {
  const all = new Map<string, Record<string, string>>();
  const client = {
    async createVolume(name: string, labels: Record<string, string>) {
      all.set(name, labels);
    },
    async removeVolume(name: string) {
      all.delete(name);
    },
    async volumeLabels(name: string) {
      return all.get(name);
    },
    async listVolumes(filter: string): Promise<LabelledObject[]> {
      const [key = "", value] = filter.split("=");
      return [...all]
        .filter(
          ([, labels]) =>
            labels[key] !== undefined && (value === undefined || labels[key] === value),
        )
        .map(([id, labels]) => ({ id, labels }));
    },
  } as unknown as ContainerClient;
  const workspace = (id: string, tenant: string, created: number, ttl?: number) =>
    all.set(volumeOf(id), {
      [LABEL_WORKSPACE]: id,
      [LABEL_TENANT]: tenant,
      [LABEL_CREATED]: String(created),
      ...(ttl === undefined ? {} : { [LABEL_TTL]: String(ttl) }),
    });
  return { all, client, workspace };
}

describe("WorkspaceUse", () => {
  it("records a use at most once per interval, keeping only the latest marker", async () => {
    const { all, client, workspace } = volumes();
    workspace("ws_a", "t", 5);
    const markers = () => [...all.keys()].filter((k) => k.startsWith("airlock-wst-"));
    let now = 100_000;
    const use = new WorkspaceUse(client, () => now);
    await use.touch("ws_a", 20_000);
    now += 500;
    await use.touch("ws_a", 20_000);
    expect(markers()).toEqual(["airlock-wst-ws_a-100000"]);
    now += 1000;
    await use.touch("ws_a", 20_000);
    expect(markers()).toEqual(["airlock-wst-ws_a-101500"]);
    // Another gateway (no memory of the use) reads it back from the marker.
    expect(await new WorkspaceUse(client, () => now).lastUsed("ws_a", 5, 20_000)).toBe(101_500);
  });

  it("reads another gateway's use again only once what it knows is a marking interval old", async () => {
    const { client, workspace } = volumes();
    workspace("ws_a", "t", 5);
    let now = 100_000;
    const listed = { n: 0 };
    const counting = Object.create(client) as ContainerClient;
    counting.listVolumes = (filter) => {
      listed.n++;
      return client.listVolumes(filter);
    };
    const cached = new WorkspaceUse(counting, () => now);
    expect(await cached.lastUsed("ws_a", 5, 20_000)).toBe(5);
    expect(listed.n).toBe(1);
    // Another gateway's use, within the interval (1 s for a 20 s TTL): not read yet.
    now += 500;
    await new WorkspaceUse(client, () => now).touch("ws_a", 20_000);
    expect(await cached.lastUsed("ws_a", 5, 20_000)).toBe(5);
    expect(listed.n).toBe(1);
    now += 600;
    expect(await cached.lastUsed("ws_a", 5, 20_000)).toBe(100_500);
    expect(listed.n).toBe(2);
  });

  it("sweeps what is idle past its own TTL, spares what is busy, and drops stray markers", async () => {
    const { all, client, workspace } = volumes();
    const now = 1_000_000;
    workspace("ws_old", "t", now - 10_000);
    workspace("ws_busy", "t", now - 10_000);
    workspace("ws_long", "t", now - 10_000, 60_000);
    workspace("ws_used", "t", now - 10_000);
    const use = new WorkspaceUse(client, () => now);
    await new WorkspaceUse(client, () => now - 1000).touch("ws_used", 5000);
    // Left by a gateway that died half-way through deleting ws_gone.
    await client.createVolume(`airlock-wst-ws_gone-${now - 1000}`, {
      [LABEL_TOUCH]: "ws_gone",
      [LABEL_TOUCHED]: String(now - 1000),
    });
    const removed: string[] = [];
    const count = await use.sweep({
      defaultTtlMs: 5000,
      busy: (id) => id === "ws_busy",
      remove: async (id) => {
        removed.push(id);
        all.delete(volumeOf(id));
        await use.forget(id);
      },
    });
    expect(count).toBe(1);
    expect(removed).toEqual(["ws_old"]);
    expect([...all.keys()].sort()).toEqual([
      "airlock-ws-ws_busy",
      "airlock-ws-ws_long",
      "airlock-ws-ws_used",
      `airlock-wst-ws_used-${now - 1000}`,
    ]);
  });
});

describe("the sweep between full listings", () => {
  /** The engine above, counting what is asked of it. */
  function counted() {
    const engine = volumes();
    const calls = { n: 0 };
    const client = new Proxy(engine.client, {
      get: (target, key) => {
        const f = Reflect.get(target, key) as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          calls.n++;
          return f.apply(target, args);
        };
      },
    });
    return { ...engine, client, calls };
  }
  const removing = (all: Map<string, unknown>, use: WorkspaceUse, removed: string[]) => ({
    defaultTtlMs: 5000,
    busy: () => false,
    remove: async (id: string) => {
      removed.push(id);
      all.delete(volumeOf(id));
      await use.forget(id);
    },
  });

  it("asks the engine nothing while no workspace it knows of is due, however many there are", async () => {
    const { all, client, workspace, calls } = counted();
    let now = 1_000_000;
    for (let i = 0; i < 1000; i++) workspace(`ws_${i}`, "t", now, 60_000);
    const use = new WorkspaceUse(client, () => now);
    const removed: string[] = [];
    expect(await use.sweep(removing(all, use, removed))).toBe(0);
    const afterFirst = calls.n;
    now += 30_000;
    expect(await use.sweep(removing(all, use, removed))).toBe(0);
    expect(calls.n).toBe(afterFirst);
    // Past their TTL, each is read afresh and removed.
    now += 31_000;
    expect(await use.sweep(removing(all, use, removed))).toBe(1000);
    expect(all.size).toBe(0);
  });

  it("reads a due workspace afresh: another gateway's use spares it, its delete drops it", async () => {
    const { all, client, workspace } = counted();
    let now = 1_000_000;
    workspace("ws_used", "t", now);
    workspace("ws_deleted", "t", now);
    workspace("ws_idle", "t", now);
    const use = new WorkspaceUse(client, () => now);
    const removed: string[] = [];
    await use.sweep(removing(all, use, removed));
    now += 4000;
    await new WorkspaceUse(client, () => now).touch("ws_used", 5000);
    all.delete(volumeOf("ws_deleted"));
    now += 2000;
    expect(await use.sweep(removing(all, use, removed))).toBe(1);
    expect(removed).toEqual(["ws_idle"]);
    expect([...all.keys()].sort()).toEqual([
      "airlock-ws-ws_used",
      `airlock-wst-ws_used-${now - 2000}`,
    ]);
    // The use it read counts from then on.
    now += 4000;
    expect(await use.sweep(removing(all, use, removed))).toBe(1);
    expect(removed).toEqual(["ws_idle", "ws_used"]);
  });

  it("learns of workspaces other gateways made at the next full listing", async () => {
    const { all, client, workspace } = counted();
    let now = 1_000_000;
    const use = new WorkspaceUse(client, () => now);
    const removed: string[] = [];
    await use.sweep(removing(all, use, removed));
    workspace("ws_other", "t", now);
    now += 10_000;
    expect(await use.sweep(removing(all, use, removed))).toBe(0);
    // Asked for, or once RESYNC_MS has passed, the sweep lists the engine again.
    expect(await use.sweep(removing(all, use, removed), true)).toBe(1);
    workspace("ws_later", "t", now);
    now += RESYNC_MS;
    expect(await use.sweep(removing(all, use, removed))).toBe(1);
    expect(removed).toEqual(["ws_other", "ws_later"]);
  });
});

describe("a use recorded while another gateway deletes the workspace", () => {
  it("leaves no marker behind, whichever comes first", async () => {
    const { all, client, workspace } = volumes();
    const markers = () => [...all.keys()].filter((k) => k.startsWith("airlock-wst-"));
    // The delete (volume, then markers) runs between the marker's creation and the check.
    workspace("ws_r", "t", 5);
    const racing = Object.create(client) as ContainerClient;
    racing.createVolume = async (name, labels) => {
      await client.createVolume(name, labels);
      all.delete(volumeOf("ws_r"));
      await new WorkspaceUse(client, () => 0).forget("ws_r");
    };
    await new WorkspaceUse(racing, () => 100_000).touch("ws_r", 20_000);
    expect(markers()).toEqual([]);
    // The delete done before the use: the marker goes at once too.
    await new WorkspaceUse(client, () => 200_000).touch("ws_r", 20_000);
    expect(markers()).toEqual([]);
    // A workspace that is still there keeps its marker.
    workspace("ws_s", "t", 5);
    await new WorkspaceUse(client, () => 300_000).touch("ws_s", 20_000);
    expect(markers()).toEqual(["airlock-wst-ws_s-300000"]);
  });
});

describe("the per-tenant workspace count", () => {
  it("counts the tenant's workspaces only, and refuses one past the limit", async () => {
    const { client, workspace } = volumes();
    workspace("ws_1", "t", 1);
    workspace("ws_2", "t", 1);
    workspace("ws_3", "u", 1);
    expect(await countWorkspaces(client, "t")).toBe(2);
    await assertRoomForWorkspace(client, "t", [gatewayLimit(3)]);
    await expect(assertRoomForWorkspace(client, "t", [gatewayLimit(2)])).rejects.toMatchObject({
      code: "quota_exceeded",
      details: { limit: "workspaces per tenant", max: 2, used: 2 },
    });
  });

  it("reserves the count with the create: ten at once against a limit of 2 make exactly 2", async () => {
    const { all, client, workspace } = volumes();
    workspace("ws_other", "u", 1);
    // An engine that answers after a moment, as the real one does: every
    // count would read 0 if nothing held it until the volume exists.
    const slow = {
      ...client,
      listVolumes: async (filter: string) => {
        await new Promise((r) => setTimeout(r, 5));
        return client.listVolumes(filter);
      },
    } as ContainerClient;
    const reservations = new LocalWorkspaceReservations(slow);
    const limits = [gatewayLimit(5), { name: "maxWorkspaces", max: 2 }];
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        reservations.reserve("t", limits, async () => {
          await new Promise((r) => setTimeout(r, 5));
          workspace(`ws_${i}`, "t", 1);
        }),
      ),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(2);
    const refused = outcomes.filter((o) => o.status === "rejected");
    expect(refused).toHaveLength(8);
    for (const r of refused) {
      expect(r.reason).toMatchObject({
        code: "quota_exceeded",
        details: { limit: "maxWorkspaces", max: 2, used: 2 },
        retryAfterSeconds: 60,
      });
    }
    expect(await countWorkspaces(client, "t")).toBe(2);
    // Another tenant's count is its own.
    await reservations.reserve("u", limits, async () => workspace("ws_u2", "u", 1));
    expect(all.has(volumeOf("ws_u2"))).toBe(true);
  });
});
