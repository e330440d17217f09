// POST /mcp: the MCP server over Streamable HTTP, stateless (a fresh server and
// transport per request, as the SDK advises for servers without sessions). Its
// tools call this gateway's own HTTP API in-process with the caller's own
// Authorization header, so auth and every policy of /v1 apply unchanged.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createClient, type FetchLike } from "../../client/index.ts";
import type { AuthEnv } from "../auth.ts";

/** The base URL of in-process calls: never resolved, only parsed. */
export const IN_PROCESS_URL = "http://airlock.internal";

export function mcpRoutes(deps: { fetch: FetchLike; version: string }) {
  const app = new Hono<AuthEnv>();
  app.post("/mcp", async (c) => {
    // An MCP client that goes away takes its running jobs with it, as on /v1.
    const gone = c.req.raw.signal;
    const client = createClient({
      baseUrl: IN_PROCESS_URL,
      // The same request id: the inner /v1 calls' log and audit lines join this request's.
      headers: {
        authorization: c.req.header("authorization") ?? "",
        "x-request-id": c.get("requestId"),
      },
      fetch: (req) => deps.fetch(new Request(req, { signal: AbortSignal.any([req.signal, gone]) })),
    });
    // The MCP SDK and its transport (~5 MB resident) load on the first /mcp
    // request (import() caches them), so a gateway whose agents never speak
    // MCP does not carry them.
    const [{ StreamableHTTPTransport }, { createMcpServer }] = await Promise.all([
      import("@hono/mcp"),
      import("../mcp/server.ts"),
    ]);
    const server = createMcpServer(client, deps.version);
    // No sessionIdGenerator: stateless mode.
    const transport = new StreamableHTTPTransport({ enableJsonResponse: true });
    await server.connect(transport);
    try {
      return await transport.handleRequest(c);
    } catch (err) {
      // The transport's own refusals (bad Accept, not JSON-RPC) carry their JSON-RPC answer.
      if (err instanceof HTTPException) return err.getResponse();
      throw err;
    } finally {
      await server.close();
    }
  });
  // Stateless: no server-initiated stream to GET, no session to DELETE.
  const notAllowed = () =>
    Response.json(
      {
        jsonrpc: "2.0",
        error: { code: -32000, message: "Method not allowed: POST JSON-RPC messages to /mcp" },
        id: null,
      },
      { status: 405, headers: { allow: "POST" } },
    );
  app.get("/mcp", notAllowed);
  app.delete("/mcp", notAllowed);
  return app;
}
