// What the route declarations of api/routes/*.ts share: error responses, the
// security schemes, the event-stream representation of an exec, and the OpenAPI 3.1
// document, built from the app's own registry so it lists exactly the routes
// that are registered. No table of routes lives here: each route declares itself.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import { ErrorBodySchema, PistonApprovalPending, PistonError } from "../core/schemas.ts";

// Named components (zod's own `id` metadata, which zod-to-openapi reads), so every
// error response is one $ref, and one type in the client.
export const ErrorBody = ErrorBodySchema.meta({ id: "ErrorBody" });
export const PistonErrorBody = PistonError.meta({ id: "PistonError" });
export const PistonHeldBody = PistonApprovalPending.meta({ id: "PistonApprovalPending" });

const ERROR_TEXT: Record<number, string> = {
  400: "invalid_request: the message names the field",
  401: "unauthorized: missing or wrong key",
  403: "forbidden: the key lacks the scope or profile",
  404: "not_found",
  409: "conflict: the resource's state forbids it",
  413: "payload_too_large",
  422: "idempotency_key_reused: the Idempotency-Key came with another request",
  423: "stopped: an operator's emergency stop is in force",
  429: "busy, rate_limited or quota_exceeded (Retry-After header)",
  500: "internal",
  503: "docker_unavailable, state_unavailable or shutting_down (Retry-After)",
};

/** The errors any authenticated /v1 route may answer with. */
export const V1_ERRORS = [400, 401, 403, 404, 413, 423, 429, 500, 503] as const;

/** Error responses: each status with the gateway's ErrorBody (or Piston's shape). */
export function errorResponses(
  statuses: readonly number[],
  schema: z.ZodType = ErrorBody,
): Record<number, { description: string; content: { "application/json": { schema: z.ZodType } } }> {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: ERROR_TEXT[status] ?? "error",
        content: { "application/json": { schema } },
      },
    ]),
  );
}

/** A JSON response. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/**
 * A body described in words, not by a zod schema (raw bytes, a tar, HTML, metrics
 * text; JSON whose shape is another spec's, such as this document or JSON-RPC).
 * No validator is attached to it.
 */
export const raw = (type: string, description: string) => ({
  [type]: {
    schema:
      type === "application/json" ? { description } : { type: "string" as const, description },
  },
});

/** The exec routes' second representation, chosen with Accept: text/event-stream. */
export const EXEC_EVENTS = {
  "text/event-stream": {
    schema: {
      type: "string" as const,
      description:
        "With Accept: text/event-stream: `stdout` and `stderr` events (data: a JSON string, one " +
        "chunk of output as written; id: its number in the execution, for Last-Event-ID on " +
        "GET /v1/executions/{id}/events), then one `result` event (data: the ExecResult JSON), " +
        "one `error` event (data: the error body) or one `end` event (data: {id, status}: " +
        "cancelled). A client that disconnects leaves the job running.",
    },
  },
};

export const BEARER = [{ bearer: [] }];
export const PISTON_AUTH = [{ bearer: [] }, { pistonBasic: [] }];
export const OPEN: { [name: string]: string[] }[] = [];

/** The document of every route registered on `app` (call it once they all are). */
export function openApiDocument(app: OpenAPIHono, version: string) {
  const registry = app.openAPIRegistry;
  registry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "Authorization: Bearer <key>",
  });
  registry.registerComponent("securitySchemes", "pistonBasic", {
    type: "http",
    scheme: "basic",
    description:
      "Piston routes only: the key as the password of HTTP Basic auth, so a Piston client " +
      "can carry it in its server URL (http://piston:<key>@host:port).",
  });
  const document = app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "airlock",
      version,
      description:
        "A self-hosted sandbox executor for AI agents: each operation runs in a throwaway, " +
        "locked-down Docker container and answers with its output and a diff of the files it changed.",
    },
  });
  // Stable names for generated clients and the docs page: `post /v1/exec` → postV1Exec.
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, op] of Object.entries(item as Record<string, Operation>)) {
      op.operationId ??= `${method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`;
      if (path.startsWith("/v1/") && (method === "post" || method === "put")) idempotent(op);
    }
  }
  return document;
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>;

interface Operation {
  operationId?: string;
  parameters?: unknown[];
  responses?: Record<string, unknown>;
}

/**
 * Every POST and PUT under /v1 takes Idempotency-Key (api/idempotency.ts, a
 * middleware, not a route's own parameter): said once here for all of them.
 */
function idempotent(op: Operation): void {
  op.parameters = [
    ...(op.parameters ?? []),
    {
      name: "Idempotency-Key",
      in: "header",
      required: false,
      description:
        "1-255 visible ASCII characters, chosen by the client for this request: a retry with the " +
        "same key and the same request (method, path, body) gets the first answer again (header " +
        "Idempotent-Replayed: true) and runs nothing twice; one while the first still runs waits " +
        "for it; the same key with another request is 422 idempotency_key_reused.",
      schema: { type: "string", minLength: 1, maxLength: 255 },
    },
  ];
  op.responses = {
    ...op.responses,
    422: {
      description: ERROR_TEXT[422],
      content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
    },
  };
}

/** `/v1/workspaces/:id` → `/v1/workspaces/{id}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}
