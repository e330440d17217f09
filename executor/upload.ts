// Checks an uploaded tar entry by entry as it arrives, and re-packs it clean
// as it goes: every name safe and relative, only files, directories and links
// that stay inside /workspace, no device or FIFO, no setuid bits, within entry
// and byte caps (and the workspace's size cap). Nothing is held but one
// entry's header and the names seen so far: a file's bytes stream from the
// upload to the clean tar with backpressure, so memory does not grow with the
// archive. The clean tar goes under a staging directory that the caller swaps
// in only once the whole archive is in and checked (workspace-files.ts); the
// first bad entry is a 400 naming it, the staging directory is dropped, and
// the workspace stays exactly as it was.
import { once } from "node:events";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { extract, type Header, type Pack, pack } from "tar-stream";
import { AirlockError } from "../core/errors.ts";
import { pathProblem } from "../core/paths.ts";
import type { Owner } from "./archive.ts";

export interface UploadLimits {
  maxEntries: number;
  maxBytes: number;
}

type CleanEntry =
  | { type: "file"; name: string; mode: number; size: number }
  | { type: "directory"; name: string; mode: number }
  | { type: "symlink"; name: string; target: string }
  | { type: "link"; name: string; target: string };

/** What an archive held, once whole and checked. */
export interface CheckedUpload {
  entries: number;
  /** The regular files' bytes. */
  bytes: number;
  /** What the workspace will hold: `bytes`, plus each hard link at its file's size (as a listing counts it). */
  heldBytes: number;
}

function reject(entry: string, problem: string): never {
  throw new AirlockError(
    "invalid_request",
    `archive entry ${JSON.stringify(entry)} ${problem}; the workspace is unchanged`,
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

/**
 * The upload rules for the symlinks of a whole tree (a checkpoint's or a
 * fork's source): each relative, and none leading outside /workspace with
 * the others in place. Throws the upload's own refusal naming the first that breaks them.
 */
export function checkTreeLinks(links: ReadonlyMap<string, string>): void {
  for (const [name, target] of links) checkSymlink(name, target);
  checkLinkChains(links);
}

/** The rules, one header at a time; what it remembers is the names (for links) and the counts. */
class EntryChecker {
  entries = 0;
  bytes = 0;
  heldBytes = 0;
  private readonly limits: UploadLimits;
  /** File name → size, for hard links to them. */
  private readonly files = new Map<string, number>();
  /** Symlink name → target, as the archive will create them. */
  private readonly links = new Map<string, string>();

  constructor(limits: UploadLimits) {
    this.limits = limits;
  }

  check(header: Header): CleanEntry {
    if (this.entries >= this.limits.maxEntries) {
      reject(header.name, `is past the limit of ${this.limits.maxEntries} entries`);
    }
    this.entries++;
    const name = cleanName(header.name);
    for (const dir of parents(name)) {
      if (this.links.has(dir)) reject(header.name, `passes through the symlink ${dir}`);
    }
    switch (header.type) {
      case "file":
      case "contiguous-file": {
        const size = header.size ?? 0;
        this.bytes += size;
        this.heldBytes += size;
        if (this.bytes > this.limits.maxBytes)
          reject(header.name, `takes the archive past ${this.limits.maxBytes} bytes`);
        this.files.set(name, size);
        return { type: "file", name, mode: (header.mode ?? 0o644) & 0o777, size };
      }
      case "directory":
        return { type: "directory", name, mode: ((header.mode ?? 0o755) & 0o777) | 0o700 };
      case "symlink":
        checkSymlink(header.name, header.linkname ?? "");
        this.links.set(name, header.linkname ?? "");
        return { type: "symlink", name, target: header.linkname ?? "" };
      case "link": {
        const target = cleanName(header.linkname ?? "");
        const size = this.files.get(target);
        if (size === undefined)
          reject(
            header.name,
            `is a hard link to ${header.linkname}, which is not a file earlier in this archive`,
          );
        this.heldBytes += size;
        return { type: "link", name, target };
      }
      default:
        reject(
          header.name,
          `is a ${header.type ?? "unknown"} entry; only files, directories and links are accepted`,
        );
    }
  }

  /** Only once every link is known: a chain can be built in any order. */
  finish(): void {
    checkLinkChains(this.links);
  }
}

export interface CleanTarOptions {
  limits: UploadLimits;
  /** Every entry is owned by the sandbox user. */
  owner: Owner;
  /** The directory every entry goes under (made by the clean tar's first entry). */
  under: string;
  /** Called with the bytes the workspace would hold after each file; throws to refuse the archive. */
  checkHeld?: (heldBytes: number) => void;
}

export interface CleanTar {
  /** The clean tar, entry by entry as the upload's are checked; it fails at the first refusal. */
  tar: Readable;
  /** The counts once the upload is whole and checked; the first refusal otherwise. */
  checked: Promise<CheckedUpload>;
  /** Whether any entry has gone out on `tar` (so something may have been written under `under`). */
  started(): boolean;
  /** Stops reading and fails `tar` and `checked` (whoever reads `tar` gave up). */
  abort(err: Error): void;
}

/** Checks `source` (a tar) entry by entry and re-packs it clean under `options.under`, streamed. */
export function cleanTar(source: Readable, options: CleanTarOptions): CleanTar {
  const out = pack();
  const ex = extract();
  // Their failures reach the caller through `checked` and `tar`'s reader; an
  // 'error' event with no listener left (the reader gone first) would throw.
  out.on("error", () => undefined);
  ex.on("error", () => undefined);
  let started = false;
  // The staging directory first, when the first entry is ready (an empty archive makes it at the end).
  const begin = () => {
    if (started) return;
    started = true;
    const { owner, under } = options;
    out.entry({ ...dirHeader(under, 0o700), ...owner });
  };
  let reading = true;
  const cut = (err?: Error) => {
    if (reading) ex.destroy(err ?? new Error("the upload ended before the archive did"));
  };
  // `on`, not `once`: a body can fail more than once (an aborted request), and
  // any failure after the check ended must not go unhandled.
  source.on("error", cut);
  source.once("close", () => {
    if (!source.readableEnded) cut();
  });
  source.pipe(ex);
  const checked = (async () => {
    const checker = new EntryChecker(options.limits);
    const dirs = new Set<string>();
    try {
      for await (const entry of ex) {
        const clean = checker.check(entry.header);
        if (clean.type === "file") options.checkHeld?.(checker.heldBytes);
        if (clean.type === "link") options.checkHeld?.(checker.heldBytes);
        begin();
        // Parents the archive leaves out are made by their own entries, so that the
        // engine makes them as the sandbox user (it would make them as root).
        for (const dir of parents(clean.name)) {
          if (dirs.has(dir)) continue;
          dirs.add(dir);
          out.entry({ ...dirHeader(`${options.under}/${dir}`, 0o755), ...options.owner });
        }
        if (clean.type === "directory") dirs.add(clean.name);
        await copyEntry(out, clean, entry, options);
      }
      checker.finish();
      begin();
      out.finalize();
      return { entries: checker.entries, bytes: checker.bytes, heldBytes: checker.heldBytes };
    } catch (err) {
      const refusal = asRefusal(err);
      out.destroy(refusal);
      throw refusal;
    } finally {
      reading = false;
      source.unpipe(ex);
      ex.destroy();
    }
  })();
  // Whoever awaits `checked` sees the refusal; `tar` fails with it too.
  checked.catch(() => undefined);
  return {
    tar: Readable.from(out),
    checked,
    started: () => started,
    abort: (err) => cut(err),
  };
}

function asRefusal(err: unknown): AirlockError {
  if (err instanceof AirlockError) return err;
  return new AirlockError(
    "invalid_request",
    `the body is not a readable tar archive: ${(err as Error).message}`,
    { cause: err },
  );
}

/** One checked entry into the clean tar; a file's bytes stream through, paused while the tar's reader is full. */
async function copyEntry(
  out: Pack,
  clean: CleanEntry,
  entry: AsyncIterable<unknown> & { resume(): unknown },
  { owner, under }: CleanTarOptions,
): Promise<void> {
  const mtime = new Date();
  const name = `${under}/${clean.name}`;
  if (clean.type !== "file") {
    entry.resume();
    if (clean.type === "directory") out.entry({ ...dirHeader(name, clean.mode), ...owner });
    else {
      // A hard link names its file by its path in the archive, which is now under `under` too.
      const linkname = clean.type === "link" ? `${under}/${clean.target}` : clean.target;
      out.entry({ name, type: clean.type, linkname, mode: 0o777, mtime, ...owner });
    }
    return;
  }
  let sink: ReturnType<Pack["entry"]> | undefined;
  const written = new Promise<void>((resolve, reject) => {
    sink = out.entry(
      { name, type: "file", mode: clean.mode, size: clean.size, mtime, ...owner },
      (err) => (err ? reject(err) : resolve()),
    );
  });
  written.catch(() => undefined);
  if (sink === undefined) throw new Error("tar-stream made no entry stream");
  // Its failure comes through `written`; destroyed with the tar, it must not throw.
  sink.on("error", () => undefined);
  for await (const chunk of entry) {
    if (!sink.write(chunk as Buffer)) await once(sink, "drain");
  }
  sink.end(undefined);
  await written;
}

function dirHeader(name: string, mode: number) {
  return { name: `${name}/`, type: "directory" as const, mode, mtime: new Date() };
}

function parents(name: string): string[] {
  const parts = name.split("/");
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
}
