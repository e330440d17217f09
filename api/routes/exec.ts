// POST /v1/exec: validate → resolve against the profile → run in a throwaway
// container → the result (JSON), or live output then the result (SSE).
import { type Context, Hono } from "hono";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import { ExecRequest, type ExecResult } from "../../core/schemas.ts";
import type { Executor } from "../../executor/executor.ts";
import type { RunOptions } from "../../executor/sandbox.ts";
import { resolveJob } from "../../policies/resolve.ts";
import type { AuthEnv } from "../auth.ts";
import type { Access } from "../guard.ts";
import { streamJob } from "../stream-job.ts";
import { parseBody } from "../validate.ts";

export interface ExecRouteDeps {
  executor: Executor;
  profiles: ReadonlyMap<string, LoadedProfile>;
  access: Access;
}

export function execRoutes(deps: ExecRouteDeps) {
  const app = new Hono<AuthEnv>();
  app.post("/v1/exec", async (c) => {
    const body = await parseBody(c.req.raw, ExecRequest);
    const profile = lookupVisibleProfile(deps, c, body.profile);
    // Resolved before the policy runs, so a bad request is a 400 whatever the policy says.
    resolveJob(deps.profiles, body, c.get("caller").tenant);
    return deps.access.runJob(
      c,
      body,
      {
        op: "exec",
        scopes: ["exec"],
        profile,
        run: (limits, options) => {
          const job = resolveJob(
            deps.profiles,
            { ...body, limits: { ...body.limits, ...limits } },
            c.get("caller").tenant,
          );
          return deps.executor.run(job, options);
        },
      },
      (run) => answerExec(c, run),
    );
  });
  return app;
}

/** The profile, or not_found listing only the profiles this caller may use. */
function lookupVisibleProfile(deps: ExecRouteDeps, c: Context<AuthEnv>, name: string) {
  const profile = deps.profiles.get(name);
  if (profile !== undefined) return profile;
  const caller = c.get("caller");
  const available = [...deps.profiles.values()]
    .filter((p) => deps.access.mayUse(caller, p))
    .map((p) => p.name);
  throw new AirlockError("not_found", `profile ${JSON.stringify(name)} does not exist`, {
    details: { profile: name, available },
  });
}

/** Runs a job for a request: JSON result, or SSE when the client asks for an event stream. */
export async function answerExec(
  c: Context<AuthEnv>,
  run: (options: RunOptions) => Promise<ExecResult>,
) {
  const signal = c.req.raw.signal;
  if (wantsEventStream(c.req.header("accept"))) return streamJob(c, run, signal);
  return c.json(await run({ signal }));
}

function wantsEventStream(accept: string | undefined): boolean {
  return accept?.split(",").some((part) => part.trim().startsWith("text/event-stream")) ?? false;
}
