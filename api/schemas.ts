// The request and response shapes of the HTTP API (DESIGN.md), as zod schemas:
// the single source for validation, types, and later OpenAPI and MCP.
import { z } from "zod";

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

const ExecFields = {
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
  code: z.string().optional(),
  language: z.string().optional(),
  stdin: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  files: z.array(FileInput).max(10_000).optional(),
  workdir: z.string().optional(),
  limits: LimitsInput.optional(),
  returnFiles: z.array(z.string().min(1).max(1024)).max(100).optional(),
};

function oneOfCommandOrCode(
  body: { command?: unknown; code?: unknown; language?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (body.command === undefined && body.code === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["command"],
      message: "either command or code is required",
    });
  }
  if (body.command !== undefined && body.code !== undefined) {
    ctx.addIssue({ code: "custom", path: ["code"], message: "give command or code, not both" });
  }
  if (body.language !== undefined && body.code === undefined) {
    ctx.addIssue({ code: "custom", path: ["language"], message: "language goes with code" });
  }
}

export const ExecRequest = z
  .strictObject({ profile: z.string().min(1), ...ExecFields })
  .superRefine(oneOfCommandOrCode);
export type ExecRequest = z.infer<typeof ExecRequest>;

/** POST /v1/workspaces/:id/exec: as /v1/exec, the profile being the workspace's. */
export const WorkspaceExecRequest = z.strictObject(ExecFields).superRefine(oneOfCommandOrCode);
export type WorkspaceExecRequest = z.infer<typeof WorkspaceExecRequest>;

export const CreateWorkspaceRequest = z.strictObject({
  profile: z.string().min(1).optional(),
  files: z.array(FileInput).max(10_000).optional(),
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

/** workspace_full: the run left /workspace above its size cap (workspace jobs only). */
export const ExecStatus = z.enum([
  "ok",
  "error",
  "timeout",
  "oom",
  "output_limit",
  "workspace_full",
]);
export type ExecStatus = z.infer<typeof ExecStatus>;

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
});
export type ExecResult = z.infer<typeof ExecResult>;

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
