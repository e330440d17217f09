// File operations on a workspace, each through its own throwaway container and
// the engine's archive API (nothing is extracted on the host). Every path is
// checked before use, and every directory on the way to it is checked not to be
// a symlink, so no read or write follows a link out of /workspace. These run
// under the workspace's lock, so nothing changes the tree between check and use.
import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { extract, pack } from "tar-stream";
import { AirlockError } from "../core/errors.ts";
import { parentDirs, safeRelativePath, WORKSPACE_DIR } from "../core/paths.ts";
import { packFiles, parseOwner } from "./archive.ts";
import { type ContainerClient, MODE_DIR, MODE_SYMLINK, type PathStat } from "./docker.ts";
import { JobQueue } from "./queue.ts";
import { type CheckedUpload, cleanTar, type UploadLimits } from "./upload.ts";
import { assertWithinCap } from "./workspace-size.ts";
import type { FileContent, Workspace, WorkspaceStore } from "./workspaces.ts";

export interface FileEntry {
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  mode: string;
  mtime: string;
  target?: string;
}

const MAX_LISTING = 10_000;

function kindOf(stat: PathStat): FileEntry["type"] {
  if ((stat.mode & MODE_SYMLINK) !== 0) return "symlink";
  if ((stat.mode & MODE_DIR) !== 0) return "directory";
  return (stat.mode & ((2 ** 26) | (2 ** 25) | (2 ** 24) | (2 ** 21))) === 0 ? "file" : "other";
}

/** Stats `path` after proving that no directory on the way to it is a symlink. */
async function statInside(
  client: ContainerClient,
  cid: string,
  path: string,
): Promise<PathStat | undefined> {
  for (const dir of parentDirs(path)) {
    const stat = await client.statPath(cid, `${WORKSPACE_DIR}/${dir}`);
    if (stat === undefined) return undefined;
    if (kindOf(stat) === "symlink") {
      throw new AirlockError(
        "invalid_request",
        `path ${JSON.stringify(path)} passes through the symlink ${dir}; links are not followed`,
        {
          details: { field: "path", symlink: dir },
        },
      );
    }
    if (kindOf(stat) !== "directory") return undefined;
  }
  return client.statPath(cid, `${WORKSPACE_DIR}/${path}`);
}

function notFound(path: string): AirlockError {
  return new AirlockError("not_found", `no file ${JSON.stringify(path)} in the workspace`, {
    details: { path },
  });
}

/** How many archive imports stream at once, and how many more may wait (past that, 429 busy). */
export interface ImportBounds {
  concurrency: number;
  maxQueue: number;
}

export const DEFAULT_IMPORT_BOUNDS: ImportBounds = { concurrency: 4, maxQueue: 16 };

export class WorkspaceFiles {
  private readonly store: WorkspaceStore;
  private readonly client: ContainerClient;
  private readonly uploadLimits: UploadLimits;
  private readonly imports: JobQueue;

  constructor(
    store: WorkspaceStore,
    client: ContainerClient,
    uploadLimits: UploadLimits,
    importBounds: ImportBounds | undefined = DEFAULT_IMPORT_BOUNDS,
  ) {
    this.store = store;
    this.client = client;
    this.uploadLimits = uploadLimits;
    this.imports = new JobQueue({
      ...(importBounds ?? DEFAULT_IMPORT_BOUNDS),
      name: "archive import",
    });
  }

  /** Everything under `dir` (the whole workspace when empty), symlinks reported as symlinks. */
  async list(tenant: string, id: string, dir: string): Promise<FileEntry[]> {
    const rel = dir === "" || dir === "." ? "" : safeRelativePath(dir, "path");
    return this.store.operate(tenant, id, (ws) =>
      this.store.withFileContainer(ws, async (cid) => {
        if (rel !== "") {
          const stat = await statInside(this.client, cid, rel);
          if (stat === undefined) throw notFound(rel);
          if (kindOf(stat) !== "directory") {
            throw new AirlockError(
              "invalid_request",
              `path ${JSON.stringify(rel)} is a ${kindOf(stat)}, not a directory`,
            );
          }
        }
        const archive = await this.client.getArchive(
          cid,
          rel === "" ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${rel}`,
        );
        return listArchive(archive, rel);
      }),
    );
  }

  async read(tenant: string, id: string, raw: string): Promise<FileContent> {
    const path = safeRelativePath(raw, "path");
    return this.store.streamOut(tenant, id, async (_ws, cid) => {
      const stat = await statInside(this.client, cid, path);
      if (stat === undefined) throw notFound(path);
      const kind = kindOf(stat);
      if (kind === "symlink") {
        throw new AirlockError(
          "invalid_request",
          `${path} is a symlink (to ${stat.linkTarget}); links are not followed`,
          {
            details: { path, target: stat.linkTarget },
          },
        );
      }
      if (kind !== "file")
        throw new AirlockError("invalid_request", `${path} is a ${kind}, not a file`);
      return {
        size: stat.size,
        stream: fileStream(await this.client.getArchive(cid, `${WORKSPACE_DIR}/${path}`)),
      };
    });
  }

  /** Writes a file, refused (413) when it would take the workspace past its size cap. */
  async write(tenant: string, id: string, raw: string, content: Buffer) {
    const path = safeRelativePath(raw, "path");
    return this.store.operate(tenant, id, async (ws) => {
      const before = await this.store.sizeOf(ws);
      return this.store.withFileContainer(ws, async (cid) => {
        const stat = await statInside(this.client, cid, path);
        if (stat !== undefined && kindOf(stat) !== "file") {
          throw new AirlockError(
            "invalid_request",
            `${path} is a ${kindOf(stat)}; only a file can be replaced`,
          );
        }
        const after = before - (stat?.size ?? 0) + content.length;
        assertWithinCap(`workspace ${ws.id}`, this.store.sizeCap(ws.tenant), before, after);
        await this.client.putArchive(
          cid,
          WORKSPACE_DIR,
          packFiles([{ path, content, mode: 0o644 }], parseOwner(ws.profile.user)),
        );
        this.store.setSize(ws, after);
        return {
          path,
          size: content.length,
          sha256: createHash("sha256").update(content).digest("hex"),
        };
      });
    });
  }

  async remove(tenant: string, id: string, raw: string): Promise<void> {
    const path = safeRelativePath(raw, "path");
    await this.store.operate(tenant, id, async (ws) => {
      const exists = await this.store.withFileContainer(ws, (cid) =>
        statInside(this.client, cid, path),
      );
      if (exists === undefined) throw notFound(path);
      // rm does not follow a final symlink, and no parent is one (checked above).
      const result = await this.store.runSystem(ws, [
        "rm",
        "-rf",
        "--",
        `${WORKSPACE_DIR}/${path}`,
      ]);
      if (result.status !== "ok")
        throw new AirlockError("internal", `deleting ${path} failed: ${result.stderr.trim()}`);
    });
  }

  /** The whole workspace as a tar, names relative to /workspace, streamed. */
  async exportTar(tenant: string, id: string): Promise<FileContent> {
    return this.store.streamOut(tenant, id, async (_ws, cid) => ({
      stream: stripPrefix(await this.client.getArchive(cid, WORKSPACE_DIR), "workspace/"),
    }));
  }

  /**
   * Replaces the workspace's contents with a checked archive, streamed: the
   * upload is checked entry by entry as it arrives (upload.ts) and goes, clean,
   * through the engine's archive API into a staging directory inside the
   * workspace; only once the whole archive is in and checked is the staging
   * directory swapped in. A refusal or a failure on the way drops the staging
   * directory, so the workspace is as it was. The upload is read under the
   * workspace's lock (a slow upload holds the workspace's other operations),
   * and at most ImportBounds.concurrency imports stream at once.
   */
  async importTar(
    tenant: string,
    id: string,
    body: Readable,
  ): Promise<{ entries: number; bytes: number }> {
    try {
      return await this.importUnder(tenant, id, body);
    } catch (err) {
      // The rest of a refused upload is read and dropped (it is within the body
      // limit), so that the client, still sending, gets the answer: a server
      // that closes mid-upload leaves many clients with a broken pipe instead.
      await discardRest(body);
      throw err;
    }
  }

  private importUnder(
    tenant: string,
    id: string,
    body: Readable,
  ): Promise<{ entries: number; bytes: number }> {
    return this.imports.run(() =>
      this.store.operate(tenant, id, async (ws: Workspace) => {
        const stage = `.airlock-import-${randomBytes(8).toString("hex")}`;
        const upload = await this.stageUpload(ws, body, stage);
        const argv = ["/bin/sh", "-c", SWAP_SCRIPT, "sh", stage];
        const result = await this.store.runSystem(ws, argv);
        if (result.status !== "ok") {
          throw new AirlockError(
            "internal",
            `swapping the imported archive in failed, and the workspace may hold part of each: ${result.stderr.trim()}`,
          );
        }
        return { entries: upload.entries, bytes: upload.bytes };
      }),
    );
  }

  /** Streams the checked upload into /workspace/<stage>; on any failure, removes what got there and rethrows. */
  private async stageUpload(ws: Workspace, body: Readable, stage: string): Promise<CheckedUpload> {
    const cap = this.store.sizeCap(ws.tenant);
    const clean = cleanTar(body, {
      limits: this.uploadLimits,
      owner: parseOwner(ws.profile.user),
      under: stage,
      // The archive replaces everything: its own bytes are what the workspace will hold.
      checkHeld: (held) => assertWithinCap(`workspace ${ws.id}`, cap, 0, held),
    });
    try {
      return await this.store.withFileContainer(ws, async (cid) => {
        // Whichever side failed first is the answer: a refused upload fails the
        // put (its tar ends in an error), and an engine that stops reading stops the check.
        let first: "upload" | "engine" | undefined;
        const checked = clean.checked.catch((err: unknown) => {
          first ??= "upload";
          throw err;
        });
        const put = this.client.putArchive(cid, WORKSPACE_DIR, clean.tar).catch((err: unknown) => {
          first ??= "engine";
          clean.abort(err instanceof Error ? err : new Error(String(err)));
          throw err;
        });
        const [upload, sent] = await Promise.allSettled([checked, put]);
        if (upload.status === "fulfilled" && sent.status === "fulfilled") return upload.value;
        throw first === "engine" || upload.status === "fulfilled"
          ? (sent as PromiseRejectedResult).reason
          : upload.reason;
      });
    } catch (err) {
      if (clean.started()) await this.dropStage(ws, stage);
      throw err;
    }
  }

  private async dropStage(ws: Workspace, stage: string): Promise<void> {
    const result = await this.store
      .runSystem(ws, ["rm", "-rf", "--", `${WORKSPACE_DIR}/${stage}`])
      .catch((err: unknown) => err);
    if ((result as { status?: unknown }).status !== "ok") {
      this.store.warn(`removing the staging directory ${stage} of ${ws.id}`, result);
    }
  }
}

/** Reads what is left of a body and drops it; settles when it has ended, failed or closed. */
async function discardRest(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return;
  body.on("error", () => undefined);
  body.resume();
  await finished(body).catch(() => undefined);
}

/**
 * Moves the staged entries ($1, a directory in /workspace) in place of the old
 * contents. Not one atomic swap: a container killed in its middle can leave
 * part of each (SECURITY.md says so); other operations wait for it (the lock).
 * A staging directory an earlier failure left behind goes with the old contents.
 */
const SWAP_SCRIPT = [
  "set -eu",
  "cd /workspace",
  'find . -mindepth 1 -maxdepth 1 ! -name "$1" -exec rm -rf -- {} +',
  'find "$1" -mindepth 1 -maxdepth 1 -exec mv -- {} . \\;',
  'rmdir "$1"',
].join("\n");

/** The bytes of the one file in an engine archive, streamed with backpressure. */
function fileStream(archive: Readable): Readable {
  const out = new PassThrough();
  const ex = extract();
  let sent = false;
  ex.on("entry", (header, entry, next) => {
    if (header.type !== "file" || sent) {
      entry.on("end", next);
      entry.resume();
      return;
    }
    sent = true;
    // By hand rather than pipe(): the output must stay open for the archive's end.
    entry.on("data", (chunk: unknown) => {
      if (!out.write(chunk as Buffer)) {
        entry.pause();
        out.once("drain", () => entry.resume());
      }
    });
    entry.on("end", next);
  });
  ex.on("finish", () => out.end());
  ex.on("error", (err) => out.destroy(err));
  out.on("close", () => {
    archive.destroy();
    ex.destroy();
  });
  archive.pipe(ex);
  return out;
}

async function listArchive(archive: Readable, dir: string): Promise<FileEntry[]> {
  const ex = extract();
  archive.pipe(ex);
  const entries: FileEntry[] = [];
  try {
    for await (const entry of ex) {
      const h = entry.header;
      entry.resume();
      // Docker names entries after the last component of the requested path.
      const name = h.name.replace(/\/+$/, "");
      const slash = name.indexOf("/");
      if (slash < 0) continue; // the directory itself
      const rel = name.slice(slash + 1);
      const path = dir === "" ? rel : `${dir}/${rel}`;
      const type =
        h.type === "file"
          ? "file"
          : h.type === "directory"
            ? "directory"
            : h.type === "symlink"
              ? "symlink"
              : "other";
      const out: FileEntry = {
        path,
        type,
        size: type === "file" ? (h.size ?? 0) : 0,
        mode: ((h.mode ?? 0) & 0o7777).toString(8).padStart(4, "0"),
        mtime: (h.mtime ?? new Date(0)).toISOString(),
      };
      if (type === "symlink") out.target = h.linkname ?? "";
      entries.push(out);
      if (entries.length > MAX_LISTING) {
        throw new AirlockError(
          "invalid_request",
          `more than ${MAX_LISTING} entries under ${dir || "/workspace"}; list a subdirectory`,
        );
      }
    }
  } finally {
    archive.destroy();
    ex.destroy();
  }
  return entries;
}

/** Re-packs an engine archive without its leading directory name, entry by entry. */
function stripPrefix(archive: Readable, prefix: string): Readable {
  const ex = extract();
  const out = pack();
  ex.on("entry", (header, entry, next) => {
    if (!header.name.startsWith(prefix)) {
      entry.on("end", next);
      entry.resume();
      return;
    }
    const copy = out.entry({ ...header, name: header.name.slice(prefix.length) }, (err) =>
      next(err ?? undefined),
    );
    entry.pipe(copy);
  });
  ex.on("finish", () => out.finalize());
  ex.on("error", (err) => out.destroy(err));
  archive.pipe(ex);
  const stream = Readable.from(out);
  stream.on("close", () => {
    archive.destroy();
    ex.destroy();
  });
  return stream;
}
