import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pack } from "tar-stream";
import { describe, expect, it } from "vitest";
import { packFiles, scanArchive } from "../../executor/archive.ts";
import { computeDiff } from "../../executor/diff.ts";

const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");

async function entriesOf(stream: Readable) {
  const names: { name: string; type: string; mode: number; uid: number }[] = [];
  const { extract } = await import("tar-stream");
  const ex = extract();
  stream.pipe(ex);
  for await (const entry of ex) {
    names.push({
      name: entry.header.name,
      type: entry.header.type ?? "",
      mode: entry.header.mode ?? 0,
      uid: entry.header.uid ?? -1,
    });
    entry.resume();
  }
  return names;
}

describe("packFiles", () => {
  it("creates parent directories first, owned by the sandbox user", async () => {
    const tar = packFiles(
      [
        { path: "src/app/main.py", content: Buffer.from("x"), mode: 0o644 },
        { path: "run.sh", content: Buffer.from("y"), mode: 0o755 },
      ],
      { uid: 1000, gid: 1000 },
      ["out/deep"],
    );
    expect(await entriesOf(tar)).toEqual([
      { name: "out/", type: "directory", mode: 0o755, uid: 1000 },
      { name: "out/deep/", type: "directory", mode: 0o755, uid: 1000 },
      { name: "src/", type: "directory", mode: 0o755, uid: 1000 },
      { name: "src/app/", type: "directory", mode: 0o755, uid: 1000 },
      { name: "src/app/main.py", type: "file", mode: 0o644, uid: 1000 },
      { name: "run.sh", type: "file", mode: 0o755, uid: 1000 },
    ]);
  });
});

function dockerLikeArchive(
  files: Record<string, string | Buffer>,
  links: Record<string, string> = {},
): Readable {
  const tar = pack();
  tar.entry({ name: "workspace/", type: "directory" });
  for (const [name, content] of Object.entries(files))
    tar.entry({ name: `workspace/${name}` }, content);
  for (const [name, target] of Object.entries(links))
    tar.entry({ name: `workspace/${name}`, type: "symlink", linkname: target });
  tar.finalize();
  return Readable.from(tar);
}

const keepAll = {
  prefix: "workspace/",
  maxBytes: 1e9,
  maxEntries: 1e6,
  keep: () => true,
  retain: () => true,
};

describe("scanArchive + computeDiff", () => {
  it("reports added, modified and deleted files with hashes, patches and returned files", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]);
    const scan = await scanArchive(
      dockerLikeArchive(
        { "data.csv": "a,b\n1,2\n", "out/plot.png": png, "new.txt": "hello\n" },
        { link: "/etc/passwd" },
      ),
      keepAll,
    );
    const before = new Map([
      ["data.csv", { sha256: sha("a,b\n"), content: Buffer.from("a,b\n") }],
      ["old.txt", { sha256: sha("bye") }],
    ]);
    const { diff, files, filesOmitted } = computeDiff(before, scan.entries, {
      patchMaxBytes: 1000,
      returnMaxBytes: 1000,
      returnFiles: ["out/**", "*.txt"],
      truncated: scan.truncated,
    });
    expect(diff.added.map((e) => [e.path, e.type, e.size])).toEqual([
      ["link", "symlink", 11],
      ["new.txt", "file", 6],
      ["out/plot.png", "file", 8],
    ]);
    expect(diff.added.find((e) => e.path === "out/plot.png")?.sha256).toBe(sha(png));
    expect(diff.added.find((e) => e.path === "out/plot.png")?.patch).toBeUndefined();
    expect(diff.added.find((e) => e.path === "new.txt")?.patch).toContain("+hello");
    expect(diff.modified).toHaveLength(1);
    expect(diff.modified[0]?.patch).toContain("+1,2");
    expect(diff.deleted).toEqual([{ path: "old.txt" }]);
    expect(files).toEqual([
      { path: "new.txt", encoding: "utf8", content: "hello\n" },
      { path: "out/plot.png", encoding: "base64", content: png.toString("base64") },
    ]);
    expect(filesOmitted).toEqual([]);
  });

  it("leaves unchanged files out and omits returned files past the byte cap", async () => {
    const scan = await scanArchive(
      dockerLikeArchive({ "same.txt": "x", "big.txt": "y".repeat(50) }),
      keepAll,
    );
    const { diff, files, filesOmitted } = computeDiff(
      new Map([["same.txt", { sha256: sha("x") }]]),
      scan.entries,
      {
        patchMaxBytes: 10,
        returnMaxBytes: 10,
        returnFiles: ["*.txt"],
        truncated: false,
      },
    );
    expect(diff.added.map((e) => e.path)).toEqual(["big.txt"]);
    expect(diff.modified).toEqual([]);
    expect(diff.added[0]?.patch).toBeUndefined();
    expect(files).toEqual([]);
    expect(filesOmitted).toEqual(["big.txt"]);
  });

  it("stops at the entry cap and marks the diff truncated without inventing deletions", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 20; i++) files[`f${i}`] = String(i);
    const scan = await scanArchive(dockerLikeArchive(files), { ...keepAll, maxEntries: 5 });
    expect(scan.truncated).toBe(true);
    const { diff } = computeDiff(new Map([["f19", { sha256: "x" }]]), scan.entries, {
      patchMaxBytes: 0,
      returnMaxBytes: 0,
      returnFiles: [],
      truncated: true,
    });
    expect(diff.truncated).toBe(true);
    expect(diff.deleted).toEqual([]);
  });
});
