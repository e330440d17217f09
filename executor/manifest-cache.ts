// What this gateway last saw of each workspace it ran: per path, the launcher's
// stat record, the sha256 of the content, and the content of small text files
// (to patch against next time). Only a cache: an entry is used only when its
// stat record equals the listing taken before the next run, and everything
// else is read again through the engine. State still lives in Docker; losing
// this (eviction) costs only speed. Bounded in bytes across all workspaces,
// least recently used out first. With a store (core/state.ts ManifestRecords)
// each manifest is also written there, after the job's answer, and read back
// when memory has none: after a restart, the first job on a workspace reads
// only what changed, under the same rule (an entry counts only while its stat
// record matches).
import type { ManifestRecords } from "../core/state.ts";
import { decodeManifest, encodeManifest } from "./manifest-codec.ts";

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

/** A manifest larger than this (encoded) is not written to the store. */
export const MAX_STORED_MANIFEST_BYTES = 16 * 1024 * 1024;

export interface ManifestStoreOptions {
  store: ManifestRecords;
  /** Logs a write or read of the store that failed (it costs only speed). */
  warn: (message: string, err: unknown) => void;
}

export class ManifestCache {
  readonly maxBytes: number;
  /** Insertion order is recency: the first key is the least recently used. */
  private readonly entries = new Map<string, { manifest: Manifest; bytes: number }>();
  private total = 0;
  private readonly backing: ManifestStoreOptions | undefined;
  /** Writes to the store not yet made, by workspace: the latest wins (undefined: a delete). */
  private readonly unwritten = new Map<string, Manifest | undefined>();
  private writing: Promise<void> = Promise.resolve();

  constructor(maxBytes: number = DEFAULT_MANIFEST_CACHE_BYTES, backing?: ManifestStoreOptions) {
    this.maxBytes = maxBytes;
    this.backing = backing;
  }

  /**
   * The workspace's manifest from memory, else from the store (then kept in
   * memory too); undefined when neither has one or the store fails.
   */
  async load(workspace: string): Promise<Manifest | undefined> {
    const hit = this.get(workspace);
    if (hit !== undefined || this.backing === undefined) return hit;
    // One not yet written is the newest there is; a pending delete means none.
    if (this.unwritten.has(workspace)) return this.unwritten.get(workspace);
    try {
      const bytes = await this.backing.store.get(workspace);
      const manifest = bytes === undefined ? undefined : decodeManifest(bytes);
      if (manifest !== undefined && !this.entries.has(workspace)) this.keep(workspace, manifest);
      return manifest;
    } catch (err) {
      this.backing.warn(`reading workspace ${workspace}'s manifest from the state store`, err);
      return undefined;
    }
  }

  /** Resolves once every write to the store asked for so far is made (shutdown). */
  async flush(): Promise<void> {
    while (this.unwritten.size > 0) await this.writeSoon();
    await this.writing;
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

  /** Replaces the workspace's manifest (in the store too, soon); one that alone exceeds the bound is not kept in memory. */
  set(workspace: string, manifest: Manifest): void {
    this.keep(workspace, manifest);
    this.persist(workspace, manifest);
  }

  delete(workspace: string): void {
    this.drop(workspace);
    this.persist(workspace, undefined);
  }

  private keep(workspace: string, manifest: Manifest): void {
    this.drop(workspace);
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

  private drop(workspace: string): void {
    const old = this.entries.get(workspace);
    if (old === undefined) return;
    this.entries.delete(workspace);
    this.total -= old.bytes;
  }

  private persist(workspace: string, manifest: Manifest | undefined): void {
    if (this.backing === undefined) return;
    const first = this.unwritten.size === 0;
    this.unwritten.set(workspace, manifest);
    if (first) void this.writeSoon();
  }

  /**
   * Writes what is pending, after the current job's answer (setImmediate),
   * one write at a time and in order, so a delete is never overtaken by an
   * older write of the same workspace.
   */
  private writeSoon(): Promise<void> {
    const backing = this.backing;
    if (backing === undefined) return Promise.resolve();
    this.writing = this.writing
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(async () => {
        const batch = [...this.unwritten];
        this.unwritten.clear();
        for (const [workspace, manifest] of batch) {
          try {
            if (manifest === undefined) await backing.store.delete(workspace);
            else await this.write(backing.store, workspace, manifest);
          } catch (err) {
            backing.warn(`writing workspace ${workspace}'s manifest to the state store`, err);
          }
        }
      });
    return this.writing;
  }

  private async write(store: ManifestRecords, workspace: string, manifest: Manifest) {
    const bytes = encodeManifest(manifest);
    // Too big to be worth the write: an older one left there would be stale, so none is kept.
    if (bytes.length > MAX_STORED_MANIFEST_BYTES) await store.delete(workspace);
    else await store.put(workspace, bytes);
  }
}
