// The launcher's stat listing of /workspace (regular files and symlinks only),
// one NUL-ended record per entry, as GNU find prints it with
//   -printf '%y %i %s %T@ %C@ %m %P\0'
// (type, inode, size, mtime and ctime with nanoseconds, mode, path). Hand-written
// because it is find's own format. An entry whose record is the same in two
// listings has not been written in between: no unprivileged process can set a
// ctime, and any write, chmod, rename or link moves it; the inode number
// catches a file put in another's place, where the runtime's numbers are stable.

export interface ListedEntry {
  type: "file" | "symlink";
  size: number;
  /** Everything in the record but the path: equal in two listings means unchanged. */
  stat: string;
}

export type Listing = Map<string, ListedEntry>;

const STAT = /^[fl] \d+ \d+ -?\d+(?:\.\d+)? -?\d+(?:\.\d+)? [0-7]+$/;

/**
 * Parses a whole listing; undefined when any record is malformed, a path is not
 * a plain relative one, a path repeats, or there are more than `maxEntries`.
 * A listing that cannot be read whole is not used at all: the caller falls back.
 */
export function parseListing(
  data: Buffer,
  maxEntries: number,
  /** False where inode numbers mean nothing across sandboxes (gVisor numbers them itself, per sandbox). */
  inodes = true,
): Listing | undefined {
  const listing: Listing = new Map();
  if (data.length === 0) return listing;
  if (data[data.length - 1] !== 0) return undefined;
  // NUL is never part of a UTF-8 sequence, so the records split after decoding.
  const records = data.toString("utf8", 0, data.length - 1).split("\0");
  if (records.length > maxEntries) return undefined;
  for (const record of records) {
    // Six fields, then the path (which may hold spaces).
    let at = -1;
    for (let field = 0; field < 6; field++) {
      at = record.indexOf(" ", at + 1);
      if (at < 0) return undefined;
    }
    const stat = record.slice(0, at);
    const path = record.slice(at + 1);
    if (!STAT.test(stat) || !plainPath(path) || listing.has(path)) return undefined;
    const sizeStart = stat.indexOf(" ", 2) + 1;
    listing.set(path, {
      type: stat[0] === "l" ? "symlink" : "file",
      size: Number(stat.slice(sizeStart, stat.indexOf(" ", sizeStart))),
      stat: inodes ? stat : `${stat[0]} - ${stat.slice(sizeStart)}`,
    });
  }
  return listing;
}

/** An empty, "." or ".." segment, or a leading "/". */
const UNPLAIN = /(?:^|\/)\.{0,2}(?:\/|$)/;

function plainPath(path: string): boolean {
  return !UNPLAIN.test(path);
}

/** Bytes of a listing as they arrive, up to a cap (past it, the listing is not used). */
export class ListingBuffer {
  private readonly cap: number;
  private chunks: Buffer[] = [];
  private bytes = 0;
  overflowed = false;

  constructor(cap: number) {
    this.cap = cap;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.overflowed) return;
    this.bytes += chunk.length;
    if (this.bytes > this.cap) {
      this.overflowed = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(Buffer.from(chunk));
  }

  data(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Room for a listing of `maxEntries` entries with paths of a usual length. */
export function listingCap(maxEntries: number): number {
  return maxEntries * 512;
}
