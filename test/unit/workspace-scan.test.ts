import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { scanArchive, sha256 } from "../../executor/archive.ts";
import type { BeforeEntry } from "../../executor/diff.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import { type Listing, parseListing } from "../../executor/listing.ts";
import type { CachedEntry } from "../../executor/manifest-cache.ts";
import {
  afterFromListings,
  beforeFromListing,
  manifestOf,
  PER_PATH_MAX,
} from "../../executor/workspace-scan.ts";
import { loadProfiles } from "../../policies/load.ts";
import { resolveJob } from "../../policies/resolve.ts";
import { makeTar } from "../support/tar.ts";

const job = resolveJob(loadProfiles(), { profile: "shell", command: "true" }, "t", {
  id: "ws_aaaaaaaaaaaaaaaaaaaa",
  volume: "v",
  sizeCapBytes: 1e9,
});

/** The engine's archive API over a fixed set of files, recording which paths were read. */
function engine(files: Record<string, string>) {
  const reads: string[] = [];
  const client = {
    async getArchive(_id: string, path: string) {
      reads.push(path);
      if (path === "/workspace") {
        const entries = Object.entries(files).map(([name, body]) => ({
          name: `workspace/${name}`,
          body,
        }));
        return Readable.from([
          await makeTar([{ name: "workspace/", type: "directory" }, ...entries]),
        ]);
      }
      const rel = path.slice("/workspace/".length);
      const body = files[rel];
      if (body === undefined) throw Object.assign(new Error("no such path"), { statusCode: 404 });
      return Readable.from([await makeTar([{ name: rel.slice(rel.lastIndexOf("/") + 1), body }])]);
    },
  } as unknown as ContainerClient;
  return { client, reads };
}

function listing(entries: Record<string, string>): Listing {
  const data = Object.entries(entries)
    .map(([path, stat]) => `${stat} ${path}\0`)
    .join("");
  const parsed = parseListing(Buffer.from(data), 1000);
  if (parsed === undefined) throw new Error("bad test listing");
  return parsed;
}

const cached = (stat: string, body: string): CachedEntry => ({
  stat,
  sha256: sha256(Buffer.from(body)),
  content: Buffer.from(body),
});

describe("beforeFromListing", () => {
  it("takes every entry from the cache when each stat record matches, reading nothing", async () => {
    const { client, reads } = engine({});
    const cache = new Map([["a", cached("f 1 2 1.0 1.0 644", "v1")]]);
    const before = await beforeFromListing(
      client,
      "c",
      job,
      listing({ a: "f 1 2 1.0 1.0 644" }),
      cache,
    );
    expect(before.get("a")).toMatchObject({
      sha256: sha256(Buffer.from("v1")),
      content: Buffer.from("v1"),
    });
    expect(reads).toEqual([]);
  });

  it("does not use an entry whose stat record differs: it reads that path through the engine", async () => {
    const { client, reads } = engine({ a: "v2", b: "same" });
    const cache = new Map([
      ["a", cached("f 1 2 1.0 1.0 644", "v1")],
      ["b", cached("f 2 4 1.0 1.0 644", "same")],
    ]);
    const before = await beforeFromListing(
      client,
      "c",
      job,
      // a was rewritten (new ctime) since the cache saw it.
      listing({ a: "f 1 2 1.0 9.0 644", b: "f 2 4 1.0 1.0 644" }),
      cache,
    );
    expect(reads).toEqual(["/workspace/a"]);
    expect(before.get("a")?.sha256).toBe(sha256(Buffer.from("v2")));
    expect(before.get("a")?.content?.toString()).toBe("v2");
    expect(before.get("b")?.sha256).toBe(sha256(Buffer.from("same")));
  });

  it("reads the whole workspace once when more entries than a few are not vouched for", async () => {
    const files = Object.fromEntries(
      Array.from({ length: PER_PATH_MAX + 1 }, (_, i) => [`f${i}`, `${i}`]),
    );
    const { client, reads } = engine(files);
    const before = await beforeFromListing(
      client,
      "c",
      job,
      listing(Object.fromEntries(Object.keys(files).map((p, i) => [p, `f ${i} 1 1.0 1.0 644`]))),
      undefined,
    );
    expect(reads).toEqual(["/workspace"]);
    expect(before.size).toBe(PER_PATH_MAX + 1);
  });
});

describe("afterFromListings", () => {
  const before = new Map<string, BeforeEntry>([
    ["same", { sha256: sha256(Buffer.from("s")) }],
    ["changed", { sha256: sha256(Buffer.from("old")), content: Buffer.from("old") }],
    ["hidden", { sha256: sha256(Buffer.from("h1")) }],
  ]);
  const beforeListing = listing({
    same: "f 1 1 1.0 1.0 644",
    changed: "f 2 3 1.0 1.0 644",
    hidden: "f 3 2 1.0 1.0 644",
  });

  it("keeps unchanged hashes, reads changed entries from the tar, and the engine for what the tar lacks", async () => {
    // "hidden" changed too, but the launcher's tar left it out (a job tampering with its hint).
    const { client, reads } = engine({ hidden: "h2" });
    const tar = Readable.from([
      await makeTar([
        { name: "./changed", body: "new" },
        { name: "./added", body: "+" },
      ]),
    ]);
    const afterListing = listing({
      same: "f 1 1 1.0 1.0 644",
      changed: "f 2 3 5.0 5.0 644",
      hidden: "f 3 2 5.0 5.0 644",
      added: "f 4 1 5.0 5.0 644",
    });
    const { scan, listed } = await afterFromListings(client, "c", job, before, {
      beforeListing,
      afterListing,
      tar,
    });
    expect(listed).toBe(true);
    expect(reads).toEqual(["/workspace/hidden"]);
    expect(scan.totalBytes).toBe(1 + 3 + 2 + 1);
    const hashes = Object.fromEntries([...scan.entries].map(([p, e]) => [p, e.sha256]));
    expect(hashes).toEqual({
      same: sha256(Buffer.from("s")),
      changed: sha256(Buffer.from("new")),
      hidden: sha256(Buffer.from("h2")),
      added: sha256(Buffer.from("+")),
    });
    // What the cache keeps: each entry's after record and hash, with small text contents.
    const manifest = manifestOf(job, afterListing, scan.entries, before);
    expect(manifest.get("changed")).toEqual({
      stat: "f 2 3 5.0 5.0 644",
      sha256: sha256(Buffer.from("new")),
      content: Buffer.from("new"),
    });
    expect(manifest.get("same")).toEqual({
      stat: "f 1 1 1.0 1.0 644",
      sha256: sha256(Buffer.from("s")),
    });
  });

  it("reads the whole workspace when the tar lacks more than a few changed entries", async () => {
    const { client, reads } = engine({
      same: "s",
      changed: "new",
      hidden: "h2",
      x: "1",
      y: "2",
      z: "3",
    });
    const afterListing = listing({
      same: "f 1 1 1.0 1.0 644",
      changed: "f 2 3 5.0 5.0 644",
      hidden: "f 3 2 5.0 5.0 644",
      x: "f 5 1 5.0 5.0 644",
      y: "f 6 1 5.0 5.0 644",
      z: "f 7 1 5.0 5.0 644",
    });
    const { scan, listed } = await afterFromListings(client, "c", job, before, {
      beforeListing,
      afterListing,
      tar: Readable.from([await makeTar([])]),
    });
    expect(reads).toEqual(["/workspace"]);
    expect(listed).toBe(false);
    expect(scan.entries.get("hidden")?.sha256).toBe(sha256(Buffer.from("h2")));
  });
});

describe("manifestOf", () => {
  it("keeps no binary content and does not vouch for an entry whose bytes disagree with the listing", () => {
    const afterListing = listing({ bin: "f 1 3 1.0 1.0 644", moved: "f 2 9 1.0 1.0 644" });
    const after = new Map([
      [
        "bin",
        {
          path: "bin",
          type: "file" as const,
          size: 3,
          sha256: "x",
          content: Buffer.from([0, 1, 2]),
        },
      ],
      ["moved", { path: "moved", type: "file" as const, size: 4, sha256: "y" }],
    ]);
    const manifest = manifestOf(job, afterListing, after, new Map());
    expect(manifest.get("bin")).toEqual({ stat: "f 1 3 1.0 1.0 644", sha256: "x" });
    expect(manifest.has("moved")).toBe(false);
  });
});

describe("scanArchive", () => {
  it("ends with an error when its stream is given up on midway, rather than waiting forever", async () => {
    const tar = await makeTar([{ name: "./a", body: "x".repeat(2000) }]);
    const stream = new PassThrough();
    stream.write(tar.subarray(0, 700));
    const scan = scanArchive(stream, {
      prefix: "./",
      maxBytes: 1e9,
      maxEntries: 10,
      keep: () => false,
      retain: () => false,
    });
    setTimeout(() => stream.destroy(new Error("did not end in time")), 20);
    await expect(scan).rejects.toThrow("did not end in time");
  });
});
