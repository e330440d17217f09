import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ExecRequest } from "../../core/schemas.ts";
import { FAKE_KEY, FAKE_WORKSPACE, fakeApp, GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

async function connect(
  key = FAKE_KEY,
  made: Pick<ReturnType<typeof fakeApp>, "app" | "executor"> = fakeApp(),
) {
  const { app, executor } = made;
  const transport = new StreamableHTTPClientTransport(new URL("http://airlock.test/mcp"), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
    fetch: async (input, init) => app.fetch(new Request(input, init)),
  });
  const client = new Client({ name: "unit", version: "1" });
  await client.connect(transport);
  return { client, executor, app };
}

describe("MCP over Streamable HTTP", () => {
  it("lists the tools with input schemas derived from the HTTP API's", async () => {
    const { client } = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "checkpoint",
      "create_workspace",
      "delete_workspace",
      "diff_workspace",
      "exec",
      "fork_workspace",
      "get_execution",
      "list_files",
      "read_file",
      "restore",
      "wait_approval",
      "workspace_exec",
      "write_file",
    ]);
    const exec = tools.find((t) => t.name === "exec");
    const fromZod = z.toJSONSchema(ExecRequest, { io: "input" }) as {
      properties: Record<string, unknown>;
    };
    // The HTTP API's exec body, plus `async`.
    expect(Object.keys(exec?.inputSchema.properties ?? {}).sort()).toEqual(
      [...Object.keys(fromZod.properties), "async"].sort(),
    );
    expect(exec?.inputSchema.required).toEqual(["profile"]);
    const ws = tools.find((t) => t.name === "workspace_exec");
    expect(ws?.inputSchema.required).toEqual(["workspace"]);
    await client.close();
  });

  it("runs exec through the HTTP API and answers in text a model can read", async () => {
    const { client, executor } = await connect();
    executor.behaviour = async (job) => ({
      ...okResult(job.id, "42\n"),
      diff: {
        added: [{ path: "out.txt", type: "file", size: 3, sha256: "x", patch: "+hi\n" }],
        modified: [],
        deleted: [],
        truncated: false,
      },
    });
    const r = await client.callTool({
      name: "exec",
      arguments: { profile: "python", code: "print(6*7)" },
    });
    expect(r.isError).toBeFalsy();
    const text = (r.content as { type: string; text: string }[])[0]?.text ?? "";
    expect(text).toContain("status: ok, exit code 0");
    expect(text).toContain("42");
    expect(text).toContain("added out.txt (3 bytes)");
    expect(r.structuredContent).toMatchObject({ status: "ok", stdout: "42\n" });
    expect(executor.jobs[0]?.tenant).toBe("a");
    await client.close();
  });

  it("exec with async: true answers with the execution at once; get_execution waits for its result", async () => {
    const { client, executor } = await connect();
    let finish: (() => void) | undefined;
    executor.behaviour = (job, options) => {
      options.onStart?.(job);
      return new Promise((resolve) => {
        finish = () => resolve(okResult(job.id, "late\n"));
      });
    };
    const started = await client.callTool({
      name: "exec",
      arguments: { profile: "shell", command: "sleep 1", async: true },
    });
    const meta = started._meta?.["airlock/execution"] as { id: string; status: string };
    expect(meta.status).toBe("queued");
    const said = (started.content as { text: string }[])[0]?.text ?? "";
    expect(said).toContain(`call get_execution with id "${meta.id}"`);
    const running = await client.callTool({
      name: "get_execution",
      arguments: { id: meta.id, waitSeconds: 0 },
    });
    expect(running._meta?.["airlock/execution"]).toEqual({ id: meta.id, status: "running" });
    setTimeout(() => finish?.(), 50);
    const done = await client.callTool({
      name: "get_execution",
      arguments: { id: meta.id, waitSeconds: 10 },
    });
    expect(done.isError).toBeFalsy();
    expect(done.structuredContent).toMatchObject({ id: meta.id, status: "ok", stdout: "late\n" });
    expect(executor.jobs).toHaveLength(1);
    await client.close();
  });

  it("turns a gateway error into a tool error naming the field", async () => {
    const { client } = await connect();
    const r = await client.callTool({
      name: "exec",
      arguments: { profile: "python", code: "1", limits: { timeoutMs: 99_999_999 } },
    });
    expect(r.isError).toBe(true);
    expect((r.content as { text: string }[])[0]?.text).toMatch(
      /invalid_request \(HTTP 400\).*timeoutMs/,
    );
    await client.close();
  });

  it("refuses a caller without a valid key before any tool runs", async () => {
    await expect(connect("wrong-key-0123456789")).rejects.toThrow();
    const { app } = fakeApp();
    const res = await app.request("/mcp", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
  });
});

describe("MCP client disconnect", () => {
  it("cancels the tool's running job", async () => {
    const { app, executor } = fakeApp();
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    let cancelled = false;
    executor.behaviour = (job, options) =>
      new Promise((resolve) => {
        started();
        options.signal?.addEventListener("abort", () => {
          cancelled = true;
          resolve(okResult(job.id));
        });
      });
    const controller = new AbortController();
    const call = app.fetch(
      new Request("http://airlock.test/mcp", {
        method: "POST",
        signal: controller.signal,
        headers: {
          authorization: `Bearer ${FAKE_KEY}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: { name: "exec", arguments: { profile: "shell", command: "sleep 60" } },
        }),
      }),
    );
    await running;
    controller.abort();
    await Promise.resolve(call).catch(() => {});
    expect(cancelled).toBe(true);
  });
});

describe("MCP: jobs held for approval", () => {
  const textOf = (r: Awaited<ReturnType<Client["callTool"]>>) =>
    (r.content as { type: string; text: string }[]).map((c) => c.text).join("\n");
  const SLOW = { command: "x", limits: { timeoutMs: 9000 } };
  async function held(client: Client, name: string, args: Record<string, unknown>) {
    const r = await client.callTool({ name, arguments: args });
    const approval = r._meta?.["airlock/approval"] as { approvalId: string; status: string };
    expect(approval).toMatchObject({
      approvalId: expect.stringMatching(/^apr_/),
      status: "pending",
    });
    return { r, id: approval.approvalId };
  }
  const approve = (app: ReturnType<typeof gatedApp>["app"], id: string, action = "approve") =>
    app.request(`/v1/approvals/${id}/${action}`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATED_KEYS.admin}` },
    });

  it("exec and workspace_exec say the job awaits approval, with its id and what to do next", async () => {
    const made = gatedApp();
    const { client, executor } = await connect(GATED_KEYS.agent, made);
    const { r, id } = await held(client, "exec", { profile: "shell", ...SLOW });
    // A tool error, since there is no result yet; never a protocol fault.
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain(`awaiting approval`);
    expect(textOf(r)).toContain(`call wait_approval with approvalId "${id}"`);
    expect(textOf(r)).toContain("jobsOverSeconds");
    const ws = await held(client, "workspace_exec", { workspace: FAKE_WORKSPACE, ...SLOW });
    expect(ws.r.isError).toBe(true);
    expect(textOf(ws.r)).toContain(ws.id);
    expect(executor.jobs).toHaveLength(0);
    await client.close();
  });

  it("wait_approval answers the job's result once approved; still pending or denied, a tool error saying so", async () => {
    const made = gatedApp();
    const { client, executor } = await connect(GATED_KEYS.agent, made);
    const { id } = await held(client, "exec", { profile: "shell", ...SLOW });
    const pending = await client.callTool({
      name: "wait_approval",
      arguments: { approvalId: id, waitSeconds: 0 },
    });
    expect(pending.isError).toBe(true);
    expect(textOf(pending)).toContain(`Approval ${id} is pending`);
    const waiting = client.callTool({ name: "wait_approval", arguments: { approvalId: id } });
    await new Promise((r) => setTimeout(r, 50));
    expect((await approve(made.app, id)).status).toBe(200);
    const done = await waiting;
    expect(done.isError).toBeFalsy();
    expect(textOf(done)).toContain("status: ok, exit code 0");
    expect(done.structuredContent).toMatchObject({ status: "ok", stdout: "hi\n" });
    expect(executor.jobs).toHaveLength(1);

    const second = await held(client, "workspace_exec", { workspace: FAKE_WORKSPACE, ...SLOW });
    await approve(made.app, second.id, "deny");
    const denied = await client.callTool({
      name: "wait_approval",
      arguments: { approvalId: second.id },
    });
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toMatch(
      new RegExp(`^approval_denied \\(HTTP 403\\): approval ${second.id} was denied by root`),
    );
    expect(executor.jobs).toHaveLength(1);
    await client.close();
  });
});
