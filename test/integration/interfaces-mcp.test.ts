// POST /mcp driven by the MCP SDK's own Client over Streamable HTTP, against a
// real gateway and real containers.

import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatedGateway, HELD_TIMEOUT_MS, startGatedGateway } from "../support/gated-gateway.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
let client: Client;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2, keys: { other: "other-tenant-key-0123456789" } });
  client = await connect(gw.key);
});
afterAll(async () => {
  await client.close();
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function connect(key: string, url = gw.url): Promise<Client> {
  const c = new Client({ name: "airlock-integration", version: "1" });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  return c;
}

const textOf = (r: Awaited<ReturnType<Client["callTool"]>>) =>
  (r.content as { type: string; text: string }[]).map((c) => c.text).join("\n");

describe("MCP over Streamable HTTP", () => {
  it("lists the tools", async () => {
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
  });

  it("starts a long job with async: true and reads its result with get_execution", async () => {
    const started = await client.callTool({
      name: "exec",
      arguments: { profile: "shell", command: "sleep 1; echo slow", async: true },
    });
    const execution = started._meta?.["airlock/execution"] as { id: string } | undefined;
    const id = execution?.id ?? "";
    expect(textOf(started)).toContain(`call get_execution with id "${id}"`);
    const done = await client.callTool({
      name: "get_execution",
      arguments: { id, waitSeconds: 30 },
    });
    expect(done.isError).toBeFalsy();
    expect(done.structuredContent).toMatchObject({ id, status: "ok", stdout: "slow\n" });
  });

  it("runs code in a sandbox and reports output, status and changed files", async () => {
    const r = await client.callTool({
      name: "exec",
      arguments: {
        profile: "python",
        code: "import sys\nopen('out.txt','w').write('hi\\n')\nprint(6*7)\nsys.exit(3)",
      },
    });
    expect(r.isError).toBeFalsy();
    const text = textOf(r);
    expect(text).toContain("status: error, exit code 3");
    expect(text).toContain("42");
    expect(text).toContain("added out.txt (3 bytes)");
    expect(text).toContain("+hi");
    expect(r.structuredContent).toMatchObject({ status: "error", exitCode: 3, stdout: "42\n" });
  });

  it("writes, lists and reads a workspace file, runs in the workspace, then deletes it", async () => {
    const created = await client.callTool({
      name: "create_workspace",
      arguments: { profile: "shell" },
    });
    const id = (created.structuredContent as { id: string }).id;
    expect(id).toMatch(/^ws_/);

    const wrote = await client.callTool({
      name: "write_file",
      arguments: { workspace: id, path: "notes/todo.txt", content: "buy milk\n" },
    });
    expect(textOf(wrote)).toContain("wrote notes/todo.txt (9 bytes");

    const read = await client.callTool({
      name: "read_file",
      arguments: { workspace: id, path: "notes/todo.txt" },
    });
    expect(textOf(read)).toBe("buy milk\n");

    const ran = await client.callTool({
      name: "workspace_exec",
      arguments: {
        workspace: id,
        command: "tr a-z A-Z < notes/todo.txt > notes/TODO.txt; wc -c notes/TODO.txt",
      },
    });
    expect(textOf(ran)).toContain("status: ok, exit code 0");
    expect(textOf(ran)).toContain("added notes/TODO.txt (9 bytes)");

    const listed = await client.callTool({ name: "list_files", arguments: { workspace: id } });
    expect(textOf(listed)).toContain("notes/todo.txt (9 bytes)");
    expect(textOf(listed)).toContain("notes/TODO.txt (9 bytes)");

    // Binary files travel as base64 both ways; a long file is shown in part.
    await client.callTool({
      name: "write_file",
      arguments: { workspace: id, path: "b.bin", content: "AAEC/w==", encoding: "base64" },
    });
    const bin = await client.callTool({
      name: "read_file",
      arguments: { workspace: id, path: "b.bin" },
    });
    expect(textOf(bin)).toBe("(binary file, 4 bytes, base64)\nAAEC/w==");
    await client.callTool({
      name: "workspace_exec",
      arguments: { workspace: id, command: "head -c 150000 /dev/zero | tr '\\0' a > long.txt" },
    });
    const long = textOf(
      await client.callTool({ name: "read_file", arguments: { workspace: id, path: "long.txt" } }),
    );
    expect(long.startsWith("a".repeat(100_000))).toBe(true);
    expect(long).toContain("50000 more bytes not shown");

    // Another tenant's key sees no such workspace (the /v1 tenancy applies to MCP).
    const other = await connect("other-tenant-key-0123456789");
    const foreign = await other.callTool({
      name: "read_file",
      arguments: { workspace: id, path: "notes/todo.txt" },
    });
    expect(foreign.isError).toBe(true);
    expect(textOf(foreign)).toContain("not_found (HTTP 404)");
    await other.close();

    const deleted = await client.callTool({
      name: "delete_workspace",
      arguments: { workspace: id },
    });
    expect(textOf(deleted)).toContain(`workspace ${id} deleted`);
    const gone = await client.callTool({
      name: "read_file",
      arguments: { workspace: id, path: "notes/todo.txt" },
    });
    expect(gone.isError).toBe(true);
  });

  it("refuses a wrong key with 401 before any tool runs", async () => {
    await expect(connect("wrong-key-0123456789")).rejects.toThrow(/unauthorized/);
  });
});

describe("airlock mcp (stdio)", () => {
  it("serves the same tools over stdio, forwarding to the gateway with the user's key", async () => {
    const stdio = new Client({ name: "desktop-host", version: "1" });
    await stdio.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [join(import.meta.dirname, "../../bin/airlock.ts"), "mcp", "--url", gw.url],
        env: { PATH: process.env["PATH"] ?? "", AIRLOCK_KEY: gw.key },
        stderr: "pipe",
      }),
    );
    try {
      const { tools } = await stdio.listTools();
      expect(tools.map((t) => t.name)).toContain("workspace_exec");
      const r = await stdio.callTool({
        name: "exec",
        arguments: { profile: "node", code: "console.log(2 ** 10)" },
      });
      expect(textOf(r)).toContain("status: ok, exit code 0");
      expect(textOf(r)).toContain("1024");
    } finally {
      await stdio.close();
    }
  });
});

describe("MCP: a job held for an admin's approval", () => {
  let gated: GatedGateway;
  let agent: Client;
  beforeAll(async () => {
    gated = await startGatedGateway();
    agent = await connect(gated.agentKey, gated.gw.url);
  });
  afterAll(async () => {
    await agent.close();
    await gated.gw.close();
    expect(await gated.gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
  const approvalOf = (r: Awaited<ReturnType<Client["callTool"]>>) =>
    (r._meta?.["airlock/approval"] as { approvalId: string } | undefined)?.approvalId ?? "";

  it("exec says it awaits approval with the id; wait_approval gets the result once approved", async () => {
    const held = await agent.callTool({
      name: "exec",
      arguments: {
        profile: "python",
        code: "print(6*7)",
        limits: { timeoutMs: HELD_TIMEOUT_MS },
      },
    });
    expect(held.isError).toBe(true);
    const id = approvalOf(held);
    expect(id).toMatch(/^apr_/);
    expect(textOf(held)).toContain(`awaiting approval`);
    expect(textOf(held)).toContain(`call wait_approval with approvalId "${id}"`);
    const waiting = agent.callTool({ name: "wait_approval", arguments: { approvalId: id } });
    expect(await gated.decide(id, "approve")).not.toBe("pending");
    const done = await waiting;
    expect(done.isError).toBeFalsy();
    expect(textOf(done)).toContain("status: ok, exit code 0");
    expect(done.structuredContent).toMatchObject({ status: "ok", stdout: "42\n" });
  });

  it("workspace_exec held, then denied: wait_approval says the job never ran", async () => {
    const created = await agent.callTool({ name: "create_workspace", arguments: {} });
    const workspace = (created.structuredContent as { id: string }).id;
    try {
      const held = await agent.callTool({
        name: "workspace_exec",
        arguments: { workspace, command: "touch ran", limits: { timeoutMs: HELD_TIMEOUT_MS } },
      });
      const id = approvalOf(held);
      expect(textOf(held)).toContain(id);
      expect(await gated.decide(id, "deny")).toBe("denied");
      const denied = await agent.callTool({ name: "wait_approval", arguments: { approvalId: id } });
      expect(denied.isError).toBe(true);
      expect(textOf(denied)).toContain(`approval ${id} was denied by ops: the job did not run`);
      const listed = await agent.callTool({ name: "list_files", arguments: { workspace } });
      expect(textOf(listed)).toBe("(empty)");
    } finally {
      await agent.callTool({ name: "delete_workspace", arguments: { workspace } });
    }
  });
});
