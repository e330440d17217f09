import { describe, expect, it } from "vitest";
import type { ManifestRecords } from "../../core/state.ts";
import {
  MAX_STORED_MANIFEST_BYTES,
  type Manifest,
  ManifestCache,
  manifestBytes,
} from "../../executor/manifest-cache.ts";
import { decodeManifest, encodeManifest } from "../../executor/manifest-codec.ts";

const manifest = (n: number, content?: Buffer): Manifest =>
  new Map(
    Array.from({ length: n }, (_, i) => [
      `f${i}`,
      content === undefined
        ? { stat: `f ${i} 1 1.0 1.0 644`, sha256: "a".repeat(64) }
        : { stat: `f ${i} 1 1.0 1.0 644`, sha256: "a".repeat(64), content },
    ]),
  );

describe("ManifestCache", () => {
  it("gives back what was set, until it is deleted", () => {
    const cache = new ManifestCache(1_000_000);
    const m = manifest(3);
    cache.set("ws1", m);
    expect(cache.get("ws1")).toBe(m);
    expect(cache.totalBytes).toBe(manifestBytes(m));
    cache.delete("ws1");
    expect(cache.get("ws1")).toBeUndefined();
    expect(cache.totalBytes).toBe(0);
  });

  it("counts kept contents in its bound", () => {
    expect(manifestBytes(manifest(1, Buffer.alloc(1000)))).toBe(manifestBytes(manifest(1)) + 1000);
  });

  it("stays within its bound by dropping the least recently used workspace", () => {
    const one = manifestBytes(manifest(10));
    const cache = new ManifestCache(one * 3);
    cache.set("a", manifest(10));
    cache.set("b", manifest(10));
    cache.set("c", manifest(10));
    expect(cache.get("a")).toBeDefined(); // a is now the most recent; b the least
    cache.set("d", manifest(10));
    expect(cache.get("b")).toBeUndefined();
    expect(["a", "c", "d"].map((id) => cache.get(id) !== undefined)).toEqual([true, true, true]);
    expect(cache.size).toBe(3);
    expect(cache.totalBytes).toBeLessThanOrEqual(cache.maxBytes);
  });

  it("replaces a workspace's manifest without counting the old one", () => {
    const cache = new ManifestCache(1_000_000);
    cache.set("a", manifest(10));
    cache.set("a", manifest(2));
    expect(cache.totalBytes).toBe(manifestBytes(manifest(2)));
  });

  it("keeps no manifest larger than the whole bound, and forgets the older one", () => {
    const cache = new ManifestCache(manifestBytes(manifest(5)));
    cache.set("a", manifest(5));
    cache.set("a", manifest(6));
    expect(cache.get("a")).toBeUndefined();
    expect(cache.totalBytes).toBe(0);
  });

  it("keeps nothing with a bound of 0", () => {
    const cache = new ManifestCache(0);
    cache.set("a", manifest(1));
    expect(cache.get("a")).toBeUndefined();
  });
});

/** A store that keeps bytes in a Map and counts its calls. */
function memoryStore(): ManifestRecords & { rows: Map<string, Uint8Array>; calls: string[] } {
  const rows = new Map<string, Uint8Array>();
  const calls: string[] = [];
  return {
    rows,
    calls,
    get: async (ws) => {
      calls.push(`get ${ws}`);
      return rows.get(ws);
    },
    put: async (ws, data) => {
      calls.push(`put ${ws}`);
      rows.set(ws, data);
    },
    delete: async (ws) => {
      calls.push(`delete ${ws}`);
      rows.delete(ws);
    },
  };
}

describe("manifests as bytes", () => {
  it("decode what was encoded: paths of any UTF-8, stat records, hashes, kept content", () => {
    const m: Manifest = new Map([
      ["dir/ünï cödé.txt", { stat: "f 12 5 1.5 1.5 644", sha256: "0f".repeat(32) }],
      ["link", { stat: "l 13 4 2.0 2.0 777", sha256: "ab".repeat(32), content: Buffer.from("x") }],
      ["empty", { stat: "f - 0 3.0 3.0 600", sha256: "cd".repeat(32), content: Buffer.alloc(0) }],
    ]);
    expect(decodeManifest(encodeManifest(m))).toEqual(m);
    expect(decodeManifest(encodeManifest(new Map()))).toEqual(new Map());
  });

  it("decode nothing from bytes that are cut short, too long, or not a manifest", () => {
    const bytes = encodeManifest(manifest(3, Buffer.from("hello")));
    expect(decodeManifest(bytes.subarray(0, bytes.length - 1))).toBeUndefined();
    expect(decodeManifest(Buffer.concat([bytes, Buffer.from([0])]))).toBeUndefined();
    expect(decodeManifest(Buffer.from("{}"))).toBeUndefined();
    expect(decodeManifest(Buffer.from("AM2\0\0\0\0"))).toBeUndefined();
  });
});

describe("ManifestCache with a store", () => {
  const settle = () => new Promise((r) => setTimeout(r, 10));

  it("writes each manifest after the caller's turn, and a new cache (a restart) loads it", async () => {
    const store = memoryStore();
    const cache = new ManifestCache(1_000_000, { store, warn: () => {} });
    cache.set("ws1", manifest(3));
    expect(store.calls).toEqual([]);
    await cache.flush();
    expect(store.calls).toEqual(["put ws1"]);
    const restarted = new ManifestCache(1_000_000, { store, warn: () => {} });
    expect(restarted.get("ws1")).toBeUndefined();
    expect(await restarted.load("ws1")).toEqual(manifest(3));
    // Now in memory too: the store is not asked again.
    expect(await restarted.load("ws1")).toEqual(manifest(3));
    expect(store.calls.filter((c) => c === "get ws1")).toHaveLength(1);
  });

  it("writes only the latest of quick changes, and a delete is never overtaken", async () => {
    const store = memoryStore();
    const cache = new ManifestCache(1_000_000, { store, warn: () => {} });
    cache.set("ws1", manifest(1));
    cache.set("ws1", manifest(2));
    cache.set("ws2", manifest(1));
    cache.delete("ws2");
    await cache.flush();
    expect(store.calls).toEqual(["put ws1", "delete ws2"]);
    expect(decodeManifest(store.rows.get("ws1") ?? Buffer.alloc(0))).toEqual(manifest(2));
    expect(await new ManifestCache(1_000_000, { store, warn: () => {} }).load("ws2")).toBe(
      undefined,
    );
  });

  it("keeps no stale manifest for one too big to write; a store that fails costs only a warning", async () => {
    const store = memoryStore();
    const cache = new ManifestCache(Number.MAX_SAFE_INTEGER, { store, warn: () => {} });
    cache.set("ws1", manifest(1));
    await cache.flush();
    cache.set("ws1", manifest(1, Buffer.alloc(MAX_STORED_MANIFEST_BYTES)));
    await cache.flush();
    expect(store.rows.has("ws1")).toBe(false);
    const warnings: string[] = [];
    const failing: ManifestRecords = {
      get: async () => Promise.reject(new Error("disk")),
      put: async () => Promise.reject(new Error("disk")),
      delete: async () => Promise.reject(new Error("disk")),
    };
    const broken = new ManifestCache(1_000_000, { store: failing, warn: (m) => warnings.push(m) });
    broken.set("ws1", manifest(1));
    await broken.flush();
    await settle();
    expect(
      await new ManifestCache(1_000_000, { store: failing, warn: (m) => warnings.push(m) }).load(
        "ws1",
      ),
    ).toBeUndefined();
    expect(warnings).toHaveLength(2);
  });
});
