// Checks an uploaded tar entry by entry before anything of it is written, and
// re-packs it clean: every name safe and relative, only files, directories and
// links that stay inside /workspace, no device or FIFO, no setuid bits, within
// entry and byte caps. The first bad entry is a 400 naming it, and nothing has
// been written yet, so the workspace stays exactly as it was.
import { posix } from "node:path";
import { Readable } from "node:stream";
import { extract, pack } from "tar-stream";
import { AirlockError } from "../core/errors.ts";
import { pathProblem } from "../core/paths.ts";
import type { Owner } from "./archive.ts";

export interface UploadLimits {
  maxEntries: number;
  maxBytes: number;
}

type CleanEntry =
  | { type: "file"; name: string; mode: number; content: Buffer }
  | { type: "directory"; name: string; mode: number }
  | { type: "symlink"; name: string; target: string }
  | { type: "link"; name: string; target: string };

export interface CheckedUpload {
  entries: CleanEntry[];
  bytes: number;
}

function reject(entry: string, problem: string): never {
  throw new AirlockError(
    "invalid_request",
    `archive entry ${JSON.stringify(entry)} ${problem}; nothing was written`,
    {
      details: { entry, problem },
    },
  );
}

function cleanName(raw: string): string {
  const trimmed = raw.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  const problem = pathProblem(trimmed);
  if (problem !== undefined) reject(raw, problem);
  return posix.normalize(trimmed);
}

/** A symlink may point anywhere inside /workspace, by a relative path only. */
function checkSymlink(name: string, target: string): void {
  if (target === "" || target.includes("\0"))
    reject(name, "is a symlink with an empty or NUL target");
  if (target.startsWith("/"))
    reject(name, `is a symlink to an absolute path (${target}), outside /workspace`);
}

/** Hops through symlinks before a chain counts as a loop (Linux's own limit). */
const MAX_HOPS = 40;

/**
 * Where `target`, read from the directory `from`, really leads once the
 * archive's symlinks exist — followed as the kernel would, so a `..` after a
 * link climbs from where the link points, not from where it stands. Returns
 * the path's segments under /workspace, or undefined when it leaves it.
 * Lexical normalisation is not enough: with `x/up -> ..`, the link
 * `esc -> x/up/..` looks like `x` but is the parent of /workspace.
 */
function resolveInside(
  from: string[],
  target: string,
  links: ReadonlyMap<string, string>,
  hops: { left: number },
): string[] | undefined {
  let at = [...from];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (at.length === 0) return undefined;
      at.pop();
      continue;
    }
    const link = links.get([...at, part].join("/"));
    if (link === undefined) {
      at.push(part);
      continue;
    }
    if (--hops.left < 0) return undefined;
    const next = resolveInside(at, link, links, hops);
    if (next === undefined) return undefined;
    at = next;
  }
  return at;
}

/** Every symlink of the archive, with every other one in place, stays inside /workspace. */
function checkLinkChains(links: ReadonlyMap<string, string>): void {
  for (const [name, target] of links) {
    const from = name.split("/").slice(0, -1);
    if (resolveInside(from, target, links, { left: MAX_HOPS }) === undefined) {
      reject(name, `is a symlink to ${target}, which leads outside /workspace (or loops)`);
    }
  }
}

export async function checkUpload(tar: Buffer, limits: UploadLimits): Promise<CheckedUpload> {
  const entries: CleanEntry[] = [];
  const files = new Set<string>();
  /** Symlink name → target, as the archive will create them. */
  const links = new Map<string, string>();
  let bytes = 0;
  const ex = extract();
  Readable.from([tar]).pipe(ex);
  try {
    for await (const entry of ex) {
      const { header } = entry;
      if (entries.length >= limits.maxEntries) {
        entry.resume();
        reject(header.name, `is past the limit of ${limits.maxEntries} entries`);
      }
      const name = cleanName(header.name);
      for (const dir of parents(name)) {
        if (links.has(dir)) reject(header.name, `passes through the symlink ${dir}`);
      }
      switch (header.type) {
        case "file":
        case "contiguous-file": {
          bytes += header.size ?? 0;
          if (bytes > limits.maxBytes)
            reject(header.name, `takes the archive past ${limits.maxBytes} bytes`);
          const chunks: Buffer[] = [];
          for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
          entries.push({
            type: "file",
            name,
            mode: (header.mode ?? 0o644) & 0o777,
            content: Buffer.concat(chunks),
          });
          files.add(name);
          continue;
        }
        case "directory":
          entries.push({ type: "directory", name, mode: ((header.mode ?? 0o755) & 0o777) | 0o700 });
          break;
        case "symlink":
          checkSymlink(header.name, header.linkname ?? "");
          entries.push({ type: "symlink", name, target: header.linkname ?? "" });
          links.set(name, header.linkname ?? "");
          break;
        case "link": {
          const target = cleanName(header.linkname ?? "");
          if (!files.has(target))
            reject(
              header.name,
              `is a hard link to ${header.linkname}, which is not a file earlier in this archive`,
            );
          entries.push({ type: "link", name, target });
          break;
        }
        default:
          entry.resume();
          reject(
            header.name,
            `is a ${header.type ?? "unknown"} entry; only files, directories and links are accepted`,
          );
      }
      entry.resume();
    }
    // Only once every link is known: a chain can be built in any order.
    checkLinkChains(links);
  } catch (err) {
    if (err instanceof AirlockError) throw err;
    throw new AirlockError(
      "invalid_request",
      `the body is not a readable tar archive: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  } finally {
    ex.destroy();
  }
  return { entries, bytes };
}

function parents(name: string): string[] {
  const parts = name.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** The checked entries as a fresh tar owned by the sandbox user. */
export function repack(upload: CheckedUpload, owner: Owner): Readable {
  const tar = pack();
  const mtime = new Date();
  for (const e of upload.entries) {
    if (e.type === "file")
      tar.entry({ name: e.name, type: "file", mode: e.mode, mtime, ...owner }, e.content);
    else if (e.type === "directory")
      tar.entry({ name: `${e.name}/`, type: "directory", mode: e.mode, mtime, ...owner });
    else
      tar.entry({ name: e.name, type: e.type, linkname: e.target, mode: 0o777, mtime, ...owner });
  }
  tar.finalize();
  return Readable.from(tar);
}
