// POST /v1/exec: validate → resolve against the profile → run in a throwaway
// container → the result (JSON), or live output then the result (SSE).
import { type Context, Hono } from "hono";
import type { LoadedProfile } from "../../core/profile.ts";
import { ExecRequest } from "../../core/schemas.ts";
import type { Executor } from "../../executor/executor.ts";
import { resolveJob } from "../../policies/resolve.ts";
import type { Admission } from "../admission/admit.ts";
import type { JobTicket } from "../admission/job-policy.ts";
import type { AuthEnv } from "../auth.ts";
import { streamJob } from "../stream-job.ts";
import { parseBody } from "../validate.ts";

export interface ExecRouteDeps {
  executor: Executor;
  profiles: ReadonlyMap<string, LoadedProfile>;
  admission: Admission;
}

export function execRoutes(deps: ExecRouteDeps) {
  const app = new Hono<AuthEnv>();
  app.post("/v1/exec", async (c) => {
    const body = await parseBody(c.req.raw, ExecRequest);
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
