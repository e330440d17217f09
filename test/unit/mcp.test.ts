import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ExecRequest } from "../../core/schemas.ts";
import { FAKE_KEY, fakeApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

async function connect(key = FAKE_KEY) {
  const { app, executor } = fakeApp();
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
      "create_workspace",
      "delete_workspace",
      "exec",
      "list_files",
      "read_file",
      "workspace_exec",
      "write_file",
    ]);
    const exec = tools.find((t) => t.name === "exec");
    const fromZod = z.toJSONSchema(ExecRequest, { io: "input" }) as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(exec?.inputSchema.properties ?? {}).sort()).toEqual(
      Object.keys(fromZod.properties).sort(),
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
