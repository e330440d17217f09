// The typed fetch layer: one `request(method, path, init)` for every route of the
// generated `paths` (client/openapi-types.ts), so a path, its parameters and its
// JSON body are checked by the compiler against the gateway's own document.
// A few lines of our own rather than openapi-fetch: the client also sends raw
// bytes and tars, reads event streams, and raises AirlockApiError, so the
// dependency would save little and still need wrapping.
import { errorFromResponse } from "./errors.ts";
import type { paths } from "./openapi-types.ts";

export type Path = keyof paths;
export type MethodOf<P extends Path> = Extract<keyof paths[P], "get" | "post" | "put" | "delete">;
export type Operation<P extends Path, M extends MethodOf<P>> = paths[P][M];

type Parameters<O> = O extends { parameters: infer X } ? X : never;
type PathParameters<O> = Parameters<O> extends { path: infer X } ? X : never;
type QueryParameters<O> = Parameters<O> extends { query?: infer X } ? X : never;
type IsNever<T> = [T] extends [never] ? true : false;

/** The JSON body an operation takes. */
export type JsonBody<O> = O extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;

/** The JSON an operation answers with, for the given statuses (default: its successes). */
export type JsonAnswer<O, S extends number = 200 | 201> = O extends { responses: infer R }
  ? {
      [K in keyof R & S]: R[K] extends { content: { "application/json": infer B } } ? B : never;
    }[keyof R & S]
  : never;

export type FetchLike = (input: Request) => Response | Promise<Response>;

export type RequestInit<O> = (IsNever<PathParameters<O>> extends true
  ? { path?: never }
  : { path: PathParameters<O> }) & {
  query?: QueryParameters<O>;
  /** A JSON body (sent as application/json). */
  json?: JsonBody<O>;
  /** A raw body (sent as application/octet-stream unless `type` says otherwise). */
  body?: Uint8Array | string;
  type?: string;
  accept?: string;
  /** Extra headers of this request (Prefer, Last-Event-ID, …). */
  headers?: Record<string, string> | undefined;
  /**
   * Sent as `Idempotency-Key`: a retry with the same key (and the same
   * request) gets the first answer again instead of running it twice.
   */
  idempotencyKey?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Statuses that are answers to read, not errors (GET /readyz's 503). */
  answers?: readonly number[];
};

export interface Transport {
  /** The gateway, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  baseUrl: string;
  headers: Headers;
  fetch: FetchLike;
}

/** `/v1/workspaces/{id}` with `{ id: "ws_1" }` → `/v1/workspaces/ws_1`, plus the query. */
function url(base: string, path: string, params: unknown, query: unknown) {
  const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) =>
    encodeURIComponent(String((params as Record<string, unknown> | undefined)?.[name] ?? "")),
  );
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries((query as object | undefined) ?? {})) {
    if (value !== undefined) search.set(name, String(value));
  }
  const qs = search.toString();
  return `${base}${filled}${qs === "" ? "" : `?${qs}`}`;
}

/** Sends one request; a status outside 2xx (and `answers`) throws AirlockApiError. */
export async function request<P extends Path, M extends MethodOf<P>>(
  transport: Transport,
  method: M,
  path: P,
  init: RequestInit<Operation<P, M>>,
): Promise<Response> {
  const headers = new Headers(transport.headers);
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  } else if (init.body !== undefined) {
    headers.set("content-type", init.type ?? "application/octet-stream");
    body = typeof init.body === "string" ? init.body : new Uint8Array(init.body);
  }
  if (init.accept !== undefined) headers.set("accept", init.accept);
  for (const [name, value] of Object.entries(init.headers ?? {})) headers.set(name, value);
  if (init.idempotencyKey !== undefined) headers.set("idempotency-key", init.idempotencyKey);
  const req = new Request(url(transport.baseUrl, path, init.path, init.query), {
    method: method.toUpperCase(),
    headers,
    ...(body === undefined ? {} : { body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const res = await transport.fetch(req);
  if (!res.ok && !(init.answers ?? []).includes(res.status)) throw await errorFromResponse(res);
  return res;
}
