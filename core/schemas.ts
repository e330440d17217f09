// The request and response shapes of the HTTP API (DESIGN.md), as zod schemas:
// the single source for validation, types, and later OpenAPI and MCP.
import { z } from "zod";
import { EgressEntry } from "./egress.ts";

export const FileInput = z.strictObject({
  path: z.string().min(1).max(4096),
  content: z.string(),
  encoding: z.enum(["utf8", "base64"]).default("utf8"),
  /** Octal string such as "755"; default 644. */
  mode: z
    .string()
    .regex(/^[0-7]{3,4}$/, "must be an octal mode such as 644 or 0755")
    .optional(),
});
export type FileInput = z.infer<typeof FileInput>;

export const LimitsInput = z.strictObject({
  timeoutMs: z.number().int().positive().optional(),
  memoryMb: z.number().int().positive().optional(),
  cpus: z.number().positive().optional(),
  pids: z.number().int().positive().optional(),
  outputBytes: z.number().int().positive().optional(),
});

export const CompileLimitsInput = z.strictObject({
  timeoutMs: z.number().int().positive().optional(),
  memoryMb: z.number().int().positive().optional(),
});

export const ExecFields = {
  command: z
    .union([z.string().min(1), z.array(z.string()).min(1)])
    .optional()
    .describe(
      "argv array (argv[0] is a program on PATH, never a shell builtin), or a string run with /bin/sh -c; or give code instead",
    ),
  code: z
    .string()
    .optional()
    .describe("source code, written to the profile's file for the language and run"),
  language: z
    .string()
    .optional()
    .describe(
      "one of the profile's languages: with code, or alone when files holds the language's file (GET /v1/profiles)",
    ),
  args: z
    .array(z.string())
    .max(1000)
    .optional()
    .describe("with code or language: appended to the language's run command"),
  compileLimits: CompileLimitsInput.optional().describe(
    "a compiled language's compile stage: up to the profile's compileLimits maximum",
  ),
  stdin: z.string().optional().describe("text on standard input"),
  env: z.record(z.string(), z.string()).optional().describe("extra environment variables"),
  files: z
    .array(FileInput)
    .max(10_000)
    .optional()
    .describe("files written to /workspace before the run"),
  workdir: z.string().optional().describe("directory under /workspace to run in"),
  limits: LimitsInput.optional().describe("up to the profile's maximum (GET /v1/profiles)"),
  returnFiles: z
    .array(z.string().min(1).max(1024))
    .max(100)
    .optional()
    .describe("globs: changed files that match come back in the result's files"),
  networks: z
    .array(z.string().min(1).max(63))
    .max(16)
    .optional()
    .describe("named egress networks of the policy file the key is granted; none: no network"),
};

export function oneOfCommandOrCode(
  body: { command?: unknown; code?: unknown; language?: unknown; args?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (body.command === undefined && body.code === undefined && body.language === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["command"],
      message: "either command or code is required",
    });
  }
  if (body.command !== undefined && body.code !== undefined) {
    ctx.addIssue({ code: "custom", path: ["code"], message: "give command or code, not both" });
  }
  if (body.command !== undefined && body.language !== undefined) {
    ctx.addIssue({ code: "custom", path: ["language"], message: "language goes with code" });
  }
  if (body.command !== undefined && body.args !== undefined) {
    ctx.addIssue({ code: "custom", path: ["args"], message: "args go with code or language" });
  }
}

export const ExecRequest = z
  .strictObject({
    profile: z.string().min(1).describe("shell, python, node, … (GET /v1/profiles)"),
    ...ExecFields,
  })
  .superRefine(oneOfCommandOrCode);
export type ExecRequest = z.infer<typeof ExecRequest>;

/** POST /v1/workspaces/:id/exec: as /v1/exec, the profile being the workspace's. */
export const WorkspaceExecRequest = z
  .strictObject({
    ...ExecFields,
    checkpoint: z
      .boolean()
      .optional()
      .describe("take a checkpoint before the run; the result's checkpoint.id undoes the step"),
  })
  .superRefine(oneOfCommandOrCode);
export type WorkspaceExecRequest = z.infer<typeof WorkspaceExecRequest>;

export const CreateWorkspaceRequest = z.strictObject({
  profile: z.string().min(1).optional(),
  files: z.array(FileInput).max(10_000).optional(),
  networks: z
    .array(z.string().min(1).max(63))
    .max(16)
    .optional()
    .describe("egress networks (granted to the key) its jobs get unless they ask for others"),
});
export type CreateWorkspaceRequest = z.infer<typeof CreateWorkspaceRequest>;

export const DiffEntry = z.object({
  path: z.string(),
  type: z.enum(["file", "symlink"]),
  size: z.number(),
  sha256: z.string(),
  patch: z.string().optional(),
});
export type DiffEntry = z.infer<typeof DiffEntry>;

export const Diff = z.object({
  added: z.array(DiffEntry),
  modified: z.array(DiffEntry),
  deleted: z.array(z.object({ path: z.string() })),
  /** True when /workspace was larger than the profile's scan cap: the lists are partial. */
  truncated: z.boolean(),
});
export type Diff = z.infer<typeof Diff>;

export const ReturnedFile = z.object({
  path: z.string(),
  encoding: z.enum(["utf8", "base64"]),
  content: z.string(),
});
export type ReturnedFile = z.infer<typeof ReturnedFile>;

/** compile_error: a compiled language's compile stage failed, and nothing ran. */
/** workspace_full: the run took /workspace past its size cap, and was stopped there or left it so (workspace jobs only). */
export const ExecStatus = z.enum([
  "ok",
  "error",
  "timeout",
  "oom",
  "output_limit",
  "workspace_full",
  "compile_error",
]);
export type ExecStatus = z.infer<typeof ExecStatus>;

/** A compiled language's compile stage, run before the program in the same container. */
export const CompileStage = z.object({
  status: z.enum(["ok", "error", "timeout", "oom"]),
  exitCode: z.number().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
});
export type CompileStage = z.infer<typeof CompileStage>;

export const ExecResult = z.object({
  id: z.string(),
  status: ExecStatus,
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number(),
  usage: z.object({ cpuMs: z.number().nullable(), memoryPeakBytes: z.number().nullable() }),
  diff: Diff,
  files: z.array(ReturnedFile),
  /** returnFiles matches left out because they would pass the profile's byte cap. */
  filesOmitted: z.array(z.string()),
  /** Workspace jobs: bytes of regular files in /workspace after the run. */
  workspaceBytes: z.number().optional(),
  /** Jobs granted networks: every connection they made or tried, through the egress proxy. */
  egress: z.array(EgressEntry).optional(),
  /** A compiled language: its compile stage; status compile_error when it failed (nothing ran). */
  compile: CompileStage.optional(),
  /** A workspace exec with `checkpoint: true`: the checkpoint taken before the run. */
  checkpoint: z.object({ id: z.string() }).optional(),
});
export type ExecResult = z.infer<typeof ExecResult>;

export const EgressCheckRequest = z.strictObject({
  network: z.string().min(1).describe("a network of the policy file"),
  host: z.string().min(1).max(253).describe("a name or an IP address"),
  port: z.number().int().min(1).max(65535),
  address: z
    .string()
    .optional()
    .describe(
      "the address the name would be dialled at (default: its pin, or the host itself when it is an address)",
    ),
});
export type EgressCheckRequest = z.infer<typeof EgressCheckRequest>;

export const EgressCheckResult = z.object({
  decision: z.enum(["allowed", "denied"]),
  reason: z.string(),
});

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

// Response shapes of the other routes. The handlers build these objects
// themselves; these schemas describe them for the OpenAPI document and the typed
// client, and the integration suite checks real responses against them.

export const WorkspaceInfo = z.object({
  id: z.string().describe("ws_ followed by 20 lower-case letters and digits"),
  profile: z.string(),
  createdAt: z.string().describe("ISO 8601"),
  lastUsedAt: z.string().describe("ISO 8601"),
  expiresAt: z.string().describe("ISO 8601: idle workspaces are removed after their TTL"),
  networks: z
    .array(z.string())
    .optional()
    .describe("egress networks its jobs get unless they ask for others"),
});
export type WorkspaceInfo = z.infer<typeof WorkspaceInfo>;

// Workspace checkpoints (DESIGN.md "Workspace checkpoints").

export const CreateCheckpointRequest = z.strictObject({
  label: z.string().max(256).optional().describe("a name for the checkpoint, for the caller"),
});
export type CreateCheckpointRequest = z.infer<typeof CreateCheckpointRequest>;

export const CheckpointInfo = z.object({
  id: z.string().describe("cp_ followed by 20 lower-case letters and digits"),
  label: z.string().nullable(),
  createdAt: z.string().describe("ISO 8601"),
  bytes: z
    .number()
    .describe("bytes of its regular files; counts against the tenant's checkpoint bytes"),
  entries: z.number().describe("files, directories and symlinks"),
});
export type CheckpointInfo = z.infer<typeof CheckpointInfo>;

export const CheckpointList = z.object({ checkpoints: z.array(CheckpointInfo) });

export const RestoreRequest = z.strictObject({
  checkpoint: z.string().min(1).describe("the checkpoint to put back (cp_…)"),
});
export type RestoreRequest = z.infer<typeof RestoreRequest>;

export const RestoreResult = z.object({
  checkpoint: z.string(),
  diff: Diff.describe("what the restore changed: from the workspace before it to the checkpoint"),
});

export const ForkRequest = z.strictObject({
  checkpoint: z
    .string()
    .min(1)
    .optional()
    .describe("fork the checkpoint's state (default: the workspace as it is now)"),
  count: z.number().int().min(1).optional().describe("how many workspaces (default 1)"),
});
export type ForkRequest = z.infer<typeof ForkRequest>;

export const ForkResult = z.object({ workspaces: z.array(WorkspaceInfo) });

export const FileEntry = z.object({
  path: z.string(),
  type: z.enum(["file", "directory", "symlink", "other"]),
  size: z.number(),
  mode: z.string().describe("octal permission bits"),
  mtime: z.string().describe("ISO 8601"),
  target: z.string().optional().describe("a symlink's target"),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const FileListing = z.array(FileEntry);

export const WrittenFile = z.object({ path: z.string(), size: z.number(), sha256: z.string() });
export type WrittenFile = z.infer<typeof WrittenFile>;

export const ArchiveImport = z.object({ entries: z.number(), bytes: z.number() });
export type ArchiveImport = z.infer<typeof ArchiveImport>;

const LimitValues = z.object({
  timeoutMs: z.number(),
  memoryMb: z.number(),
  cpus: z.number(),
  pids: z.number(),
  outputBytes: z.number(),
});

export const ProfileSummary = z.object({
  name: z.string(),
  description: z.string(),
  image: z.string(),
  runtime: z.string(),
  network: z.string(),
  languages: z.array(z.string()),
  defaultLanguage: z.string().nullable(),
  limits: z.object({ default: LimitValues, max: LimitValues }),
  /** Profiles with a compiled language: the compile stage's limits. */
  compileLimits: z
    .object({
      default: z.object({ timeoutMs: z.number(), memoryMb: z.number() }),
      max: z.object({ timeoutMs: z.number(), memoryMb: z.number() }),
    })
    .optional(),
  /** Each language's version, read from the image (a label the image builder wrote). */
  versions: z.record(z.string(), z.string()).optional(),
});
export type ProfileSummary = z.infer<typeof ProfileSummary>;

export const ProfileList = z.object({ profiles: z.array(ProfileSummary) });
export type ProfileList = z.infer<typeof ProfileList>;

export const Health = z.object({ status: z.literal("ok") });
export const Readiness = z.object({
  status: z.enum(["ready", "not_ready"]),
  checks: z.record(z.string(), z.string()),
});
export type Readiness = z.infer<typeof Readiness>;

/**
 * One event of a streamed exec, as the typed client yields it; `approval` (the
 * 202 answer, alone) when the policy holds the job for a human: nothing ran.
 */
export type ExecEvent =
  | { type: "stdout" | "stderr"; data: string }
  | { type: "result"; result: ExecResult }
  | { type: "approval"; approval: ApprovalPending };

// Piston's v2 API (engineer-man/piston api/src/api/v2.js), as airlock answers it.

export const PistonFile = z.object({
  name: z.string().optional(),
  content: z.string(),
  encoding: z.enum(["utf8", "base64", "hex"]).optional(),
});

export const PistonExecuteRequest = z.object({
  language: z.string().min(1),
  version: z.string().min(1).describe("a semver range: 3, 3.11, *, or an exact version"),
  files: z.array(PistonFile).min(1).describe("the first file is run; the others sit beside it"),
  stdin: z.string().optional(),
  args: z.array(z.string()).optional().describe("appended to the command"),
  run_timeout: z.number().optional().describe("ms, up to the profile's maximum timeoutMs"),
  compile_timeout: z
    .number()
    .optional()
    .describe("ms, up to the profile's compileLimits maximum timeoutMs"),
  run_memory_limit: z.number().optional().describe("bytes; -1 or absent: the profile default"),
  compile_memory_limit: z
    .number()
    .optional()
    .describe("bytes; -1 or absent: the profile's compile default"),
  run_cpu_time: z.number().optional().describe("ignored: the wall-clock run_timeout applies"),
  compile_cpu_time: z.number().optional().describe("ignored"),
});
export type PistonExecuteRequest = z.infer<typeof PistonExecuteRequest>;

export const PistonStage = z.object({
  stdout: z.string(),
  stderr: z.string(),
  output: z.string().describe("stdout and stderr interleaved as they were written"),
  code: z.number().nullable(),
  signal: z.string().nullable(),
  status: z
    .enum(["RE", "SG", "TO", "OL", "EL", "XX"])
    .nullable()
    .describe(
      "null: exited 0; RE: non-zero exit; SG: killed by a signal; TO: time limit; OL/EL: stdout/stderr too long",
    ),
  message: z.string().nullable(),
  memory: z.number().nullable().describe("peak bytes"),
  cpu_time: z.number().nullable().describe("ms"),
  wall_time: z.number().nullable().describe("ms"),
});
export type PistonStage = z.infer<typeof PistonStage>;

export const PistonExecuteResult = z.object({
  language: z.string(),
  version: z.string(),
  /** Compiled languages only, as Piston. */
  compile: PistonStage.optional(),
  /** Absent when the compile stage failed, as Piston. */
  run: PistonStage.optional(),
});
export type PistonExecuteResult = z.infer<typeof PistonExecuteResult>;

export const PistonRuntime = z.object({
  language: z.string(),
  version: z.string(),
  aliases: z.array(z.string()),
  runtime: z.string().optional(),
});
export const PistonRuntimes = z.array(PistonRuntime);
export type PistonRuntime = z.infer<typeof PistonRuntime>;

/** Piston's error shape: a message and nothing else. */
export const PistonError = z.object({ message: z.string() });

/** Piston's answer to a job the policy holds for a human: its error shape, plus the approval. */
export const PistonApprovalPending = PistonError.extend({
  approvalId: z
    .string()
    .describe("wait on it with GET /v1/approvals/{approvalId}?wait= (same key)"),
  status: z.literal("pending"),
  expiresAt: z.string(),
  reasons: z.array(z.string()),
});

// ---- policies: approvals, the emergency stop, the audit trail, usage ----------------------
// The shapes the admin and approval routes answer with (api/routes/admin.ts, api/admission/),
// for the OpenAPI document; policies/access keeps the same fields as TypeScript types.

export const ApprovalStatus = z.enum([
  "pending",
  "running",
  "done",
  "failed",
  "denied",
  "expired",
  "cancelled",
]);

/** 202 from an exec route whose job the policy holds for a human's approval. */
export const ApprovalPending = z.object({
  approvalId: z.string(),
  status: ApprovalStatus,
  expiresAt: z.string().describe("ISO time after which the approval lapses and the job never runs"),
  reasons: z.array(z.string()).describe('the policy rules that asked for a human ("network", …)'),
});
export type ApprovalPending = z.infer<typeof ApprovalPending>;

export const ApprovalView = z.object({
  id: z.string(),
  status: ApprovalStatus,
  tenant: z.string(),
  keyId: z.string(),
  profile: z.string(),
  reasons: z.array(z.string()),
  commandDigest: z.string().describe("sha256 of the command: never the command itself"),
  timeoutMs: z.number(),
  workspace: z.string().optional(),
  scopes: z
    .array(z.string())
    .describe("the scopes the held job needed: a key of its tenant reads the approval with them"),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().optional(),
  decidedBy: z.string().optional().describe("the key id of the admin who decided"),
  result: ExecResult.optional().describe("once approved and run: the job's result"),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const ApprovalList = z.object({ approvals: z.array(ApprovalView) });

export const StopState = z.object({
  all: z.object({ since: z.string() }).nullable().describe("set while everything is stopped"),
  tenants: z.array(z.object({ tenant: z.string(), since: z.string() })),
  cancelledApprovals: z
    .number()
    .optional()
    .describe("POST /v1/admin/stop: pending approvals the stop cancelled"),
});

export const ReloadOutcome = z.object({
  ok: z.literal(true),
  source: z.string(),
  keys: z.number(),
  tenants: z.number(),
});

export const AuditRecord = z.object({
  time: z.string(),
  requestId: z.string().nullable(),
  op: z.string(),
  method: z.string(),
  path: z.string(),
  tenant: z.string().nullable(),
  keyId: z.string().nullable(),
  scope: z.string().nullable(),
  profile: z.string().nullable(),
  workspace: z.string().nullable(),
  commandDigest: z.string().nullable(),
  status: z.string(),
  httpStatus: z.number(),
  exitCode: z.number().nullable(),
  durationMs: z.number(),
  bytesIn: z.number().nullable(),
  bytesOut: z.number().nullable(),
  approvalId: z.string().nullable(),
  /** A job granted networks: its connections through the egress proxy, counted. */
  egress: z
    .object({ allowed: z.number(), denied: z.number(), bytesOut: z.number(), bytesIn: z.number() })
    .optional(),
});

export const AuditList = z.object({ records: z.array(AuditRecord) });

export const UsageList = z.object({
  tenants: z.array(
    z.object({
      tenant: z.string(),
      cpuSeconds: z.number().describe("CPU-seconds used in the last hour"),
      containerSeconds: z.number().describe("container-seconds used in the last hour"),
      running: z.number().describe("jobs running now"),
      quotas: z
        .object({
          concurrentJobs: z.number().optional(),
          cpuSecondsPerHour: z.number().optional(),
          containerSecondsPerHour: z.number().optional(),
          maxJobSeconds: z.number().optional(),
          maxMemoryMb: z.number().optional(),
          maxCpus: z.number().optional(),
          maxWorkspaces: z.number().optional(),
          maxWorkspaceBytes: z.number().optional(),
        })
        .describe("the tenant's quotas from the policy; an absent one is unlimited"),
    }),
  ),
});

export const RunningJob = z.object({
  id: z.string().describe("this gateway's handle of the admitted job"),
  tenant: z.string(),
  keyId: z.string(),
  profile: z.string(),
  workspace: z.string().optional(),
  approvalId: z.string().optional().describe("set when an approved job runs"),
  state: z
    .enum(["queued", "running"])
    .describe("queued: admitted, waiting for an executor slot or its workspace's lock"),
  admittedAt: z.string(),
  startedAt: z.string().optional(),
  ageMs: z.number().describe("milliseconds since admission"),
  runningMs: z.number().optional().describe("milliseconds since its container started"),
  jobId: z.string().optional().describe("the container's airlock.job label, once running"),
  gateway: z
    .string()
    .optional()
    .describe(
      "the instance id of the gateway it runs on (with replicas: jobs of other gateways, read from the shared store, have an empty keyId and limits.timeoutMs 0, which only their own gateway knows)",
    ),
  limits: z
    .object({
      timeoutMs: z.number(),
      memoryMb: z.number().optional(),
      cpus: z.number().optional(),
      pids: z.number().optional(),
      outputBytes: z.number().optional(),
    })
    .describe("the container's limits once running; before that the timeout the policy allows"),
});

export const JobsView = z.object({
  jobs: z
    .array(RunningJob)
    .describe(
      "this gateway's admitted jobs, oldest first; with replicas, then every other gateway's",
    ),
  queue: z.object({
    running: z
      .number()
      .describe("sandboxes running now, internal workspace file operations included"),
    waiting: z.number().describe("jobs waiting for an executor slot"),
    queuedByTenant: z
      .record(z.string(), z.number())
      .describe("admitted jobs of each tenant not yet in a sandbox"),
  }),
});

// Executions (DESIGN.md "Executions"): every job is one, readable after its
// request has gone, with its output kept for replay.

export const ExecutionStatus = z
  .enum(["queued", "running", "done", "failed", "cancelled", "lost"])
  .describe(
    "queued → running → done (it ran: see result) | failed (a service fault: see error) | " +
      "cancelled (DELETE, its client left, or an emergency stop) | lost (the gateway running it died)",
  );
export type ExecutionStatus = z.infer<typeof ExecutionStatus>;

const ExecutionFields = {
  id: z.string().describe("the execution's id, also its result's id"),
  status: ExecutionStatus,
  profile: z.string(),
  workspace: z.string().optional().describe("set for a workspace exec"),
  createdAt: z.string().describe("ISO 8601"),
  startedAt: z.string().optional().describe("ISO 8601: when it left the queue for its sandbox"),
  endedAt: z.string().optional().describe("ISO 8601"),
  error: z
    .object({ code: z.string(), message: z.string(), details: z.unknown().optional() })
    .optional()
    .describe("what ended it, when it did not run to a result"),
  outputBytes: z.number().describe("output bytes kept for replay (GET …/events)"),
  outputDroppedBytes: z
    .number()
    .describe("output bytes past the replay bound: streamed live, not kept"),
};

export const ExecutionView = z.object({
  ...ExecutionFields,
  result: ExecResult.optional().describe("once done: the job's result, as its request answered"),
  resultDroppedBytes: z
    .number()
    .optional()
    .describe("set when the result was too large to keep (then result is absent)"),
});
export type ExecutionView = z.infer<typeof ExecutionView>;

export const ExecutionList = z.object({
  executions: z.array(z.object(ExecutionFields)).describe("newest first, without results"),
});

/** 202 from an exec route asked with `Prefer: respond-async`. */
export const ExecutionAccepted = z.object({
  id: z.string().describe("the execution: GET /v1/executions/{id} (also the Location header)"),
  status: ExecutionStatus,
});
