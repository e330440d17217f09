// A job's /workspace before and after its run, for its diff, each read as
// cheaply as what vouches for it allows; the readings themselves are
// workspace-scan.ts's. One-shot: before, /workspace held only the uploaded
// files; after, the launcher's tar is all of it. A workspace job: before, the
// launcher's listing (made before the job's files go in and before its code
// runs) and this gateway's manifest cache; after, a second listing and a tar
// of what changed. Whatever nothing vouches for is read through the engine's
// archive API, and the cache learns the result or forgets the workspace.
import type { Job } from "../core/job.ts";
import { WORKSPACE_DIR } from "../core/paths.ts";
import { packFiles, parseOwner, type ScanResult, sha256 } from "./archive.ts";
import type { BeforeEntry } from "./diff.ts";
import type { ContainerClient } from "./docker.ts";
import type { RunOutcome } from "./job-run.ts";
import type { RawListing } from "./launcher-stream.ts";
import { type Listing, parseListing } from "./listing.ts";
import type { Manifest, ManifestCache } from "./manifest-cache.ts";
import {
  afterFromListings,
  beforeFromListing,
  manifestOf,
  scanBefore,
  scanWorkspace,
} from "./workspace-scan.ts";

export interface JobWorkspaceDeps {
  client: ContainerClient;
  warn: (message: string, err: unknown) => void;
  manifests?: ManifestCache | undefined;
}

export class JobWorkspace {
  /**
   * A workspace job's: runs with the launcher's first listing, before the rest
   * of the job is sent: reads the workspace as it is, then puts the files in.
   */
  readonly prepare: ((listing: RawListing) => Promise<void>) | undefined;
  private readonly deps: JobWorkspaceDeps;
  private readonly id: string;
  private readonly job: Job;
  private beforeEntries: Map<string, BeforeEntry> | undefined;
  private beforeListing: Listing | undefined;
  /** A workspace job's last known manifest, asked for as the job starts (the store's read overlaps the container's start). */
  private readonly cached: Promise<Manifest | undefined> | undefined;

  constructor(deps: JobWorkspaceDeps, containerId: string, job: Job) {
    this.deps = deps;
    this.id = containerId;
    this.job = job;
    this.prepare = job.workspace === undefined ? undefined : (raw) => this.readBefore(raw);
    this.cached = job.workspace === undefined ? undefined : deps.manifests?.load(job.workspace.id);
  }

  /** A one-shot job's files go in before its run (a workspace job's once its listing is in). */
  async uploadOneShot(): Promise<void> {
    if (this.job.workspace !== undefined) return;
    this.beforeEntries = uploadManifest(this.job);
    await this.upload();
  }

  /** What /workspace held before the run. */
  get before(): Map<string, BeforeEntry> {
    if (this.beforeEntries === undefined) {
      throw new Error("the workspace before the run was never read");
    }
    return this.beforeEntries;
  }

  /**
   * /workspace after the run. What the launcher sends after the run gets as
   * long as the job itself had; past that, or when its tar is unreadable (an
   * image without /bin/tar, say), the engine reads /workspace instead.
   * Releases the run's stream in the end.
   */
  async readAfter(run: RunOutcome): Promise<ScanResult> {
    const before = this.before;
    const stalled = setTimeout(
      () => run.workspaceTar?.destroy(new Error("the launcher's report did not end in time")),
      this.job.limits.timeoutMs,
    );
    try {
      return await this.scanAfter(before, run);
    } catch (err) {
      if (run.workspaceTar === undefined) throw err;
      this.deps.warn("the launcher's /workspace tar was unreadable; using the archive API", err);
      this.forget();
      return await scanWorkspace(this.deps.client, this.id, this.job, before);
    } finally {
      clearTimeout(stalled);
      run.release();
    }
  }

  private async readBefore(raw: RawListing): Promise<void> {
    const { client } = this.deps;
    this.beforeListing = usableListing(this.job, raw);
    this.beforeEntries =
      this.beforeListing === undefined
        ? await scanBefore(client, this.id, this.job)
        : await beforeFromListing(client, this.id, this.job, this.beforeListing, await this.cached);
    await this.upload();
  }

  private async upload(): Promise<void> {
    const { job } = this;
    const dirs = job.workdir === "" ? [] : [job.workdir];
    if (job.files.length === 0 && dirs.length === 0) return;
    const owner = parseOwner(job.profile.user);
    await this.deps.client.putArchive(this.id, WORKSPACE_DIR, packFiles(job.files, owner, dirs));
  }

  /**
   * A workspace job with both listings reads only what changed and leaves its
   * manifest in the cache; otherwise (a kill, a timeout, a listing it cannot
   * use) the whole workspace is read and the cache forgets it, since nothing
   * vouches for its stat records any more.
   */
  private async scanAfter(before: Map<string, BeforeEntry>, run: RunOutcome): Promise<ScanResult> {
    const { client, manifests } = this.deps;
    const { job, id } = this;
    const ws = job.workspace;
    if (ws === undefined) return scanWorkspace(client, id, job, before, run.workspaceTar);
    const raw = await run.afterListing;
    const afterListing = raw === undefined ? undefined : usableListing(job, raw);
    const { beforeListing } = this;
    if (
      beforeListing === undefined ||
      afterListing === undefined ||
      run.workspaceTar === undefined
    ) {
      this.forget();
      return scanWorkspace(client, id, job, before);
    }
    const { scan, listed } = await afterFromListings(client, id, job, before, {
      beforeListing,
      afterListing,
      tar: run.workspaceTar,
    });
    if (listed) manifests?.set(ws.id, manifestOf(job, afterListing, scan.entries, before));
    else this.forget();
    return scan;
  }

  private forget(): void {
    if (this.job.workspace !== undefined) this.deps.manifests?.delete(this.job.workspace.id);
  }
}

/** A listing find made without error, within the caps, and well-formed; otherwise undefined. */
function usableListing(job: Job, raw: RawListing): Listing | undefined {
  if (raw.status !== 0 || raw.overflowed) return undefined;
  return parseListing(raw.data, job.profile.diff.scanMaxEntries, job.profile.runtime !== "runsc");
}

/** A one-shot job's /workspace before its run: its uploaded files. */
function uploadManifest(job: Job): Map<string, BeforeEntry> {
  const max = job.profile.diff.patchMaxBytes;
  const map = new Map<string, BeforeEntry>();
  for (const file of job.files) {
    const entry: BeforeEntry = { sha256: sha256(file.content) };
    if (file.content.length <= max) entry.content = file.content;
    map.set(file.path, entry);
  }
  return map;
}
