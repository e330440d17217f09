// Reading /workspace for a diff. One-shot jobs hash the launcher's tar of
// their small /workspace. A workspace job compares two stat listings the
// launcher made (executor/listing.ts): entries whose record did not change
// keep the hash the gateway already knew (its manifest cache, executor/manifest-cache.ts),
// and only the rest is read: from the launcher's tar of changed entries, or
// through the engine's archive API for whatever that tar lacks. Without a
// usable listing or cache, the whole workspace goes through the archive API.
import type { Readable } from "node:stream";
import type { Job } from "../core/job.ts";
import { WORKSPACE_DIR } from "../core/paths.ts";
import { type ScannedEntry, type ScanOptions, type ScanResult, scanArchive } from "./archive.ts";
import { asText, type BeforeEntry, returnMatcher } from "./diff.ts";
import type { ContainerClient } from "./docker.ts";
import type { Listing } from "./listing.ts";
import type { CachedEntry, Manifest } from "./manifest-cache.ts";

/** Past this many entries to read one by one, one archive of the whole workspace is cheaper. */
export const PER_PATH_MAX = 4;

type Budgets = Pick<ScanOptions, "keep" | "retain">;

/** What to keep of a changed entry: returnFiles and patch material, each within the profile's budget. */
export function afterBudgets(job: Job, before: ReadonlyMap<string, BeforeEntry>): Budgets {
  const { diff } = job.profile;
  const wantReturn = returnMatcher(job.returnFiles);
  let patchBytes = 0;
  let returnBytes = 0;
  return {
    keep: (path, size) =>
      size <= diff.patchMaxBytes || (wantReturn(path) && size <= diff.returnMaxBytes),
    // Only changed files are worth their bytes, and only within the profile's budgets.
    retain: (entry: ScannedEntry, content: Buffer) => {
      if (before.get(entry.path)?.sha256 === entry.sha256) return false;
      if (wantReturn(entry.path) && returnBytes + content.length <= diff.returnMaxBytes) {
        returnBytes += content.length;
        return true;
      }
      if (
        content.length <= diff.patchMaxBytes &&
        patchBytes + content.length <= diff.patchTotalBytes
      ) {
        patchBytes += content.length;
        return true;
      }
      return false;
    },
  };
}

/** Small files (within the patch budget) to patch against, `used` bytes of it spent already. */
function beforeBudgets(job: Job, used = 0): Budgets {
  const { diff } = job.profile;
  let kept = used;
  return {
    keep: (_path, size) => size <= diff.patchMaxBytes,
    retain: (_entry, content) => {
      if (kept + content.length > diff.patchTotalBytes) return false;
      kept += content.length;
      return true;
    },
  };
}

function asBefore(entry: ScannedEntry): BeforeEntry {
  return entry.content === undefined
    ? { sha256: entry.sha256 }
    : { sha256: entry.sha256, content: entry.content };
}

/** The whole workspace through the archive API, keeping small files to patch against. */
export async function scanBefore(
  client: ContainerClient,
  id: string,
  job: Job,
): Promise<Map<string, BeforeEntry>> {
  const { diff } = job.profile;
  const scan = await scanArchive(await client.getArchive(id, WORKSPACE_DIR), {
    prefix: "workspace/",
    maxBytes: diff.scanMaxBytes,
    maxEntries: diff.scanMaxEntries,
    ...beforeBudgets(job),
  });
  const map = new Map<string, BeforeEntry>();
  for (const [path, entry] of scan.entries) map.set(path, asBefore(entry));
  return map;
}

/** The whole workspace after a run: the launcher's tar ("./…") or else the engine's archive ("workspace/…"). */
export async function scanWorkspace(
  client: ContainerClient,
  id: string,
  job: Job,
  before: ReadonlyMap<string, BeforeEntry>,
  sent?: Readable,
): Promise<ScanResult> {
  const { diff } = job.profile;
  const archive = sent ?? (await client.getArchive(id, WORKSPACE_DIR));
  return scanArchive(archive, {
    prefix: sent === undefined ? "workspace/" : "./",
    maxBytes: diff.scanMaxBytes,
    maxEntries: diff.scanMaxEntries,
    ...afterBudgets(job, before),
  });
}

/** Some entries, each through the archive API (which names an entry by its last component). */
async function scanPaths(
  client: ContainerClient,
  id: string,
  job: Job,
  paths: readonly string[],
  budgets: Budgets,
): Promise<Map<string, ScannedEntry>> {
  const { diff } = job.profile;
  const found = new Map<string, ScannedEntry>();
  for (const path of paths) {
    let archive: Readable;
    try {
      archive = await client.getArchive(id, `${WORKSPACE_DIR}/${path}`);
    } catch (err) {
      if ((err as { statusCode?: unknown } | null)?.statusCode === 404) continue;
      throw err;
    }
    const base = path.slice(path.lastIndexOf("/") + 1);
    const scan = await scanArchive(archive, {
      prefix: "",
      maxBytes: diff.scanMaxBytes,
      maxEntries: 1,
      keep: (_name, size) => budgets.keep(path, size),
      retain: (entry, content) => budgets.retain({ ...entry, path }, content),
    });
    const entry = scan.entries.get(base);
    if (entry !== undefined) found.set(path, { ...entry, path });
  }
  return found;
}

/**
 * The workspace before a run, from the listing the launcher made before any of
 * the job's code existed: each entry the cache vouches for (same stat record)
 * keeps its cached hash; the others are read through the archive API.
 */
export async function beforeFromListing(
  client: ContainerClient,
  id: string,
  job: Job,
  listing: Listing,
  cached: Manifest | undefined,
): Promise<Map<string, BeforeEntry>> {
  const before = new Map<string, BeforeEntry>();
  const missing: string[] = [];
  let contentBytes = 0;
  for (const [path, listed] of listing) {
    const hit = cached?.get(path);
    if (hit === undefined || hit.stat !== listed.stat) {
      missing.push(path);
      continue;
    }
    // A cached entry is a before entry already (its stat record rides along unused).
    before.set(path, hit);
    contentBytes += hit.content?.length ?? 0;
  }
  if (missing.length === 0) return before;
  if (missing.length > PER_PATH_MAX) return scanBefore(client, id, job);
  const scanned = await scanPaths(client, id, job, missing, beforeBudgets(job, contentBytes));
  for (const [path, entry] of scanned) before.set(path, asBefore(entry));
  return before;
}

export interface ListedAfter {
  beforeListing: Listing;
  afterListing: Listing;
  /** The launcher's tar of the entries it saw change ("./…"); a hint, checked here. */
  tar: Readable;
}

/**
 * The workspace after a run, from the two listings: an entry with the same
 * record in both keeps its hash from before; a changed or new one is read from
 * the launcher's tar, or through the archive API when the tar lacks it (the
 * job may have tampered with whatever the launcher keeps in the container).
 * `listed` is false when it fell back to reading the whole workspace.
 */
export async function afterFromListings(
  client: ContainerClient,
  id: string,
  job: Job,
  before: ReadonlyMap<string, BeforeEntry>,
  sent: ListedAfter,
): Promise<{ scan: ScanResult; listed: boolean }> {
  const { diff } = job.profile;
  const budgets = afterBudgets(job, before);
  const fromTar = await scanArchive(sent.tar, {
    prefix: "./",
    maxBytes: diff.scanMaxBytes,
    maxEntries: diff.scanMaxEntries,
    ...budgets,
  });
  const entries = new Map<string, ScannedEntry>();
  const need: string[] = [];
  let totalBytes = 0;
  for (const [path, listed] of sent.afterListing) {
    if (listed.type === "file") totalBytes += listed.size;
    const prior = before.get(path);
    if (prior !== undefined && sent.beforeListing.get(path)?.stat === listed.stat) {
      entries.set(path, { path, type: listed.type, size: listed.size, sha256: prior.sha256 });
      continue;
    }
    const read = fromTar.entries.get(path);
    if (read !== undefined && read.type === listed.type) entries.set(path, read);
    else need.push(path);
  }
  if (need.length > PER_PATH_MAX) {
    return { scan: await scanWorkspace(client, id, job, before), listed: false };
  }
  for (const [path, entry] of await scanPaths(client, id, job, need, budgets)) {
    entries.set(path, entry);
  }
  return { scan: { entries, totalBytes, truncated: false }, listed: true };
}

/**
 * What the cache keeps of the workspace after a run: each listed entry's record
 * and hash, and the content of small text files within the profile's patch budget.
 */
export function manifestOf(
  job: Job,
  afterListing: Listing,
  after: ReadonlyMap<string, ScannedEntry>,
  before: ReadonlyMap<string, BeforeEntry>,
): Map<string, CachedEntry> {
  const { diff } = job.profile;
  const manifest = new Map<string, CachedEntry>();
  let kept = 0;
  for (const [path, listed] of afterListing) {
    const entry = after.get(path);
    // A size that disagrees with the listing means the bytes were read at another moment: not vouched for.
    if (entry === undefined || entry.size !== listed.size) continue;
    const prior = before.get(path);
    const content = entry.content ?? (prior?.sha256 === entry.sha256 ? prior.content : undefined);
    // An unchanged entry from the cache is kept as it is (its content was judged when it was cached).
    if (
      prior !== undefined &&
      "stat" in prior &&
      prior.stat === listed.stat &&
      prior.sha256 === entry.sha256 &&
      kept + (prior.content?.length ?? 0) <= diff.patchTotalBytes
    ) {
      manifest.set(path, prior as CachedEntry);
      kept += prior.content?.length ?? 0;
      continue;
    }
    const cached: CachedEntry = { stat: listed.stat, sha256: entry.sha256 };
    if (
      content !== undefined &&
      listed.type === "file" &&
      content.length <= diff.patchMaxBytes &&
      kept + content.length <= diff.patchTotalBytes &&
      asText(content) !== undefined
    ) {
      cached.content = content;
      kept += content.length;
    }
    manifest.set(path, cached);
  }
  return manifest;
}
