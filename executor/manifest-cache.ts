// What this gateway last saw of each workspace it ran: per path, the launcher's
// stat record, the sha256 of the content, and the content of small text files
// (to patch against next time). Only a cache: an entry is used only when its
// stat record equals the listing taken before the next run, and everything
// else is read again through the engine. State still lives in Docker; losing
// this (a restart, eviction) costs only speed. Bounded in bytes across all
// workspaces, least recently used out first.

export interface CachedEntry {
  /** The listing's record for the path (see executor/listing.ts). */
  stat: string;
  sha256: string;
  content?: Buffer;
}

export type Manifest = ReadonlyMap<string, CachedEntry>;

/** The default bound on the estimated memory of all workspaces' manifests. */
export const DEFAULT_MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;

/** Rough bytes a Map entry of strings costs on V8, beyond the characters themselves. */
const ENTRY_OVERHEAD = 160;

export function manifestBytes(manifest: Manifest): number {
  let bytes = 0;
  for (const [path, entry] of manifest) {
    bytes += ENTRY_OVERHEAD + path.length + entry.stat.length + entry.sha256.length;
    bytes += entry.content?.length ?? 0;
  }
  return bytes;
}

export class ManifestCache {
  readonly maxBytes: number;
  /** Insertion order is recency: the first key is the least recently used. */
  private readonly entries = new Map<string, { manifest: Manifest; bytes: number }>();
  private total = 0;

  constructor(maxBytes: number = DEFAULT_MANIFEST_CACHE_BYTES) {
    this.maxBytes = maxBytes;
  }

  get totalBytes(): number {
    return this.total;
  }

  get size(): number {
    return this.entries.size;
  }

  get(workspace: string): Manifest | undefined {
    const hit = this.entries.get(workspace);
    if (hit === undefined) return undefined;
    this.entries.delete(workspace);
    this.entries.set(workspace, hit);
    return hit.manifest;
  }

  /** Replaces the workspace's manifest; one that alone exceeds the bound is not kept. */
  set(workspace: string, manifest: Manifest): void {
    this.delete(workspace);
    const bytes = manifestBytes(manifest);
    if (bytes > this.maxBytes) return;
    this.entries.set(workspace, { manifest, bytes });
    this.total += bytes;
    for (const [id, old] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(id);
      this.total -= old.bytes;
    }
  }

  delete(workspace: string): void {
    const old = this.entries.get(workspace);
    if (old === undefined) return;
    this.entries.delete(workspace);
    this.total -= old.bytes;
  }
}
