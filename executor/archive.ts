// Tar in and out of containers, never touching the host disk. Packing writes
// only paths that passed core/paths.ts; reading walks Docker's archive of
// /workspace entry by entry, hashing as it streams.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { extract, pack } from "tar-stream";
import type { JobFile } from "../core/job.ts";
import { parentDirs } from "../core/paths.ts";

export interface Owner {
  uid: number;
  gid: number;
}

export function parseOwner(user: string): Owner {
  const [uid, gid] = user.split(":").map(Number);
  return { uid: uid ?? 1000, gid: gid ?? uid ?? 1000 };
}

/**
 * A tar of `files` plus every directory they (and `extraDirs`) need, owned by
 * `owner`, to be extracted at /workspace. Directories come first so that the
 * engine creates them with our owner and mode, not as root.
 */
export function packFiles(
  files: readonly JobFile[],
  owner: Owner,
  extraDirs: readonly string[] = [],
): Readable {
  const dirs = new Set<string>();
  for (const file of files) for (const dir of parentDirs(file.path)) dirs.add(dir);
  for (const dir of extraDirs) {
    for (const parent of parentDirs(dir)) dirs.add(parent);
    dirs.add(dir);
  }
  const tar = pack();
  const mtime = new Date();
  for (const dir of [...dirs].sort()) {
    tar.entry({ name: `${dir}/`, type: "directory", mode: 0o755, mtime, ...owner });
  }
  for (const file of files) {
    tar.entry(
      {
        name: file.path,
        type: "file",
        mode: file.mode,
        size: file.content.length,
        mtime,
        ...owner,
      },
      file.content,
    );
  }
  tar.finalize();
  // tar-stream's streams are streamx streams; dockerode wants a Node stream.
  return Readable.from(tar);
}

export interface ScannedEntry {
  path: string;
  type: "file" | "symlink";
  size: number;
  sha256: string;
  /** Present when the caller asked to keep this entry's bytes. */
  content?: Buffer;
}

export interface ScanOptions {
  /** Prefix Docker puts on every name: "workspace/" for an archive of /workspace. */
  prefix: string;
  maxBytes: number;
  maxEntries: number;
  /** Whether to buffer the bytes of a file of this path and size while hashing it. */
  keep: (path: string, size: number) => boolean;
  /** After hashing: whether the buffered bytes are worth holding on to. */
  retain: (entry: ScannedEntry, content: Buffer) => boolean;
}

export interface ScanResult {
  entries: Map<string, ScannedEntry>;
  truncated: boolean;
  /** Sum of the sizes of the regular files seen. */
  totalBytes: number;
}

/** Reads a tar stream to the end (or to the caps), hashing regular files and symlinks. */
export async function scanArchive(stream: Readable, options: ScanOptions): Promise<ScanResult> {
  const entries = new Map<string, ScannedEntry>();
  const ex = extract();
  // pipe() ends the extractor only at the source's end: a source destroyed
  // midway (given up on) must end the scan too, with an error.
  let scanning = true;
  const abort = (err?: Error) => {
    if (scanning) ex.destroy(err ?? new Error("the archive stream closed before its end"));
  };
  stream.once("error", abort);
  stream.once("close", () => {
    if (!stream.readableEnded) abort();
  });
  stream.pipe(ex);
  let bytes = 0;
  let count = 0;
  let truncated = false;
  let totalBytes = 0;
  try {
    for await (const entry of ex) {
      const { header } = entry;
      const name = header.name.replace(/\/+$/, "");
      const path = name.startsWith(options.prefix) ? name.slice(options.prefix.length) : "";
      count++;
      bytes += header.size ?? 0;
      if (count > options.maxEntries || bytes > options.maxBytes) {
        truncated = true;
        entry.resume();
        break;
      }
      if (path === "" || (header.type !== "file" && header.type !== "symlink")) {
        entry.resume();
        continue;
      }
      if (header.type === "symlink") {
        const target = Buffer.from(header.linkname ?? "", "utf8");
        entries.set(path, { path, type: "symlink", size: target.length, sha256: sha256(target) });
        entry.resume();
        continue;
      }
      const size = header.size ?? 0;
      totalBytes += size;
      const keep = options.keep(path, size);
      const hash = createHash("sha256");
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        hash.update(chunk);
        if (keep) chunks.push(chunk);
      }
      const scanned: ScannedEntry = { path, type: "file", size, sha256: hash.digest("hex") };
      if (keep) {
        const content = Buffer.concat(chunks);
        if (options.retain(scanned, content)) scanned.content = content;
      }
      entries.set(path, scanned);
    }
  } finally {
    scanning = false;
    stream.unpipe(ex);
    stream.destroy();
    ex.destroy();
  }
  return { entries, truncated, totalBytes };
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
