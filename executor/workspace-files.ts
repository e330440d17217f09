// File operations on a workspace, each through its own throwaway container and
// the engine's archive API (nothing is extracted on the host). Every path is
// checked before use, and every directory on the way to it is checked not to be
// a symlink, so no read or write follows a link out of /workspace. These run
// under the workspace's lock, so nothing changes the tree between check and use.
import { createHash } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { extract, pack } from "tar-stream";
import { AirlockError } from "../core/errors.ts";
import { parentDirs, safeRelativePath, WORKSPACE_DIR } from "../core/paths.ts";
import { packFiles, parseOwner } from "./archive.ts";
import { type ContainerClient, MODE_DIR, MODE_SYMLINK, type PathStat } from "./docker.ts";
import { checkUpload, repack, type UploadLimits } from "./upload.ts";
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

export class WorkspaceFiles {
  private readonly store: WorkspaceStore;
  private readonly client: ContainerClient;
  private readonly uploadLimits: UploadLimits;

  constructor(store: WorkspaceStore, client: ContainerClient, uploadLimits: UploadLimits) {
    this.store = store;
    this.client = client;
    this.uploadLimits = uploadLimits;
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

  async write(tenant: string, id: string, raw: string, content: Buffer) {
    const path = safeRelativePath(raw, "path");
    return this.store.operate(tenant, id, (ws) =>
      this.store.withFileContainer(ws, async (cid) => {
        const stat = await statInside(this.client, cid, path);
        if (stat !== undefined && kindOf(stat) !== "file") {
          throw new AirlockError(
            "invalid_request",
            `${path} is a ${kindOf(stat)}; only a file can be replaced`,
          );
        }
        await this.client.putArchive(
          cid,
          WORKSPACE_DIR,
          packFiles([{ path, content, mode: 0o644 }], parseOwner(ws.profile.user)),
        );
        return {
          path,
          size: content.length,
          sha256: createHash("sha256").update(content).digest("hex"),
        };
      }),
    );
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
   * Replaces the workspace's contents with a checked archive: unpacked into a
   * staging directory first, and swapped in only once the whole archive is
   * out, so a failure leaves the workspace as it was.
   */
  async importTar(
    tenant: string,
    id: string,
    tar: Buffer,
  ): Promise<{ entries: number; bytes: number }> {
    const upload = await checkUpload(tar, this.uploadLimits);
    return this.store.operate(tenant, id, async (ws: Workspace) => {
      const clean = await streamToBuffer(repack(upload, parseOwner(ws.profile.user)));
      const result = await this.store.runSystem(ws, ["/bin/sh", "-c", REPLACE_SCRIPT], clean);
      if (result.status !== "ok") {
        throw new AirlockError(
          "internal",
          `the archive could not be unpacked; the workspace is unchanged: ${result.stderr.trim()}`,
        );
      }
      return { entries: upload.entries.length, bytes: upload.bytes };
    });
  }
}

const REPLACE_SCRIPT = [
  "set -eu",
  "cd /workspace",
  "stage=$(mktemp -d /workspace/.airlock-staging.XXXXXX)",
  'if ! tar -x -p -f - -C "$stage"; then rm -rf "$stage"; exit 3; fi',
  'name=$(basename "$stage")',
  'find . -mindepth 1 -maxdepth 1 ! -name "$name" -exec rm -rf -- {} +',
  'find "$stage" -mindepth 1 -maxdepth 1 -exec mv -- {} . \\;',
  'rmdir "$stage"',
].join("\n");

async function streamToBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

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
