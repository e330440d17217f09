// The typed client's executions: start a job that runs with no client
// (Prefer: respond-async), read it, wait for its end, list, cancel, and follow
// its output as events, from the start or from the last event id seen (a
// reattach after a dropped stream). The retry recipe of the README rests on
// these and on the Idempotency-Key option every call takes.
import { EventSourceParserStream } from "eventsource-parser/stream";
import type { ExecResult } from "../core/schemas.ts";
import { type ApprovalPending, pendingError } from "./approvals.ts";
import { AirlockApiError, errorFromEvent } from "./errors.ts";
import {
  type JsonAnswer,
  type JsonBody,
  type MethodOf,
  type Operation,
  type Path,
  type RequestInit,
  request,
  type Transport,
} from "./http.ts";

type Op<P extends Path, M extends MethodOf<P>> = Operation<P, M>;

export type ExecutionView = JsonAnswer<Op<"/v1/executions/{id}", "get">>;
export type ExecutionList = JsonAnswer<Op<"/v1/executions", "get">>;
export type ExecutionQuery = NonNullable<RequestInit<Op<"/v1/executions", "get">>["query"]>;
/** 202 of an exec route asked with Prefer: respond-async: the execution, running with no client. */
export type ExecAccepted = Exclude<JsonAnswer<Op<"/v1/exec", "post">, 202>, ApprovalPending>;

/** The event of an execution's stream (GET /v1/executions/:id/events). */
export type ExecutionEvent =
  /** Output; `id` is what to pass as `lastEventId` to continue after it. */
  | { type: "stdout" | "stderr"; data: string; id: number }
  /** Output past the replay bound was not kept: it cannot be replayed. */
  | { type: "dropped"; storedBytes: number; droppedBytes: number; message: string }
  | { type: "result"; result: ExecResult }
  /** Ended without a result: cancelled or lost (a `failed` execution throws its error). */
  | { type: "end"; id: string; status: string; error?: { code: string; message: string } };

export interface ExecutionCallOptions {
  signal?: AbortSignal;
  /** Sent as Idempotency-Key: retrying the same call with the same key runs the job once. */
  idempotencyKey?: string;
}

export interface ExecutionWaitOptions extends ExecutionCallOptions {
  /** Give up (returning it as it is) after this many seconds; default: wait until it ends. */
  timeoutSeconds?: number;
}

const FINAL = new Set(["done", "failed", "cancelled", "lost"]);
const ASYNC = { prefer: "respond-async" };

export function executionMethods(transport: Transport) {
  const json = async <P extends Path, M extends MethodOf<P>, S extends number = 200 | 201>(
    method: M,
    path: P,
    init: RequestInit<Op<P, M>>,
  ) => (await (await request(transport, method, path, init)).json()) as JsonAnswer<Op<P, M>, S>;
  /** An async start's 202: the execution, or (held for approval) ApprovalPendingError with its id. */
  const accepted = async (answer: Promise<JsonAnswer<Op<"/v1/exec", "post">, 202>>) => {
    const body = await answer;
    if ("approvalId" in body) throw pendingError(body);
    return body as ExecAccepted;
  };
  const getExecution = (id: string, call: ExecutionCallOptions = {}) =>
    json("get", "/v1/executions/{id}", { path: { id }, ...call });

  /** Waits for the end with GET ?wait= (at most 60 s a request), for as long as asked. */
  const waitExecution = async (
    id: string,
    options: ExecutionWaitOptions = {},
  ): Promise<ExecutionView> => {
    const { timeoutSeconds, ...call } = options;
    const end = timeoutSeconds === undefined ? Infinity : Date.now() + timeoutSeconds * 1000;
    for (;;) {
      const left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      const wait = Math.min(60, left);
      const view = await json("get", "/v1/executions/{id}", {
        path: { id },
        query: { wait },
        ...call,
      });
      if (FINAL.has(view.status) || wait === 0 || Date.now() >= end) return view;
    }
  };

  return {
    /**
     * Starts an exec that runs with no client: `{id, status}` at once; a job
     * the policy holds for a human throws ApprovalPendingError (its approvalId).
     */
    execAsync: (body: JsonBody<Op<"/v1/exec", "post">>, call: ExecutionCallOptions = {}) =>
      accepted(
        json<"/v1/exec", "post", 202>("post", "/v1/exec", { json: body, headers: ASYNC, ...call }),
      ),
    /** As execAsync, in a workspace. */
    workspaceExecAsync: (
      workspace: string,
      body: JsonBody<Op<"/v1/workspaces/{id}/exec", "post">>,
      call: ExecutionCallOptions = {},
    ) =>
      accepted(
        json<"/v1/workspaces/{id}/exec", "post", 202>("post", "/v1/workspaces/{id}/exec", {
          path: { id: workspace },
          json: body,
          headers: ASYNC,
          ...call,
        }),
      ),
    getExecution,
    waitExecution,
    /** Newest first, without results. */
    listExecutions: (query: ExecutionQuery = {}, call: ExecutionCallOptions = {}) =>
      json("get", "/v1/executions", { query, ...call }),
    /** Kills it (a queued one never starts); 409 when it has ended already. */
    cancelExecution: (id: string, call: ExecutionCallOptions = {}) =>
      json("delete", "/v1/executions/{id}", { path: { id }, ...call }),
    /**
     * Its output as events, replayed from the start (or after `lastEventId`),
     * then live, then `result` or `end`; a failed execution throws its error.
     * With `follow: false`, only what is kept so far (and how it ended, if it
     * has). Stopping the iteration closes the stream; the job runs on.
     */
    executionEvents: (
      id: string,
      options: { lastEventId?: number; follow?: boolean; signal?: AbortSignal } = {},
    ): AsyncGenerator<ExecutionEvent, void, undefined> => readExecution(transport, id, options),
  };
}

async function* readExecution(
  transport: Transport,
  id: string,
  options: { lastEventId?: number; follow?: boolean; signal?: AbortSignal },
): AsyncGenerator<ExecutionEvent, void, undefined> {
  const { lastEventId, signal } = options;
  const follow = options.follow ?? true;
  // Our own controller, so a consumer that stops iterating closes the stream.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const res = await request(transport, "get", "/v1/executions/{id}/events", {
      path: { id },
      query: { follow: follow ? "true" : "false" },
      accept: "text/event-stream",
      headers: lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) },
      signal: controller.signal,
    });
    if (res.body === null) {
      throw new AirlockApiError(502, { code: "internal", message: "empty event stream" });
    }
    const events = res.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream());
    for await (const e of events) {
      if (e.event === "stdout" || e.event === "stderr") {
        yield { type: e.event, data: JSON.parse(e.data) as string, id: Number(e.id) };
      } else if (e.event === "dropped") {
        yield { type: "dropped", ...JSON.parse(e.data) };
      } else if (e.event === "result") {
        yield { type: "result", result: JSON.parse(e.data) as ExecResult };
        return;
      } else if (e.event === "end") {
        yield { type: "end", ...JSON.parse(e.data) };
        return;
      } else if (e.event === "error") {
        throw errorFromEvent(e.data);
      }
    }
    // Not following, a running execution's stream ends after what is kept so far.
    if (follow) {
      throw new AirlockApiError(502, {
        code: "internal",
        message: "the event stream ended before the execution did",
      });
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    controller.abort();
  }
}
