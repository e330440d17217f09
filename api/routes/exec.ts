// POST /v1/exec: validate → resolve against the profile → run in a throwaway
// container as an execution (api/executions/) → the result (JSON), live
// output then the result (SSE), or at once 202 {id, status} (Prefer:
// respond-async) while it runs with no client.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import type { LoadedProfile } from "../../core/profile.ts";
import { ApprovalPending, ExecRequest, ExecResult, ExecutionAccepted } from "../../core/schemas.ts";
import { phase } from "../../core/timing.ts";
import type { Executor } from "../../executor/executor.ts";
import { resolveJob } from "../../policies/resolve.ts";
import type { Admission } from "../admission/admit.ts";
import type { JobBuilder } from "../admission/held-jobs.ts";
import type { JobTicket } from "../admission/job-policy.ts";
import type { AuthEnv } from "../auth.ts";
import type { Executions, StartOptions } from "../executions/executions.ts";
import { BEARER, EXEC_EVENTS, errorResponses, V1_ERRORS } from "../openapi.ts";
import { streamJob } from "../stream-job.ts";
import { jsonBody, routesApp } from "../validate.ts";

const LOCATION = {
  Location: {
    description: "/v1/executions/{id}: the execution, readable (and its output replayable) later",
    schema: { type: "string" as const },
  },
};

/** The answers of both exec routes (this one and a workspace's). */
export const EXEC_RESPONSES = {
  200: {
    description: "the result; a non-zero exit, timeout or OOM is a result, not an error",
    headers: LOCATION,
    content: { "application/json": { schema: ExecResult }, ...EXEC_EVENTS },
  },
  202: {
    description:
      "With Prefer: respond-async, {id, status}: the job runs with no client; read it at " +
      "Location, follow its output at Location/events. Or the policy holds this job for a " +
      "human, {approvalId, …}: poll or wait on GET /v1/approvals/{approvalId}, which carries " +
      "the result once an admin approves and the job has run (exactly once).",
    headers: LOCATION,
    content: { "application/json": { schema: z.union([ExecutionAccepted, ApprovalPending]) } },
  },
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
  executions: Executions;
}

export function execRoutes(deps: ExecRouteDeps) {
  const app = routesApp<AuthEnv>();
  app.openapi(exec, async (c) => {
    phase("validate");
    const body = c.req.valid("json");
    const profile = deps.admission.named(c, body.profile);
    // Resolved before the policy runs, so a bad request is a 400 whatever the policy says.
    resolveJob(deps.profiles, body, c.get("caller").tenant);
    const admitted = await deps.admission.admit(c, {
      op: "exec",
      scopes: ["exec"],
      profile,
      job: { kind: "exec" as const, request: body },
    });
    phase("admission");
    return answerExec(c, admitted.job, deps.executions);
  });
  return app;
}

/** How an exec runs (admission runs it now, or once approved: held-jobs.ts). */
export function execJob(deps: Pick<ExecRouteDeps, "executor" | "profiles">): JobBuilder {
  return ({ request, tenant, id, limits, egress }, options) => {
    const body = request as ExecRequest;
    const job = resolveJob(
      deps.profiles,
      { ...body, limits: { ...body.limits, ...limits } },
      tenant,
    );
    return deps.executor.run({ ...job, id, egress }, options);
  };
}

/**
 * Answers an admitted job: its 202 while it waits for approval, else records
 * and runs it as an execution: at once 202 {id, status} with Prefer:
 * respond-async (it runs on with no client), SSE when the client asks for an
 * event stream (it runs on if the client leaves), else the JSON result (a
 * client that leaves cancels it, as it always did).
 */
export async function answerExec(c: Context<AuthEnv>, job: JobTicket, executions: Executions) {
  if (job.status === "pending_approval") return job.response;
  const { execution, run } = job;
  // Admission took the job's slot: a job whose record cannot be made gives it back.
  const start = (options?: StartOptions) =>
    executions.start(execution, run, options).catch(async (err: unknown) => {
      await job.release();
      throw err;
    });
  if (prefersAsync(c.req.header("prefer"))) {
    // The job is admitted (its slot taken) and recorded: the 202 promises it runs.
    const started = await start();
    c.header("Location", `/v1/executions/${started.id}`);
    c.header("Preference-Applied", "respond-async");
    return c.json({ id: started.id, status: "queued" as const }, 202);
  }
  if (wantsEventStream(c.req.header("accept"))) {
    return streamJob(c, (sink) => start({ sink }));
  }
  const started = await start({ signal: c.req.raw.signal });
  c.header("Location", `/v1/executions/${started.id}`);
  return c.json(await started.result);
}

function wantsEventStream(accept: string | undefined): boolean {
  return accept?.split(",").some((part) => part.trim().startsWith("text/event-stream")) ?? false;
}

/** RFC 7240: `Prefer: respond-async` (among other preferences, in any case). */
export function prefersAsync(prefer: string | undefined): boolean {
  return (
    prefer
      ?.split(",")
      .some((part) => part.split(";")[0]?.trim().toLowerCase() === "respond-async") ?? false
  );
}
