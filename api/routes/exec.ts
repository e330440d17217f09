// POST /v1/exec: validate → resolve against the profile → run in a throwaway
// container → the result (JSON), or live output then the result (SSE).
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { LoadedProfile } from "../../core/profile.ts";
import { ApprovalPending, ExecRequest, ExecResult } from "../../core/schemas.ts";
import type { Executor } from "../../executor/executor.ts";
import { resolveJob } from "../../policies/resolve.ts";
import type { Admission } from "../admission/admit.ts";
import type { JobTicket } from "../admission/job-policy.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, EXEC_EVENTS, errorResponses, json, V1_ERRORS } from "../openapi.ts";
import { streamJob } from "../stream-job.ts";
import { jsonBody, routesApp } from "../validate.ts";

/** The answers of both exec routes (this one and a workspace's). */
export const EXEC_RESPONSES = {
  200: {
    description: "the result; a non-zero exit, timeout or OOM is a result, not an error",
    content: { "application/json": { schema: ExecResult }, ...EXEC_EVENTS },
  },
  202: json(
    ApprovalPending,
    "the policy holds this job for a human: poll or wait on GET /v1/approvals/{approvalId}, " +
      "which carries the result once an admin approves and the job has run (exactly once)",
  ),
  ...errorResponses(V1_ERRORS),
};

const exec = createRoute({
  method: "post",
  path: "/v1/exec",
  summary: "Run one operation in a throwaway container",
  tags: ["exec"],
  security: BEARER,
  middleware: jsonBody,
  request: { body: { required: true, content: { "application/json": { schema: ExecRequest } } } },
  responses: EXEC_RESPONSES,
});

export interface ExecRouteDeps {
  executor: Executor;
  profiles: ReadonlyMap<string, LoadedProfile>;
  admission: Admission;
}

export function execRoutes(deps: ExecRouteDeps) {
  const app = routesApp<AuthEnv>();
  app.openapi(exec, async (c) => {
    const body = c.req.valid("json");
    const profile = deps.admission.named(c, body.profile);
    // Resolved before the policy runs, so a bad request is a 400 whatever the policy says.
    resolveJob(deps.profiles, body, c.get("caller").tenant);
    const admitted = await deps.admission.admit(c, {
      op: "exec",
      scopes: ["exec"],
      profile,
      job: {
        request: body,
        run: (limits, options) => {
          const job = resolveJob(
            deps.profiles,
            { ...body, limits: { ...body.limits, ...limits } },
            c.get("caller").tenant,
          );
          return deps.executor.run(job, options);
        },
      },
    });
    return answerExec(c, admitted.job);
  });
  return app;
}

/**
 * Answers an admitted job: its 202 while it waits for approval, else runs it:
 * JSON result, or SSE when the client asks for an event stream.
 */
export async function answerExec(c: Context<AuthEnv>, job: JobTicket) {
  if (job.status === "pending_approval") return job.response;
  const { run } = job;
  const signal = c.req.raw.signal;
  if (wantsEventStream(c.req.header("accept"))) return streamJob(c, run, signal);
  return c.json(await run({ signal }));
}

function wantsEventStream(accept: string | undefined): boolean {
  return accept?.split(",").some((part) => part.trim().startsWith("text/event-stream")) ?? false;
}
