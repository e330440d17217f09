// POST /v1/exec: validate → resolve against the profile → run in a throwaway
// container → the result (JSON), or live output then the result (SSE).
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { Executor } from "../../executor/executor.ts";
import { JobCancelledError, type RunOptions } from "../../executor/sandbox.ts";
import type { LoadedProfile } from "../../policies/profile.ts";
import { resolveJob } from "../../policies/resolve.ts";
import type { AuthEnv } from "../auth.ts";
import { AirlockError } from "../errors.ts";
import type { Access } from "../guard.ts";
import { OutputEventEncoder } from "../output-events.ts";
import { ExecRequest, type ExecResult } from "../schemas.ts";
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

/** Bytes of encoded output an SSE response may hold back for a slow client. */
const SSE_HIGH_WATER = 128 * 1024;
const SSE_LOW_WATER = 32 * 1024;

function wantsEventStream(accept: string | undefined): boolean {
  return accept?.split(",").some((part) => part.trim().startsWith("text/event-stream")) ?? false;
}

/**
 * Streams `stdout`/`stderr` events (data: a JSON string, so any bytes survive
 * SSE's line framing) and one final `result` (or `error`) event. The job is
 * admitted before the stream opens, so a full queue is still a plain 429.
 */
async function streamJob(
  c: Context<AuthEnv>,
  start: (options: RunOptions) => Promise<ExecResult>,
  signal: AbortSignal,
) {
  const encoders = {
    stdout: new OutputEventEncoder("stdout"),
    stderr: new OutputEventEncoder("stderr"),
  };
  // Events, already encoded, that the client has not taken yet.
  const pending: Buffer[] = [];
  // Output waiting for a slow client is bounded: past the high mark the
  // sandbox stops reading the container (the job blocks on its writes) until
  // the writer below has sent the backlog down to the low mark.
  let pendingBytes = 0;
  let drainWaiters: (() => void)[] = [];
  let wake: (() => void) | undefined;
  const run = start({
    signal,
    onOutput: (stream, chunk) => {
      const event = encoders[stream].write(chunk);
      if (event === undefined) return true;
      pending.push(event);
      pendingBytes += event.length;
      wake?.();
      return pendingBytes < SSE_HIGH_WATER;
    },
    outputDrained: () =>
      pendingBytes < SSE_HIGH_WATER
        ? Promise.resolve()
        : new Promise<void>((resolve) => drainWaiters.push(resolve)),
  });
  const sent = (bytes: number) => {
    pendingBytes -= bytes;
    if (pendingBytes <= SSE_LOW_WATER && drainWaiters.length > 0) {
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };
  let settled = false;
  const done = run.then(
    () => {
      settled = true;
      wake?.();
    },
    () => {
      settled = true;
      wake?.();
    },
  );
  // A rejection that happens at once (busy, docker_unavailable) is still an HTTP error.
  await new Promise((resolve) => setImmediate(resolve));
  if (settled) {
    await run.catch((err: unknown) => {
      if (err instanceof AirlockError) throw err;
    });
  }
  // Once the job is over, a character cut off at the very end of a stream goes
  // out (as U+FFFD) in that stream's last event.
  let flushed = false;
  const flushEncoders = () => {
    flushed = true;
    for (const encoder of [encoders.stdout, encoders.stderr]) {
      const last = encoder.end();
      if (last !== undefined) pending.push(last);
    }
  };
  return streamSSE(c, async (sse) => {
    for (;;) {
      while (pending.length > 0) {
        const next = pending.shift();
        if (next === undefined) continue;
        await sse.write(next);
        sent(next.length);
      }
      if (settled && !flushed) {
        flushEncoders();
        continue;
      }
      if (settled) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
    await done;
    try {
      const result = await run;
      await sse.writeSSE({ event: "result", data: JSON.stringify(result) });
    } catch (err) {
      if (err instanceof JobCancelledError) return;
      const error =
        err instanceof AirlockError
          ? err
          : new AirlockError("internal", "the job failed inside airlock", { cause: err });
      await sse.writeSSE({ event: "error", data: JSON.stringify(error.toBody()) });
    }
  });
}
