// The typed airlock client: every route of the HTTP API over `fetch`, with the
// request and response types of core/schemas.ts. Pass your own `fetch` to reach
// an app in-process (the gateway's MCP and Piston adapters do: `app.request`).
import type { z } from "zod";
import type {
  ArchiveImport,
  CreateWorkspaceRequest,
  ExecEvent,
  ExecRequest,
  ExecResult,
  FileEntry,
  ProfileList,
  Readiness,
  WorkspaceExecRequest,
  WorkspaceInfo,
  WrittenFile,
} from "../core/schemas.ts";
import { AirlockApiError, errorFromResponse } from "./errors.ts";
import { readExecEvents } from "./sse.ts";

export type {
  ArchiveImport,
  ExecEvent,
  ExecResult,
  FileEntry,
  ProfileList,
  Readiness,
  WorkspaceInfo,
  WrittenFile,
} from "../core/schemas.ts";
export { AirlockApiError } from "./errors.ts";

/** What a caller sends (defaults not yet applied), as opposed to what the gateway parsed. */
export type ExecInput = z.input<typeof ExecRequest>;
export type WorkspaceExecInput = z.input<typeof WorkspaceExecRequest>;
export type CreateWorkspaceInput = z.input<typeof CreateWorkspaceRequest>;

export type FetchLike = (input: Request) => Response | Promise<Response>;

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
  /** Aborting it ends the request; for a running exec the gateway then kills the job. */
  signal?: AbortSignal;
}

export type AirlockClient = ReturnType<typeof createClient>;

export function createClient(options: ClientOptions) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch: FetchLike = options.fetch ?? ((req) => fetch(req));
  const headers = new Headers(options.headers);
  if (!headers.has("authorization") && options.apiKey !== undefined) {
    headers.set("authorization", `Bearer ${options.apiKey}`);
  }

  async function send(
    method: string,
    path: string,
    init: {
      json?: unknown;
      body?: Uint8Array | string;
      accept?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const h = new Headers(headers);
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    if (init.json !== undefined) {
      h.set("content-type", "application/json");
      body = JSON.stringify(init.json);
    } else if (init.body !== undefined) {
      h.set("content-type", "application/octet-stream");
      body = typeof init.body === "string" ? init.body : new Uint8Array(init.body);
    }
    if (init.accept !== undefined) h.set("accept", init.accept);
    const request = new Request(`${base}${path}`, {
      method,
      headers: h,
      ...(body === undefined ? {} : { body }),
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    });
    const res = await doFetch(request);
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  const json = async <T>(res: Promise<Response>): Promise<T> => (await (await res).json()) as T;
  const bytes = async (res: Promise<Response>) => new Uint8Array(await (await res).arrayBuffer());
  const q = (path: string) => `?path=${encodeURIComponent(path)}`;
  const ws = (id: string) => `/v1/workspaces/${encodeURIComponent(id)}`;

  /** Streams an exec: output events as the process writes, then the result. */
  async function* stream(
    path: string,
    body: unknown,
    call: CallOptions = {},
  ): AsyncGenerator<ExecEvent, void, undefined> {
    // Our own controller, so a consumer that stops iterating closes the stream
    // (and the gateway kills the job) even when it passed no signal.
    const controller = new AbortController();
    const onAbort = () => controller.abort(call.signal?.reason);
    call.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const res = await send("POST", path, {
        json: body,
        accept: "text/event-stream",
        signal: controller.signal,
      });
      if (res.body === null) {
        throw new AirlockApiError(502, { code: "internal", message: "empty event stream" });
      }
      yield* readExecEvents(res.body);
    } finally {
      call.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  return {
    exec: (body: ExecInput, call: CallOptions = {}) =>
      json<ExecResult>(send("POST", "/v1/exec", { json: body, ...call })),
    /** `for await (const e of client.execStream(...))`: stdout/stderr events, then `result`. */
    execStream: (body: ExecInput, call?: CallOptions) => stream("/v1/exec", body, call),
    profiles: (call: CallOptions = {}) => json<ProfileList>(send("GET", "/v1/profiles", call)),
    health: () => json<{ status: "ok" }>(send("GET", "/healthz")),
    readiness: async (): Promise<Readiness> => {
      // 503 with the same body when not ready: a result to read, not an error.
      const res = await doFetch(new Request(`${base}/readyz`, { headers }));
      return (await res.json()) as Readiness;
    },
    workspaces: {
      create: (body: CreateWorkspaceInput = {}, call: CallOptions = {}) =>
        json<WorkspaceInfo>(send("POST", "/v1/workspaces", { json: body, ...call })),
      get: (id: string, call: CallOptions = {}) => json<WorkspaceInfo>(send("GET", ws(id), call)),
      delete: async (id: string, call: CallOptions = {}) => {
        await send("DELETE", ws(id), call);
      },
      exec: (id: string, body: WorkspaceExecInput, call: CallOptions = {}) =>
        json<ExecResult>(send("POST", `${ws(id)}/exec`, { json: body, ...call })),
      execStream: (id: string, body: WorkspaceExecInput, call?: CallOptions) =>
        stream(`${ws(id)}/exec`, body, call),
      listFiles: (id: string, path = "", call: CallOptions = {}) =>
        json<FileEntry[]>(send("GET", `${ws(id)}/files${path === "" ? "" : q(path)}`, call)),
      readFile: (id: string, path: string, call: CallOptions = {}) =>
        bytes(send("GET", `${ws(id)}/files/content${q(path)}`, call)),
      readText: async (id: string, path: string, call: CallOptions = {}) =>
        new TextDecoder().decode(
          await bytes(send("GET", `${ws(id)}/files/content${q(path)}`, call)),
        ),
      writeFile: (id: string, path: string, content: string | Uint8Array, call: CallOptions = {}) =>
        json<WrittenFile>(
          send("PUT", `${ws(id)}/files/content${q(path)}`, { body: content, ...call }),
        ),
      deleteFile: async (id: string, path: string, call: CallOptions = {}) => {
        await send("DELETE", `${ws(id)}/files${q(path)}`, call);
      },
      exportArchive: (id: string, call: CallOptions = {}) =>
        bytes(send("GET", `${ws(id)}/archive`, call)),
      importArchive: (id: string, tar: Uint8Array, call: CallOptions = {}) =>
        json<ArchiveImport>(send("PUT", `${ws(id)}/archive`, { body: tar, ...call })),
    },
  };
}
