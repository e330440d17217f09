// The MCP tools for workspace checkpoints: checkpoint, restore, fork_workspace,
// diff_workspace. As every tool, they reach the gateway only through the
// typed client (server.ts says why); the helpers that shape an answer are
// server.ts's, passed in so the two files do not import each other.
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { AirlockClient } from "../../client/index.ts";
import type { Diff } from "../../core/schemas.ts";
import { CreateCheckpointRequest, ForkRequest } from "../../core/schemas.ts";

export interface ToolHelpers {
  tool: (run: () => Promise<CallToolResult>) => Promise<CallToolResult>;
  text: (t: string) => CallToolResult;
}

const workspace = z.string().min(1).describe("the workspace id (ws_…)");
const checkpointId = z.string().min(1).describe("a checkpoint id (cp_…)");

export const CheckpointToolInput = z.strictObject({
  workspace,
  label: CreateCheckpointRequest.shape.label,
});
export const RestoreToolInput = z.strictObject({ workspace, checkpoint: checkpointId });
export const ForkToolInput = z.strictObject({
  workspace,
  checkpoint: ForkRequest.shape.checkpoint,
  count: ForkRequest.shape.count,
});
export const DiffToolInput = z.strictObject({
  workspace,
  from: checkpointId.describe("the checkpoint to compare from (cp_…)"),
  to: z.string().min(1).optional().describe("a checkpoint id, or current (the default)"),
});

/** A diff as lines a model reads: one per changed path, patches included. */
export function describeDiff(d: Diff): string {
  const lines = [
    ...d.added.map((e) => `added ${e.path} (${e.size} bytes)`),
    ...d.modified.map((e) => `modified ${e.path} (${e.size} bytes)`),
    ...d.deleted.map((e) => `deleted ${e.path}`),
  ];
  const patches = [...d.added, ...d.modified].flatMap((e) =>
    e.patch === undefined ? [] : [e.patch],
  );
  return [lines.length === 0 ? "no changes" : lines.join("\n"), ...patches].join("\n");
}

export function registerCheckpointTools(
  server: McpServer,
  client: AirlockClient,
  { tool, text }: ToolHelpers,
): void {
  const ws = client.workspaces;
  server.registerTool(
    "checkpoint",
    {
      title: "Checkpoint a workspace",
      description:
        "Saves the workspace's files as they are now and answers with the checkpoint's id: " +
        "restore goes back to it, fork_workspace copies it, diff_workspace compares with it. " +
        "(workspace_exec with checkpoint: true takes one before its run.)",
      inputSchema: CheckpointToolInput,
    },
    ({ workspace: id, label }, extra) =>
      tool(async () => {
        const cp = await ws.checkpoint(id, label === undefined ? {} : { label }, {
          signal: extra.signal,
        });
        return {
          ...text(`checkpoint ${cp.id} of ${id}: ${cp.entries} entries, ${cp.bytes} bytes`),
          structuredContent: cp,
        };
      }),
  );
  server.registerTool(
    "restore",
    {
      title: "Restore a workspace to a checkpoint",
      description:
        "Puts the workspace back exactly as the checkpoint has it (undoing every step since) " +
        "and lists what that changed.",
      inputSchema: RestoreToolInput,
      annotations: { destructiveHint: true },
    },
    ({ workspace: id, checkpoint }, extra) =>
      tool(async () => {
        const r = await ws.restore(id, checkpoint, { signal: extra.signal });
        return {
          ...text(`restored ${id} to ${r.checkpoint}\n${describeDiff(r.diff)}`),
          structuredContent: r,
        };
      }),
  );
  registerForkAndDiff(server, client, { tool, text });
}

function registerForkAndDiff(
  server: McpServer,
  client: AirlockClient,
  { tool, text }: ToolHelpers,
) {
  const ws = client.workspaces;
  server.registerTool(
    "fork_workspace",
    {
      title: "Fork a workspace",
      description:
        "Makes `count` new workspaces holding this workspace's files (or a checkpoint's), to " +
        "try several approaches side by side; each then changes independently.",
      inputSchema: ForkToolInput,
    },
    ({ workspace: id, checkpoint, count }, extra) =>
      tool(async () => {
        const r = await ws.fork(
          id,
          {
            ...(checkpoint === undefined ? {} : { checkpoint }),
            ...(count === undefined ? {} : { count }),
          },
          { signal: extra.signal },
        );
        return {
          ...text(`forked ${id}: ${r.workspaces.map((w) => w.id).join(", ")}`),
          structuredContent: r,
        };
      }),
  );
  server.registerTool(
    "diff_workspace",
    {
      title: "Diff a workspace's states",
      description:
        "What changed from a checkpoint to another checkpoint, or to the workspace now: " +
        "added, modified and deleted files, with patches for small text files.",
      inputSchema: DiffToolInput,
      annotations: { readOnlyHint: true },
    },
    ({ workspace: id, from, to }, extra) =>
      tool(async () => {
        const d = await ws.diff(id, from, to ?? "current", { signal: extra.signal });
        return { ...text(describeDiff(d)), structuredContent: d };
      }),
  );
}
