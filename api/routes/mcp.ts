// POST /mcp: the MCP server over Streamable HTTP, stateless (a fresh server and
// transport per request, as the SDK advises for servers without sessions). Its
// tools call this gateway's own HTTP API in-process with the caller's own
// Authorization header, so auth and every policy of /v1 apply unchanged.
import { createRoute } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { createClient, type FetchLike } from "../../client/index.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, errorResponses, json, raw } from "../openapi.ts";
import { routesApp } from "../validate.ts";

/** What the MCP transport answers for a malformed or unacceptable request. */
const JsonRpcError = z.object({
  jsonrpc: z.literal("2.0"),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }),
  id: z.union([z.string(), z.number(), z.null()]),
});

const post = createRoute({
  method: "post",
  path: "/mcp",
  summary: "Model Context Protocol, Streamable HTTP (stateless): JSON-RPC messages",
  tags: ["agents"],
  security: BEARER,
  // Described, not validated here: the MCP transport reads and answers JSON-RPC itself.
  request: {
    body: { required: true, content: raw("application/json", "a JSON-RPC request or batch") },
  },
  responses: {
    200: {
      description: "JSON-RPC response(s), as JSON or an event stream",
      content: {
        ...raw("application/json", "JSON-RPC"),
        ...raw("text/event-stream", "JSON-RPC messages as `message` events"),
      },
    },
    202: { description: "a notification or response was accepted" },
    400: json(JsonRpcError, "not a valid JSON-RPC message"),
    406: json(JsonRpcError, "the Accept header allows neither JSON nor an event stream"),
    415: json(JsonRpcError, "the body is not application/json"),
    ...errorResponses([401, 413, 500]),
  },
});

// Stateless: no server-initiated stream to GET, no session to DELETE.
const notOffered = (method: "get" | "delete", summary: string, why: string) =>
  createRoute({
    method,
    path: "/mcp",
    summary,
    tags: ["agents"],
    security: BEARER,
    responses: { 405: json(JsonRpcError, why), ...errorResponses([401]) },
  });
const get = notOffered(
  "get",
  "Not offered: the MCP endpoint is stateless, with no server-initiated stream",
  "POST JSON-RPC messages instead",
);
const del = notOffered(
  "delete",
  "Not offered: there are no sessions to end",
  "there are no sessions",
);

/** The base URL of in-process calls: never resolved, only parsed. */
export const IN_PROCESS_URL = "http://airlock.internal";

export function mcpRoutes(deps: { fetch: FetchLike; version: string }) {
  const app = routesApp<AuthEnv>();
  app.openapi(post, async (c) => {
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
      // Typed Response | undefined by the transport; the cast changes nothing at run time.
      return (await transport.handleRequest(c)) as Response;
    } catch (err) {
      // The transport's own refusals (bad Accept, not JSON-RPC) carry their JSON-RPC answer.
      if (err instanceof HTTPException) return err.getResponse();
      throw err;
    } finally {
      await server.close();
    }
  });
  const notAllowed = () =>
    Response.json(
      {
        jsonrpc: "2.0",
        error: { code: -32000, message: "Method not allowed: POST JSON-RPC messages to /mcp" },
        id: null,
      },
      { status: 405, headers: { allow: "POST" } },
    ) as never;
  app.openapi(get, notAllowed);
  app.openapi(del, notAllowed);
  return app;
}
