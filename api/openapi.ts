// The OpenAPI 3.1 document, generated from the zod schemas of core/schemas.ts and
// one table of routes. test/unit/openapi.test.ts proves the table and the routes
// the app registers are the same set, so the document cannot drift from the app.
import { z } from "zod";
import {
  ApprovalList,
  ApprovalPending,
  ApprovalView,
  ArchiveImport,
  AuditList,
  CreateWorkspaceRequest,
  ErrorBodySchema,
  ExecRequest,
  ExecResult,
  FileListing,
  Health,
  JobsView,
  PistonError,
  PistonExecuteRequest,
  PistonExecuteResult,
  PistonRuntimes,
  ProfileList,
  Readiness,
  ReloadOutcome,
  StopState,
  UsageList,
  WorkspaceExecRequest,
  WorkspaceInfo,
  WrittenFile,
} from "../core/schemas.ts";

type Method = "get" | "post" | "put" | "delete";

interface Content {
  /** zod schema of a JSON body, or a description of a non-JSON one. */
  json?: z.ZodType;
  raw?: { type: string; description: string };
  /** A second representation, e.g. the exec's event stream. */
  events?: string;
}

export interface RouteSpec {
  method: Method;
  /** Hono syntax (`:id`); turned into `{id}` for the document. */
  path: string;
  summary: string;
  tag: string;
  auth: "bearer" | "piston" | "none";
  query?: { name: string; required: boolean; description: string }[];
  body?: Content;
  responses: Record<number, Content & { description: string }>;
  /** The error statuses this route may answer with; ErrorBody (or Piston's) each. */
  errors?: number[];
}

/** What the MCP transport answers for a malformed or unacceptable request. */
const JsonRpcError = z.object({
  jsonrpc: z.literal("2.0"),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }),
  id: z.union([z.string(), z.number(), z.null()]),
});
const rpcError = (description: string) => ({ description, json: JsonRpcError });

const V1_ERRORS = [400, 401, 403, 404, 413, 423, 429, 500, 503];
const SSE_DESCRIPTION =
  "With Accept: text/event-stream: `stdout` and `stderr` events (data: a JSON string, one chunk " +
  "of output as written), then one `result` event (data: the ExecResult JSON) or one `error` " +
  "event (data: the error body).";
const ws = "/v1/workspaces/:id";
const PENDING_APPROVAL = {
  description:
    "the policy holds this job for a human: poll or wait on GET /v1/approvals/{approvalId}, " +
    "which carries the result once an admin approves and the job has run (exactly once)",
  json: ApprovalPending,
};
const TENANT_TARGET = z
  .object({ tenant: z.string().optional() })
  .describe("a tenant, or nothing (an empty body) for everything");
const ADMIN = "admin";
const pathQuery = (required: boolean, description: string) => [
  { name: "path", required, description },
];

export const ROUTES: RouteSpec[] = [
  {
    method: "get",
    path: "/healthz",
    summary: "The process answers",
    tag: "operations",
    auth: "none",
    responses: { 200: { description: "up", json: Health } },
  },
  {
    method: "get",
    path: "/readyz",
    summary: "Docker reachable, images present, hardening holds",
    tag: "operations",
    auth: "none",
    responses: {
      200: { description: "ready", json: Readiness },
      503: { description: "not ready: the failing checks say why", json: Readiness },
    },
  },
  {
    method: "get",
    path: "/openapi.json",
    summary: "This document",
    tag: "operations",
    auth: "none",
    responses: {
      200: {
        description: "OpenAPI 3.1",
        raw: { type: "application/json", description: "the document" },
      },
    },
  },
  {
    method: "get",
    path: "/docs",
    summary: "The API reference for people",
    tag: "operations",
    auth: "none",
    responses: {
      200: { description: "HTML", raw: { type: "text/html", description: "docs page" } },
    },
  },
  {
    method: "get",
    path: "/docs/scalar.js",
    summary: "The docs page's script (Scalar's browser bundle, from the installed package)",
    tag: "operations",
    auth: "none",
    responses: {
      200: {
        description: "JavaScript",
        raw: { type: "text/javascript", description: "the bundle" },
      },
    },
  },
  {
    method: "get",
    path: "/dashboard",
    summary:
      "The operators' dashboard: a page that logs in with an admin key and polls the admin routes",
    tag: "operations",
    auth: "none",
    responses: {
      200: {
        description: "HTML",
        raw: { type: "text/html", description: "dashboard page (holds no data itself)" },
      },
    },
  },
  {
    method: "get",
    path: "/v1/profiles",
    summary: "The profiles a caller may use, with default and maximum limits",
    tag: "exec",
    auth: "bearer",
    responses: { 200: { description: "profiles", json: ProfileList } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/exec",
    summary: "Run one operation in a throwaway container",
    tag: "exec",
    auth: "bearer",
    body: { json: ExecRequest },
    responses: {
      200: {
        description: "the result; a non-zero exit, timeout or OOM is a result, not an error",
        json: ExecResult,
        events: SSE_DESCRIPTION,
      },
      202: PENDING_APPROVAL,
    },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/workspaces",
    summary: "Create a workspace (a volume that outlives each container)",
    tag: "workspaces",
    auth: "bearer",
    body: { json: CreateWorkspaceRequest },
    responses: { 201: { description: "created", json: WorkspaceInfo } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: ws,
    summary: "A workspace's info",
    tag: "workspaces",
    auth: "bearer",
    responses: { 200: { description: "the workspace", json: WorkspaceInfo } },
    errors: V1_ERRORS,
  },
  {
    method: "delete",
    path: ws,
    summary: "Remove a workspace and its volume",
    tag: "workspaces",
    auth: "bearer",
    responses: { 204: { description: "removed" } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: `${ws}/exec`,
    summary: "Run one operation against the workspace; the diff is against it before the call",
    tag: "workspaces",
    auth: "bearer",
    body: { json: WorkspaceExecRequest },
    responses: {
      200: { description: "the result", json: ExecResult, events: SSE_DESCRIPTION },
      202: PENDING_APPROVAL,
    },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: `${ws}/files`,
    summary: "Everything under a directory (default: all)",
    tag: "files",
    auth: "bearer",
    query: pathQuery(false, "directory relative to /workspace"),
    responses: { 200: { description: "the listing", json: FileListing } },
    errors: V1_ERRORS,
  },
  {
    method: "delete",
    path: `${ws}/files`,
    summary: "Delete a file or directory",
    tag: "files",
    auth: "bearer",
    query: pathQuery(true, "path relative to /workspace"),
    responses: { 204: { description: "deleted" } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: `${ws}/files/content`,
    summary: "A file's bytes",
    tag: "files",
    auth: "bearer",
    query: pathQuery(true, "file relative to /workspace"),
    responses: {
      200: {
        description: "raw bytes",
        raw: { type: "application/octet-stream", description: "the file" },
      },
    },
    errors: V1_ERRORS,
  },
  {
    method: "put",
    path: `${ws}/files/content`,
    summary: "Write a file (raw body)",
    tag: "files",
    auth: "bearer",
    query: pathQuery(true, "file relative to /workspace"),
    body: { raw: { type: "application/octet-stream", description: "the file's bytes" } },
    responses: { 200: { description: "written", json: WrittenFile } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: `${ws}/archive`,
    summary: "The whole workspace as a tar",
    tag: "files",
    auth: "bearer",
    responses: {
      200: { description: "tar", raw: { type: "application/x-tar", description: "/workspace" } },
    },
    errors: V1_ERRORS,
  },
  {
    method: "put",
    path: `${ws}/archive`,
    summary: "Replace the workspace's contents from a tar (checked entry by entry)",
    tag: "files",
    auth: "bearer",
    body: { raw: { type: "application/x-tar", description: "a tar archive" } },
    responses: { 200: { description: "imported", json: ArchiveImport } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/mcp",
    summary: "Model Context Protocol, Streamable HTTP (stateless): JSON-RPC messages",
    tag: "agents",
    auth: "bearer",
    body: { raw: { type: "application/json", description: "a JSON-RPC request or batch" } },
    responses: {
      200: {
        description: "JSON-RPC response(s), as JSON or an event stream",
        raw: { type: "application/json", description: "JSON-RPC" },
        events: "JSON-RPC messages as `message` events",
      },
      202: { description: "a notification or response was accepted" },
      400: rpcError("not a valid JSON-RPC message"),
      406: rpcError("the Accept header allows neither JSON nor an event stream"),
      415: rpcError("the body is not application/json"),
    },
    errors: [401, 413, 500],
  },
  {
    method: "get",
    path: "/mcp",
    summary: "Not offered: the MCP endpoint is stateless, with no server-initiated stream",
    tag: "agents",
    auth: "bearer",
    responses: { 405: rpcError("POST JSON-RPC messages instead") },
    errors: [401],
  },
  {
    method: "delete",
    path: "/mcp",
    summary: "Not offered: there are no sessions to end",
    tag: "agents",
    auth: "bearer",
    responses: { 405: rpcError("there are no sessions") },
    errors: [401],
  },
  {
    method: "get",
    path: "/api/v2/runtimes",
    summary: "Piston-compatible: the languages and versions this gateway runs",
    tag: "piston",
    auth: "piston",
    responses: { 200: { description: "runtimes", json: PistonRuntimes } },
    errors: [401, 403, 429, 500, 503],
  },
  {
    method: "post",
    path: "/api/v2/execute",
    summary: "Piston-compatible execute",
    tag: "piston",
    auth: "piston",
    body: { json: PistonExecuteRequest },
    responses: { 200: { description: "Piston's result", json: PistonExecuteResult } },
    errors: [400, 401, 403, 413, 423, 429, 500, 503],
  },
  {
    method: "get",
    path: "/v1/admin/stop",
    summary: "The emergency stops in force",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "stops in force", json: StopState } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/admin/stop",
    summary:
      "Emergency stop of one tenant or of everything: running jobs killed, queued ones cancelled, new requests 423",
    tag: ADMIN,
    auth: "bearer",
    body: { json: TENANT_TARGET },
    responses: { 200: { description: "stops now in force", json: StopState } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/admin/resume",
    summary: "Lift an emergency stop",
    tag: ADMIN,
    auth: "bearer",
    body: { json: TENANT_TARGET },
    responses: { 200: { description: "stops still in force", json: StopState } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/admin/policy/reload",
    summary: "Re-read the policy file; a bad one keeps the old policy (400 with the reason)",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "the new policy is in force", json: ReloadOutcome } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: "/v1/admin/usage",
    summary: "Each tenant's usage over the last hour, next to its quotas",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "usage", json: UsageList } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: "/v1/admin/jobs",
    summary: "This gateway's running and queued jobs, with their age and limits, and the queue",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "jobs and queue", json: JobsView } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: "/v1/audit",
    summary: "The audit trail, newest first",
    tag: ADMIN,
    auth: "bearer",
    query: [
      { name: "tenant", required: false, description: "only this tenant" },
      { name: "scope", required: false, description: "only records that needed this scope" },
      { name: "status", required: false, description: "a result status or an error code" },
      { name: "op", required: false, description: "the operation, e.g. exec or files.read" },
      { name: "since", required: false, description: "ISO time or epoch ms" },
      { name: "limit", required: false, description: "at most this many (1-10000, default 100)" },
    ],
    responses: { 200: { description: "records", json: AuditList } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: "/v1/approvals",
    summary: "Pending approvals",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "pending approvals", json: ApprovalList } },
    errors: V1_ERRORS,
  },
  {
    method: "get",
    path: "/v1/approvals/:id",
    summary:
      "An approval (the requesting tenant's keys or an admin); with wait, held until it changes",
    tag: ADMIN,
    auth: "bearer",
    query: [
      {
        name: "wait",
        required: false,
        description: "seconds (at most 60) to wait while it is pending or running",
      },
    ],
    responses: {
      200: { description: "the approval, with the result once run", json: ApprovalView },
    },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/approvals/:id/approve",
    summary: "Approve: the job runs, exactly once",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "the approval", json: ApprovalView } },
    errors: V1_ERRORS,
  },
  {
    method: "post",
    path: "/v1/approvals/:id/deny",
    summary: "Deny: the job never runs",
    tag: ADMIN,
    auth: "bearer",
    responses: { 200: { description: "the approval", json: ApprovalView } },
    errors: V1_ERRORS,
  },
];

const ERROR_TEXT: Record<number, string> = {
  400: "invalid_request: the message names the field",
  401: "unauthorized: missing or wrong key",
  403: "forbidden: the key lacks the scope or profile",
  404: "not_found",
  405: "method not allowed",
  406: "not acceptable",
  413: "payload_too_large",
  415: "unsupported media type",
  423: "stopped: an operator's emergency stop is in force",
  429: "busy, rate_limited or quota_exceeded (Retry-After header)",
  500: "internal",
  503: "docker_unavailable",
};

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
  }) as Record<string, unknown>;
  return rest;
}

function content(c: Content, io: "input" | "output") {
  const out: Record<string, unknown> = {};
  if (c.json !== undefined) out["application/json"] = { schema: jsonSchema(c.json, io) };
  if (c.raw !== undefined) {
    // A JSON body described in words (the document itself, JSON-RPC) is any JSON value.
    const schema =
      c.raw.type === "application/json"
        ? { description: c.raw.description }
        : { type: "string", description: c.raw.description };
    out[c.raw.type] = { schema };
  }
  if (c.events !== undefined) {
    out["text/event-stream"] = { schema: { type: "string", description: c.events } };
  }
  return out;
}

/** `/v1/workspaces/:id` → `/v1/workspaces/{id}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function operation(route: RouteSpec) {
  const params: unknown[] = [];
  for (const [, name] of route.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    params.push({ name, in: "path", required: true, schema: { type: "string" } });
  }
  for (const q of route.query ?? []) {
    params.push({
      name: q.name,
      in: "query",
      required: q.required,
      description: q.description,
      schema: { type: "string" },
    });
  }
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    const body = content(r, "output");
    responses[status] = {
      description: r.description,
      ...(Object.keys(body).length > 0 ? { content: body } : {}),
    };
  }
  const errorRef =
    route.auth === "piston" ? "#/components/schemas/PistonError" : "#/components/schemas/ErrorBody";
  for (const status of route.errors ?? []) {
    responses[String(status)] = {
      description: ERROR_TEXT[status] ?? "error",
      content: { "application/json": { schema: { $ref: errorRef } } },
    };
  }
  return {
    summary: route.summary,
    tags: [route.tag],
    operationId: `${route.method}${openApiPath(route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
    security:
      route.auth === "none"
        ? []
        : route.auth === "piston"
          ? [{ bearer: [] }, { pistonBasic: [] }]
          : [{ bearer: [] }],
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(route.body === undefined
      ? {}
      : { requestBody: { required: true, content: content(route.body, "input") } }),
    responses,
  };
}

export function buildOpenApi(routes: readonly RouteSpec[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "airlock",
      version,
      description:
        "A self-hosted sandbox executor for AI agents: each operation runs in a throwaway, " +
        "locked-down Docker container and answers with its output and a diff of the files it changed.",
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer <key>" },
        pistonBasic: {
          type: "http",
          scheme: "basic",
          description:
            "Piston routes only: the key as the password of HTTP Basic auth, so a Piston client " +
            "can carry it in its server URL (http://piston:<key>@host:port).",
        },
      },
      schemas: {
        ErrorBody: jsonSchema(ErrorBodySchema, "output"),
        PistonError: jsonSchema(PistonError, "output"),
      },
    },
    paths,
  };
}

export type OpenApiDocument = ReturnType<typeof buildOpenApi>;
