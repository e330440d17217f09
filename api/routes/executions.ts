// The execution routes (DESIGN.md "Executions"): read one (and wait for its
// end), list a tenant's newest first, follow its output as events from the
// start or from an event id, and cancel it. An execution belongs to the tenant
// whose key started it: for any other key it does not exist (404). Reading or
// cancelling one needs the scopes of the job it ran: exec, plus workspaces
// for a workspace exec.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { ExecutionList, ExecutionStatus, ExecutionView } from "../../core/schemas.ts";
import type { Execution } from "../../core/state.ts";
import type { Scope } from "../../policies/access/schema.ts";
import type { Admission } from "../admission/admit.ts";
import type { AuthEnv } from "../auth.ts";
import { replay } from "../executions/events.ts";
import type { Executions } from "../executions/executions.ts";
import { BEARER, errorResponses, json, raw, V1_ERRORS } from "../openapi.ts";
import { EventStream } from "../stream-job.ts";
import { routesApp } from "../validate.ts";

/** The longest GET /v1/executions/:id?wait= holds a request. */
export const MAX_WAIT_SECONDS = 60;

const params = z.object({ id: z.string().describe("the execution id (an exec result's id)") });
const errors = errorResponses(V1_ERRORS);

const get = createRoute({
  method: "get",
  path: "/v1/executions/{id}",
  summary: "An execution: its status, and its result once done; with wait, held until it ends",
  tags: ["executions"],
  security: BEARER,
  request: {
    params,
    query: z.strictObject({
      wait: z.coerce
        .number()
        .min(0)
        .max(MAX_WAIT_SECONDS)
        .default(0)
        .describe(`seconds (at most ${MAX_WAIT_SECONDS}) to hold while it is queued or running`),
    }),
  },
  responses: { 200: json(ExecutionView, "the execution"), ...errors },
});

const list = createRoute({
  method: "get",
  path: "/v1/executions",
  summary: "The caller's tenant's executions, newest first (without results)",
  tags: ["executions"],
  security: BEARER,
  request: {
    query: z.strictObject({
      status: ExecutionStatus.optional().describe("only executions in this status"),
      workspace: z.string().optional().describe("only this workspace's executions"),
      limit: z.coerce
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(50)
        .describe("at most this many (1-1000, default 50)"),
    }),
  },
  responses: { 200: json(ExecutionList, "executions"), ...errors },
});

const events = createRoute({
  method: "get",
  path: "/v1/executions/{id}/events",
  summary:
    "Its output as Server-Sent Events: replayed from the start (or after Last-Event-ID), then live, then how it ended",
  tags: ["executions"],
  security: BEARER,
  request: {
    params,
    query: z.strictObject({
      follow: z
        .enum(["true", "false"])
        .default("true")
        .describe("false: send what is kept so far and end (with how it ended, if it has)"),
    }),
    headers: z.object({
      "last-event-id": z
        .string()
        .regex(/^\d{1,15}$/, "must be the id of an event of this execution (a number)")
        .optional()
        .describe("the id of the last event the client has: only later ones are sent"),
    }),
  },
  responses: {
    200: {
      description: "the event stream",
      content: raw(
        "text/event-stream",
        "`stdout` and `stderr` events (data: a JSON string; id: the event's number), a `dropped` " +
          "event ({storedBytes, droppedBytes, message}) when output past the replay bound was not " +
          "kept, then `result` (data: the ExecResult) when it is done, `error` (data: the error " +
          "body) when it failed, or `end` (data: {id, status, error?}) when it was cancelled or lost.",
      ),
    },
    ...errors,
  },
});

const cancel = createRoute({
  method: "delete",
  path: "/v1/executions/{id}",
  summary: "Cancel it: a queued job never starts, a running one is killed",
  tags: ["executions"],
  security: BEARER,
  request: { params },
  responses: {
    200: json(ExecutionView, "the execution, cancelled"),
    ...errors,
    ...errorResponses([409]),
  },
});

/** What the API shows of a record: not its tenant (the caller's own) nor the gateway that ran it. */
function view(e: Omit<Execution, "result"> & { result?: unknown }) {
  const { tenant: _tenant, instanceId: _instance, ...shown } = e;
  return shown;
}

/** The scopes of the job it ran. */
function scopesOf(e: Pick<Execution, "workspace">): Scope[] {
  return e.workspace === undefined ? ["exec"] : ["exec", "workspaces"];
}

export function executionRoutes(admission: Admission, executions: Executions) {
  const app = routesApp<AuthEnv>();
  const tenant = (c: Context<AuthEnv>) => c.get("caller").tenant;
  /** The caller's execution, admitted with the scopes of its job (404 first for another tenant's). */
  const admitOn = async (c: Context<AuthEnv>, op: string) => {
    const execution = await executions.find(tenant(c), c.req.param("id") ?? "");
    // Answered during an emergency stop too: it shows what the stop cancelled (and cancelling stops work).
    await admission.admit(c, { op, scopes: scopesOf(execution), duringStop: true });
    return execution;
  };

  app.openapi(get, async (c) => {
    const found = await admitOn(c, "executions.get");
    const { wait } = c.req.valid("query");
    const execution =
      wait === 0
        ? found
        : await executions.wait(tenant(c), found.id, wait * 1000, c.req.raw.signal);
    return c.json(view(execution) as z.infer<typeof ExecutionView>);
  });

  app.openapi(list, async (c) => {
    const query = c.req.valid("query");
    const scopes: Scope[] = query.workspace === undefined ? ["exec"] : ["exec", "workspaces"];
    const { caller } = await admission.admit(c, {
      op: "executions.list",
      scopes,
      duringStop: true,
    });
    const found = await executions.list(caller.tenant, query);
    // A key without the workspaces scope does not see workspace jobs (so a page may be shorter).
    const shown = caller.grant.scopes.has("workspaces")
      ? found
      : found.filter((e) => e.workspace === undefined);
    return c.json({ executions: shown.map(view) });
  });

  app.openapi(events, async (c) => {
    const execution = await admitOn(c, "executions.events");
    const after = Number(c.req.valid("header")["last-event-id"] ?? 0);
    const follow = c.req.valid("query").follow === "true";
    const stream = new EventStream(c);
    const signal = c.req.raw.signal;
    return stream.respond(
      replay(executions, tenant(c), execution.id, { after, follow }, stream.queue, signal),
    );
  });

  app.openapi(cancel, async (c) => {
    const execution = await admitOn(c, "executions.cancel");
    return c.json(
      view(await executions.cancel(tenant(c), execution.id)) as z.infer<typeof ExecutionView>,
    );
  });

  return app;
}
