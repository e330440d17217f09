import { describe, expect, it } from "vitest";
import { type Manifest, ManifestCache, manifestBytes } from "../../executor/manifest-cache.ts";

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
