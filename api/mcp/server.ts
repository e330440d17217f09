// The MCP tools. They reach the sandbox only through the typed client, so the
// same code serves POST /mcp (client → the gateway's own app, in-process, with
// the caller's key) and `airlock mcp` over stdio (client → a gateway URL): every
// check of the HTTP layer applies to MCP with no second code path.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { AirlockApiError, type AirlockClient, ApprovalPendingError } from "../../client/index.ts";
import {
  CreateWorkspaceRequest,
  ExecFields,
  ExecRequest,
  ExecResult,
  FileInput,
  oneOfCommandOrCode,
} from "../../core/schemas.ts";
import { registerCheckpointTools } from "./checkpoint-tools.ts";

const workspaceId = z.string().min(1).describe("the workspace id from create_workspace (ws_…)");

/** `async` on exec and workspace_exec: start the job and answer with its execution at once. */
const asyncField = {
  async: z
    .boolean()
    .optional()
    .describe(
      "true: start the job and answer at once with its execution id, then wait for its result " +
        "with get_execution (for a job longer than this client's request timeout)",
    ),
};

/** exec's input: the exec body, and `async`. */
export const ExecToolInput = z
  .strictObject({ profile: ExecRequest.shape.profile, ...ExecFields, ...asyncField })
  .superRefine(oneOfCommandOrCode);

/** workspace_exec's input: the workspace exec body plus which workspace, and `async`. */
export const WorkspaceExecToolInput = z
  .strictObject({
    workspace: workspaceId,
    ...ExecFields,
    checkpoint: z
      .boolean()
      .optional()
      .describe(
        "take a checkpoint before the run; the result's checkpoint.id undoes the step (restore)",
      ),
    ...asyncField,
  })
  .superRefine(oneOfCommandOrCode);

export const GetExecutionInput = z.strictObject({
  id: z
    .string()
    .min(1)
    .describe("the execution id that exec (async) answered with, or a result's id"),
  waitSeconds: z
    .number()
    .min(0)
    .max(60)
    .default(50)
    .describe(
      "seconds to wait for it to end (at most 60; 0 looks once); keep it under the MCP client's request timeout",
    ),
});

export const ReadFileInput = z.strictObject({
  workspace: workspaceId,
  path: FileInput.shape.path.describe("file relative to /workspace"),
});
export const WriteFileInput = z.strictObject({
  workspace: workspaceId,
  path: FileInput.shape.path.describe("file relative to /workspace; parents are created"),
  content: FileInput.shape.content,
  encoding: FileInput.shape.encoding,
});
export const ListFilesInput = z.strictObject({
  workspace: workspaceId,
  path: z.string().optional().describe("directory relative to /workspace (default: all)"),
});
export const DeleteWorkspaceInput = z.strictObject({ workspace: workspaceId });
export const WaitApprovalInput = z.strictObject({
  approvalId: z
    .string()
    .min(1)
    .describe("the approvalId that exec or workspace_exec answered with (apr_…)"),
  waitSeconds: z
    .number()
    .min(0)
    .max(60)
    .default(50)
    .describe(
      "seconds to wait for the decision (at most 60; 0 looks once); keep it under the MCP client's request timeout",
    ),
});

/** Long output is cut for the model's sake; the full text stays in structuredContent. */
const TEXT_CAP = 20_000;
const PATCH_CAP = 4_000;
/** read_file answers at most this many bytes: a model's context is no place for a whole log. */
const READ_CAP = 100_000;

function cap(text: string, limit: number): string {
  return text.length <= limit
    ? text
    : `${text.slice(0, limit)}\n… (${text.length - limit} more characters not shown)`;
}

/** A result as a model reads it: status line, output, then what changed. */
export function describeResult(r: ExecResult): string {
  const lines = [
    `status: ${r.status}${r.exitCode === null ? "" : `, exit code ${r.exitCode}`}${
      r.signal === null ? "" : `, signal ${r.signal}`
    }, ${r.durationMs} ms`,
  ];
  if (r.compile !== undefined) {
    const c = r.compile;
    lines.push(
      `compile: ${c.status}${c.exitCode === null ? "" : `, exit code ${c.exitCode}`}, ${c.durationMs} ms`,
    );
    const said = `${c.stdout}${c.stderr}`;
    if (said !== "") lines.push("--- compiler output ---", cap(said, TEXT_CAP));
  }
  if (r.stdout !== "" || r.stdoutTruncated) {
    lines.push(`--- stdout${r.stdoutTruncated ? " (truncated)" : ""} ---`, cap(r.stdout, TEXT_CAP));
  }
  if (r.stderr !== "" || r.stderrTruncated) {
    lines.push(`--- stderr${r.stderrTruncated ? " (truncated)" : ""} ---`, cap(r.stderr, TEXT_CAP));
  }
  const { added, modified, deleted } = r.diff;
  if (added.length + modified.length + deleted.length === 0) {
    lines.push("files changed: none");
  } else {
    lines.push(
      `files changed${r.diff.truncated ? " (partial: workspace too large to scan)" : ""}:`,
    );
    for (const f of added) lines.push(`  added ${f.path} (${f.size} bytes)`);
    for (const f of modified) lines.push(`  modified ${f.path} (${f.size} bytes)`);
    for (const f of deleted) lines.push(`  deleted ${f.path}`);
    const patches = [...added, ...modified].flatMap((f) =>
      f.patch === undefined ? [] : [f.patch],
    );
    if (patches.length > 0) lines.push("--- patch ---", cap(patches.join(""), PATCH_CAP));
  }
  if (r.files.length > 0) lines.push(`returned files: ${r.files.map((f) => f.path).join(", ")}`);
  return lines.join("\n");
}

const text = (t: string): CallToolResult => ({ content: [{ type: "text", text: t }] });

/**
 * A job held for a human's approval, as a tool error (the tools' output is a
 * result, and there is none yet) that tells the model the one thing to do
 * next; `_meta` carries the approval for programs.
 */
function heldAnswer(held: ApprovalPendingError): CallToolResult {
  const id = held.approvalId;
  const next = `call wait_approval with approvalId "${id}"`;
  return {
    isError: true,
    content: [
      {
        type: "text",
        text:
          held.approvalStatus === "running"
            ? `approval ${id} was approved and its job is still running: ${next} again for its result.`
            : `awaiting approval: the policy holds this job for a human's approval ` +
              `(${held.reasons.join(", ")}); it has not run. Approval ${id} is pending until ` +
              `${held.expiresAt}. Do not send the job again: ${next} to wait for the decision ` +
              "and get the result.",
      },
    ],
    _meta: {
      "airlock/approval": {
        approvalId: id,
        status: held.approvalStatus,
        expiresAt: held.expiresAt,
        reasons: held.reasons,
      },
    },
  };
}

/** Gateway errors become tool errors the model can read and act on, not protocol faults. */
async function tool(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof ApprovalPendingError) return heldAnswer(err);
    if (!(err instanceof AirlockApiError)) throw err;
    return {
      isError: true,
      content: [{ type: "text", text: `${err.code} (HTTP ${err.status}): ${err.message}` }],
    };
  }
}

/** Returned files a model can look at: PNG and JPEG images (a chart saved by python-data, say). */
const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
};
/** Images past this many bytes (base64) stay in structuredContent only. */
const IMAGE_CAP = 4 * 1024 * 1024;

function imageContent(result: ExecResult): CallToolResult["content"] {
  return result.files.flatMap((f) => {
    const mimeType = IMAGE_TYPES[f.path.split(".").pop()?.toLowerCase() ?? ""];
    if (mimeType === undefined || f.content.length > IMAGE_CAP) return [];
    const data = f.encoding === "base64" ? f.content : Buffer.from(f.content).toString("base64");
    return [{ type: "image" as const, data, mimeType }];
  });
}

function execAnswer(result: ExecResult): CallToolResult {
  const answer = text(describeResult(result));
  return {
    content: [...answer.content, ...imageContent(result)],
    structuredContent: result,
  };
}

/**
 * An execution that has no result (yet): as a held job's answer, a tool error
 * (the tools' output is the result) that tells the model what to do next;
 * `_meta` carries the execution for programs.
 */
function noResultAnswer(e: {
  id: string;
  status: string;
  error?: { message: string } | undefined;
}) {
  const next = `call get_execution with id "${e.id}"`;
  const said =
    e.status === "queued" || e.status === "running"
      ? `execution ${e.id} is ${e.status} (not failed: it has no result yet). Do not send the job ` +
        `again: ${next} to wait for its result.`
      : `execution ${e.id} ended ${e.status} without a result${e.error === undefined ? "" : `: ${e.error.message}`}.`;
  return {
    isError: true,
    content: [{ type: "text" as const, text: said }],
    _meta: { "airlock/execution": { id: e.id, status: e.status } },
  };
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function createMcpServer(client: AirlockClient, version: string): McpServer {
  const server = new McpServer({ name: "airlock", version });

  server.registerTool(
    "exec",
    {
      title: "Run code or a command in a fresh sandbox",
      description:
        "Runs one operation in a throwaway, network-less container (profile: shell, python, node, " +
        "c, cpp, csharp, java, go, rust, ruby, php, lua, perl, or python-data for numpy, pandas, scipy and " +
        "matplotlib charts: save them as PNG files and list them in returnFiles to see them). " +
        "Give `code` (with optional `language`) or `command`. Answers with the output, the exit " +
        "status and the files that changed in /workspace. If the policy holds the job for a " +
        "human's approval, the answer says so with its approvalId: then use wait_approval. " +
        "With async: true it answers at once with the job's execution id: then use get_execution.",
      inputSchema: ExecToolInput,
      outputSchema: ExecResult,
    },
    ({ async, ...args }, extra) =>
      tool(async () =>
        async === true
          ? noResultAnswer(await client.execAsync(args, { signal: extra.signal }))
          : execAnswer(await client.exec(args, { signal: extra.signal })),
      ),
  );

  server.registerTool(
    "create_workspace",
    {
      title: "Create a workspace",
      description:
        "Creates a workspace: files that persist between operations (each operation still runs " +
        "in its own container). Answers with its id, for workspace_exec and the file tools.",
      inputSchema: CreateWorkspaceRequest,
    },
    (args, extra) =>
      tool(async () => {
        const info = await client.workspaces.create(args, { signal: extra.signal });
        return {
          ...text(
            `workspace ${info.id} (profile ${info.profile}) created; idle until ${info.expiresAt}`,
          ),
          structuredContent: info,
        };
      }),
  );

  server.registerTool(
    "workspace_exec",
    {
      title: "Run code or a command in a workspace",
      description:
        "As exec, inside a workspace (its profile): the files written by earlier operations are " +
        "there, and the changed files are listed against the workspace before this call. A job " +
        "held for approval answers with its approvalId, for wait_approval.",
      inputSchema: WorkspaceExecToolInput,
      outputSchema: ExecResult,
    },
    ({ workspace, async, ...body }, extra) =>
      tool(async () =>
        async === true
          ? noResultAnswer(
              await client.workspaceExecAsync(workspace, body, { signal: extra.signal }),
            )
          : execAnswer(await client.workspaces.exec(workspace, body, { signal: extra.signal })),
      ),
  );

  server.registerTool(
    "get_execution",
    {
      title: "Wait for a job's result",
      description:
        "For a job that exec or workspace_exec started with async: true (or any result's id): " +
        "waits up to waitSeconds for it to end and answers with its result as exec would. " +
        "Still running: call it again. Failed, cancelled or lost: says why there is no result.",
      inputSchema: GetExecutionInput,
      outputSchema: ExecResult,
    },
    ({ id, waitSeconds }, extra) =>
      tool(async () => {
        const e = await client.waitExecution(id, {
          timeoutSeconds: waitSeconds,
          signal: extra.signal,
        });
        return e.status === "done" && e.result !== undefined
          ? execAnswer(e.result)
          : noResultAnswer(e);
      }),
  );

  server.registerTool(
    "wait_approval",
    {
      title: "Wait for a job held for approval",
      description:
        "For a job that exec or workspace_exec reported as awaiting approval: waits up to " +
        "waitSeconds for a human's decision and answers, once it is approved and has run, with " +
        "the job's result as exec would. Still pending: call it again. Denied or expired: the " +
        "job never ran.",
      inputSchema: WaitApprovalInput,
      outputSchema: ExecResult,
    },
    ({ approvalId, waitSeconds }, extra) =>
      tool(async () =>
        execAnswer(
          await client.approvals.wait(approvalId, { timeoutS: waitSeconds, signal: extra.signal }),
        ),
      ),
  );

  server.registerTool(
    "read_file",
    {
      title: "Read a workspace file",
      description: "Answers with a file's text (or base64, for a binary file).",
      inputSchema: ReadFileInput,
    },
    ({ workspace, path }, extra) =>
      tool(async () => {
        const bytes = await client.workspaces.readFile(workspace, path, { signal: extra.signal });
        const shown = bytes.subarray(0, READ_CAP);
        const rest =
          bytes.length > READ_CAP
            ? `\n… (${bytes.length - READ_CAP} more bytes not shown: read parts with workspace_exec, e.g. sed -n or tail -c)`
            : "";
        if (isUtf8(bytes)) return text(`${new TextDecoder().decode(shown)}${rest}`);
        return text(
          `(binary file, ${bytes.length} bytes, base64)\n${Buffer.from(shown).toString("base64")}${rest}`,
        );
      }),
  );

  server.registerTool(
    "write_file",
    {
      title: "Write a workspace file",
      description: "Creates or replaces a file (utf8 text, or base64 for binary).",
      inputSchema: WriteFileInput,
    },
    ({ workspace, path, content, encoding }, extra) =>
      tool(async () => {
        const bytes = encoding === "base64" ? Buffer.from(content, "base64") : content;
        const w = await client.workspaces.writeFile(workspace, path, bytes, {
          signal: extra.signal,
        });
        return {
          ...text(`wrote ${w.path} (${w.size} bytes, sha256 ${w.sha256})`),
          structuredContent: w,
        };
      }),
  );

  server.registerTool(
    "list_files",
    {
      title: "List workspace files",
      description: "Lists everything under a directory of the workspace (default: all of it).",
      inputSchema: ListFilesInput,
    },
    ({ workspace, path }, extra) =>
      tool(async () => {
        const entries = await client.workspaces.listFiles(workspace, path ?? "", {
          signal: extra.signal,
        });
        const listing = entries
          .map((e) =>
            e.type === "symlink"
              ? `${e.path} -> ${e.target ?? "?"}`
              : `${e.path}${e.type === "directory" ? "/" : ` (${e.size} bytes)`}`,
          )
          .join("\n");
        return {
          ...text(entries.length === 0 ? "(empty)" : listing),
          structuredContent: { entries },
        };
      }),
  );

  server.registerTool(
    "delete_workspace",
    {
      title: "Delete a workspace",
      description: "Removes the workspace and all its files.",
      inputSchema: DeleteWorkspaceInput,
      annotations: { destructiveHint: true },
    },
    ({ workspace }, extra) =>
      tool(async () => {
        await client.workspaces.delete(workspace, { signal: extra.signal });
        return text(`workspace ${workspace} deleted`);
      }),
  );

  registerCheckpointTools(server, client, { tool, text });
  return server;
}
