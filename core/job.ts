// A Job is one validated, fully resolved operation: the profile it runs under,
// the argv, the files, the limits it gets. Built by policies/resolve.ts; the
// executor trusts it and never looks at the raw request.
import { randomUUID } from "node:crypto";
import type { EgressRules } from "./egress.ts";
import type { CompileLimits, Limits, LoadedProfile } from "./profile.ts";

export interface JobFile {
  /** Normalised, workspace-relative. */
  path: string;
  content: Buffer;
  mode: number;
}

/** The persistent volume a workspace job runs against (issue: workspaces). */
export interface WorkspaceRef {
  id: string;
  volume: string;
  /**
   * Past this many bytes in /workspace, the run is stopped (or, after it, its
   * result is) workspace_full. None for the gateway's own operations on a
   * workspace (deleting a file, swapping an import in): they are checked before
   * they run, and must work on a full workspace.
   */
  sizeCapBytes?: number | undefined;
}

/**
 * A volume mounted beside /workspace, for jobs airlock runs for itself between
 * volumes (a checkpoint's copy, restore, fork and diff: executor/checkpoints.ts).
 */
export interface JobMount {
  volume: string;
  /** An absolute path under /airlock/. */
  target: string;
  readOnly: boolean;
}

export interface Job {
  readonly id: string;
  readonly tenant: string;
  readonly profile: LoadedProfile;
  readonly argv: readonly string[];
  readonly stdin: Buffer;
  readonly env: Readonly<Record<string, string>>;
  readonly files: readonly JobFile[];
  /** Normalised, workspace-relative; "" is /workspace itself. */
  readonly workdir: string;
  readonly limits: Readonly<Limits>;
  /** A compiled language: this argv runs first, in the same container and directory, under its own limits. */
  readonly compile?:
    | { readonly argv: readonly string[]; readonly limits: Readonly<CompileLimits> }
    | undefined;
  readonly returnFiles: readonly string[];
  /** Set for workspace jobs: the volume outlives the container, and the diff is against its prior state. */
  readonly workspace?: WorkspaceRef | undefined;
  /** Set when the job asked for networks it was granted: what its proxy lets through. */
  readonly egress?: EgressRules | undefined;
  /** Volumes mounted beside /workspace (system jobs only; such a job never takes a parked container). */
  readonly mounts?: readonly JobMount[] | undefined;
}

/**
 * Called with each chunk of output as the process writes it (for streaming).
 * Returning false says the consumer is full: the sandbox stops reading the
 * container's output (so the job blocks on its writes) until `RunOptions.outputDrained` resolves.
 */
export type OutputListener = (stream: "stdout" | "stderr", chunk: Buffer) => boolean | undefined;

/**
 * A job airlock runs for itself under a profile (a hardening probe; deleting a
 * file or unpacking an archive in a workspace on a caller's behalf): the
 * profile's hardening, env and default limits, no files of the caller's.
 */
export function profileJob(
  profile: LoadedProfile,
  tenant: string,
  argv: string[],
  options: { stdin?: Buffer; workspace?: WorkspaceRef; limits?: Limits } = {},
): Job {
  return {
    id: randomUUID(),
    tenant,
    profile,
    argv,
    stdin: options.stdin ?? Buffer.alloc(0),
    env: { ...profile.env },
    files: [],
    workdir: "",
    limits: options.limits ?? { ...profile.limits.default },
    returnFiles: [],
    workspace: options.workspace,
  };
}

/**
 * A job run on a workspace on a caller's behalf: the profile's longest timeout,
 * since the caller chose no command.
 */
export function systemJob(
  profile: LoadedProfile,
  tenant: string,
  argv: string[],
  stdin: Buffer,
  workspace: WorkspaceRef,
): Job {
  const limits = { ...profile.limits.default, timeoutMs: profile.limits.max.timeoutMs };
  return profileJob(profile, tenant, argv, { stdin, workspace, limits });
}
