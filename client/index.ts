// The typed airlock client: every route of the HTTP API over `fetch`. Paths,
// parameters, bodies and answers are typed by client/openapi-types.ts, generated
// from the gateway's own OpenAPI document (itself made from the route declarations
// and the zod schemas of core/schemas.ts), so the client cannot drift from the
// routes. `request()` reaches any route; the methods below are the convenient way.
// Pass your own `fetch` to reach an app in-process (the gateway's MCP and Piston
// adapters do: `app.request`).
import type { ExecEvent } from "../core/schemas.ts";
import { type ApprovalPending, approvalMethods, pendingError } from "./approvals.ts";
import { AirlockApiError } from "./errors.ts";
import { executionMethods } from "./executions.ts";
import {
  type FetchLike,
  type JsonAnswer,
  type JsonBody,
  type MethodOf,
  type Operation,
  type Path,
  type RequestInit,
  request,
  type Transport,
} from "./http.ts";
import { readExecEvents } from "./sse.ts";

export type { ExecEvent } from "../core/schemas.ts";
export {
  ApprovalEndedError,
  type ApprovalPending,
  ApprovalPendingError,
  type ApprovalView,
  approvalOutcome,
  type WaitOptions,
} from "./approvals.ts";
export { AirlockApiError } from "./errors.ts";
export type {
  ExecAccepted,
  ExecutionCallOptions,
  ExecutionEvent,
  ExecutionList,
  ExecutionQuery,
  ExecutionView,
  ExecutionWaitOptions,
} from "./executions.ts";
export type { FetchLike, JsonAnswer, JsonBody, Operation, Path } from "./http.ts";
export type { components, paths } from "./openapi-types.ts";

type Op<P extends Path, M extends MethodOf<P>> = Operation<P, M>;
type Answer<P extends Path, M extends MethodOf<P>> = JsonAnswer<Op<P, M>>;

/** What a caller sends (defaults not yet applied). */
export type ExecInput = JsonBody<Op<"/v1/exec", "post">>;
export type WorkspaceExecInput = JsonBody<Op<"/v1/workspaces/{id}/exec", "post">>;
export type CreateWorkspaceInput = JsonBody<Op<"/v1/workspaces", "post">>;
export type ExecResult = Answer<"/v1/exec", "post">;
export type ProfileList = Answer<"/v1/profiles", "get">;
export type Readiness = Answer<"/readyz", "get">;
export type WorkspaceInfo = Answer<"/v1/workspaces/{id}", "get">;
export type FileEntry = Answer<"/v1/workspaces/{id}/files", "get">[number];
export type WrittenFile = Answer<"/v1/workspaces/{id}/files/content", "put">;
export type ArchiveImport = Answer<"/v1/workspaces/{id}/archive", "put">;
export type CheckpointInfo = Answer<"/v1/workspaces/{id}/checkpoints", "post">;
export type CheckpointInput = JsonBody<Op<"/v1/workspaces/{id}/checkpoints", "post">>;
export type ForkInput = JsonBody<Op<"/v1/workspaces/{id}/fork", "post">>;
export type RestoreResult = Answer<"/v1/workspaces/{id}/restore", "post">;
export type WorkspaceDiff = Answer<"/v1/workspaces/{id}/diff", "get">;
export type StopState = Answer<"/v1/admin/stop", "get">;
export type AuditQuery = NonNullable<RequestInit<Op<"/v1/audit", "get">>["query"]>;
export type PistonExecuteInput = JsonBody<Op<"/api/v2/execute", "post">>;

export interface ClientOptions {
  /** The gateway, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` unless `headers` carries an Authorization. */
  apiKey?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  fetch?: FetchLike;
}

export interface CallOptions {
  /**
   * Aborting it ends the request; for a running exec answered as JSON the
   * gateway then kills the job (a streamed one runs on: cancelExecution).
   */
  signal?: AbortSignal;
  /** Sent as Idempotency-Key on a POST or PUT: a retry with the same key runs nothing twice. */
  idempotencyKey?: string;
  /**
   * A stream's execution id, as soon as the stream opens: closing the stream
   * leaves the job running, so this is how to cancel it (cancelExecution) or
   * follow it again (executionEvents).
   */
  onExecution?: (id: string) => void;
}

export type AirlockClient = ReturnType<typeof createClient>;

export function createClient(options: ClientOptions) {
  const headers = new Headers(options.headers);
  if (!headers.has("authorization") && options.apiKey !== undefined) {
    headers.set("authorization", `Bearer ${options.apiKey}`);
  }
  const transport: Transport = {
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers,
    fetch: options.fetch ?? ((req) => fetch(req)),
  };
  /** Any route of the document: the Response, once its status is a success. */
  const send = <P extends Path, M extends MethodOf<P>>(
    method: M,
    path: P,
    init: RequestInit<Op<P, M>>,
  ) => request(transport, method, path, init);
  /** A route's JSON answer, typed by the document. */
  const json = async <P extends Path, M extends MethodOf<P>>(
    method: M,
    path: P,
    init: RequestInit<Op<P, M>>,
  ): Promise<Answer<P, M>> => (await (await send(method, path, init)).json()) as Answer<P, M>;
  const bytes = async (res: Promise<Response>) => new Uint8Array(await (await res).arrayBuffer());
  /** An exec's result; a job held for approval (202) throws ApprovalPendingError with its id. */
  const execResult = async (res: Promise<Response>): Promise<ExecResult> => {
    const answer = await res;
    if (answer.status === 202) throw pendingError((await answer.json()) as ApprovalPending);
    return (await answer.json()) as ExecResult;
  };

  /** Streams an exec: output events as the process writes, then the result. */
  async function* stream(
    open: (signal: AbortSignal) => Promise<Response>,
    call: CallOptions = {},
  ): AsyncGenerator<ExecEvent, void, undefined> {
    // Our own controller, so a consumer that stops iterating closes the stream
    // even when it passed no signal (the job runs on: see onExecution).
    const controller = new AbortController();
    const onAbort = () => controller.abort(call.signal?.reason);
    call.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const res = await open(controller.signal);
      const location = res.headers.get("location");
      if (location !== null) call.onExecution?.(location.slice(location.lastIndexOf("/") + 1));
      // Held for approval: nothing runs now, so there is no stream, only the id to wait on.
      if (res.status === 202) {
        yield { type: "approval", approval: (await res.json()) as ApprovalPending };
        return;
      }
      if (res.body === null) {
        throw new AirlockApiError(502, { code: "internal", message: "empty event stream" });
      }
      yield* readExecEvents(res.body);
    } finally {
      call.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }
  const events = "text/event-stream";

  return {
    ...executionMethods(transport),
    request: send,
    /** The result; throws ApprovalPendingError (with `approvalId`) when the policy holds the job. */
    exec: (body: ExecInput, call: CallOptions = {}) =>
      execResult(send("post", "/v1/exec", { json: body, ...call })),
    /**
     * `for await (const e of client.execStream(...))`: stdout/stderr events, then
     * `result`; or one `approval` event (its `approvalId`) when the policy holds the job.
     */
    execStream: (body: ExecInput, call?: CallOptions) =>
      stream((signal) => send("post", "/v1/exec", { json: body, accept: events, signal }), call),
    profiles: (call: CallOptions = {}) => json("get", "/v1/profiles", call),
    health: () => json("get", "/healthz", {}),
    /** 503 with the same body when not ready: a result to read, not an error. */
    readiness: async (): Promise<Readiness> =>
      (await (await send("get", "/readyz", { answers: [503] })).json()) as Readiness,
    /** This gateway's OpenAPI 3.1 document. */
    openapi: (call: CallOptions = {}) => json("get", "/openapi.json", call),
    /** Prometheus' text format (any valid key, unless the gateway made it public). */
    metrics: async (call: CallOptions = {}) => (await send("get", "/metrics", call)).text(),
    workspaces: workspaceMethods(send, json, bytes, execResult, stream),
    admin: adminMethods(json),
    approvals: approvalMethods(json),
    /** Piston's v2 API, as this gateway answers it (its errors are `{message}`). */
    piston: {
      runtimes: (call: CallOptions = {}) => json("get", "/api/v2/runtimes", call),
      execute: (body: PistonExecuteInput, call: CallOptions = {}) =>
        json("post", "/api/v2/execute", { json: body, ...call }),
    },
  };
}

type Send = <P extends Path, M extends MethodOf<P>>(
  method: M,
  path: P,
  init: RequestInit<Op<P, M>>,
) => Promise<Response>;
type Json = <P extends Path, M extends MethodOf<P>>(
  method: M,
  path: P,
  init: RequestInit<Op<P, M>>,
) => Promise<Answer<P, M>>;

/** Checkpoints, restore, fork and diff of a workspace (DESIGN.md "Workspace checkpoints"). */
function checkpointMethods(send: Send, json: Json) {
  const checkpoints = "/v1/workspaces/{id}/checkpoints";
  return {
    /** Takes a checkpoint of the workspace as it is now. */
    checkpoint: (id: string, body: CheckpointInput = {}, call: CallOptions = {}) =>
      json("post", checkpoints, { path: { id }, json: body, ...call }),
    checkpoints: (id: string, call: CallOptions = {}) =>
      json("get", checkpoints, { path: { id }, ...call }),
    deleteCheckpoint: async (id: string, cp: string, call: CallOptions = {}) => {
      await send("delete", "/v1/workspaces/{id}/checkpoints/{cp}", { path: { id, cp }, ...call });
    },
    /** Puts the workspace back as the checkpoint has it; the answer carries the diff it made. */
    restore: (id: string, checkpoint: string, call: CallOptions = {}) =>
      json("post", "/v1/workspaces/{id}/restore", { path: { id }, json: { checkpoint }, ...call }),
    /** New workspaces holding the workspace's files (or a checkpoint's). */
    fork: (id: string, body: ForkInput = {}, call: CallOptions = {}) =>
      json("post", "/v1/workspaces/{id}/fork", { path: { id }, json: body, ...call }),
    /** What changed from checkpoint `from` to checkpoint `to` (default: the workspace now). */
    diff: (id: string, from: string, to = "current", call: CallOptions = {}) =>
      json("get", "/v1/workspaces/{id}/diff", { path: { id }, query: { from, to }, ...call }),
  };
}

function workspaceMethods(
  send: Send,
  json: Json,
  bytes: (res: Promise<Response>) => Promise<Uint8Array>,
  execResult: (res: Promise<Response>) => Promise<ExecResult>,
  stream: (
    open: (signal: AbortSignal) => Promise<Response>,
    call?: CallOptions,
  ) => AsyncGenerator<ExecEvent, void, undefined>,
) {
  const content = "/v1/workspaces/{id}/files/content";
  const readFile = (id: string, path: string, call: CallOptions = {}) =>
    bytes(send("get", content, { path: { id }, query: { path }, ...call }));
  return {
    create: (body: CreateWorkspaceInput = {}, call: CallOptions = {}) =>
      json("post", "/v1/workspaces", { json: body, ...call }),
    get: (id: string, call: CallOptions = {}) =>
      json("get", "/v1/workspaces/{id}", { path: { id }, ...call }),
    delete: async (id: string, call: CallOptions = {}) => {
      await send("delete", "/v1/workspaces/{id}", { path: { id }, ...call });
    },
    /** As `exec`: throws ApprovalPendingError when the policy holds the job. */
    exec: (id: string, body: WorkspaceExecInput, call: CallOptions = {}) =>
      execResult(send("post", "/v1/workspaces/{id}/exec", { path: { id }, json: body, ...call })),
    execStream: (id: string, body: WorkspaceExecInput, call?: CallOptions) =>
      stream(
        (signal) =>
          send("post", "/v1/workspaces/{id}/exec", {
            path: { id },
            json: body,
            accept: "text/event-stream",
            signal,
          }),
        call,
      ),
    listFiles: (id: string, path = "", call: CallOptions = {}) =>
      json("get", "/v1/workspaces/{id}/files", {
        path: { id },
        query: path === "" ? {} : { path },
        ...call,
      }),
    readFile,
    readText: async (id: string, path: string, call: CallOptions = {}) =>
      new TextDecoder().decode(await readFile(id, path, call)),
    writeFile: (id: string, path: string, body: string | Uint8Array, call: CallOptions = {}) =>
      json("put", content, { path: { id }, query: { path }, body, ...call }),
    deleteFile: async (id: string, path: string, call: CallOptions = {}) => {
      await send("delete", "/v1/workspaces/{id}/files", { path: { id }, query: { path }, ...call });
    },
    exportArchive: (id: string, call: CallOptions = {}) =>
      bytes(send("get", "/v1/workspaces/{id}/archive", { path: { id }, ...call })),
    importArchive: (id: string, tar: Uint8Array, call: CallOptions = {}) =>
      json("put", "/v1/workspaces/{id}/archive", {
        path: { id },
        body: tar,
        type: "application/x-tar",
        ...call,
      }),
    ...checkpointMethods(send, json),
  };
}

/** The operator's routes (an admin key). */
function adminMethods(json: Json) {
  const target = (tenant: string | undefined) => (tenant === undefined ? {} : { tenant });
  return {
    /** The emergency stops in force. */
    stops: (call: CallOptions = {}) => json("get", "/v1/admin/stop", call),
    /** Stops one tenant, or everything when `tenant` is undefined. */
    stop: (tenant?: string, call: CallOptions = {}) =>
      json("post", "/v1/admin/stop", { json: target(tenant), ...call }),
    /** Lifts one tenant's stop, or every stop when `tenant` is undefined. */
    resume: (tenant?: string, call: CallOptions = {}) =>
      json("post", "/v1/admin/resume", { json: target(tenant), ...call }),
    reloadPolicy: (call: CallOptions = {}) => json("post", "/v1/admin/policy/reload", call),
    /** What the egress proxy would decide for host:port on a named network, without connecting. */
    checkEgress: (
      check: { network: string; host: string; port: number; address?: string },
      call: CallOptions = {},
    ) => json("post", "/v1/admin/egress/check", { json: check, ...call }),
    usage: (call: CallOptions = {}) => json("get", "/v1/admin/usage", call),
    jobs: (call: CallOptions = {}) => json("get", "/v1/admin/jobs", call),
    /** The audit trail, newest first. */
    audit: (query: AuditQuery = {}, call: CallOptions = {}) =>
      json("get", "/v1/audit", { query, ...call }),
  };
}
