// `airlock mcp`: the same MCP tools as POST /mcp, over stdio for desktop agent
// hosts, forwarding every call to a gateway URL with the user's key.

import { parseArgs } from "node:util";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { createMcpServer } from "../api/mcp/server.ts";
import { createClient } from "../client/index.ts";
import pkg from "../package.json" with { type: "json" };

export async function runMcp(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { url: { type: "string" }, key: { type: "string" } },
  });
  const key = values.key ?? env["AIRLOCK_KEY"];
  const client = createClient({
    baseUrl: values.url ?? env["AIRLOCK_URL"] ?? "http://127.0.0.1:8080",
    ...(key === undefined ? {} : { apiKey: key }),
  });
  const server = createMcpServer(client, pkg.version);
  await server.connect(new StdioServerTransport());
}
