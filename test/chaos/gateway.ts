// What every chaos test does the same way: run main.ts as a real process on the
// chaos engine, call it over HTTP only (executor/ is free to change beneath),
// judge each answer against the documented contract (statuses and bodies from
// core/errors.ts and core/schemas.ts), and look at the engine and the process
// from outside: what is labelled airlock, and how much memory the process holds.
import { readFileSync } from "node:fs";
import { ERROR_STATUS } from "../../core/errors.ts";
import { ErrorBodySchema, ExecResult } from "../../core/schemas.ts";
import { type MainOptions, type MainProcess, spawnMain } from "../support/main-process.ts";
import { chaosDocker, ENGINE_DIRS, SOCKET } from "./engine.ts";

/** main.ts on the chaos engine, with the profiles that engine's one image can serve. */
export function spawnChaosMain(options: MainOptions = {}): Promise<MainProcess> {
  return spawnMain({
    ...options,
    socketPath: SOCKET,
    env: { AIRLOCK_PROFILES_DIR: ENGINE_DIRS.profiles, ...options.env },
  });
}

export interface CallOptions {
  key?: string | undefined;
  headers?: Record<string, string>;
  /** Aborts the request (a hung request shows as a timeout, not as a test that never ends). */
  timeoutMs?: number;
}

/** Any request to the process; a Buffer body goes raw, anything else as JSON. */
export function call(
  main: MainProcess,
  method: string,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<Response> {
  const raw = Buffer.isBuffer(body);
  return fetch(`http://127.0.0.1:${main.port}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${options.key ?? main.key}`,
      ...(body === undefined || raw ? {} : { "content-type": "application/json" }),
      ...options.headers,
    },
    ...(body === undefined ? {} : { body: raw ? new Uint8Array(body) : JSON.stringify(body) }),
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  });
}

/** Creates a workspace of the shell profile; its id. */
export async function newWorkspace(
  main: MainProcess,
  files: { path: string; content: string }[] = [],
  key?: string,
): Promise<string> {
  const res = await call(main, "POST", "/v1/workspaces", { profile: "shell", files }, { key });
  if (res.status !== 201)
    throw new Error(`creating a workspace: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** The paths a workspace lists, sorted. */
export async function listing(main: MainProcess, id: string, key?: string): Promise<string[]> {
  const res = await call(main, "GET", `/v1/workspaces/${id}/files`, undefined, { key });
  if (res.status !== 200) throw new Error(`listing ${id}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { path: string }[]).map((e) => e.path).sort();
}

/**
 * What is wrong with an answer, or undefined when it is one the contract
 * documents: a status among `allowed`; an error body `{"error":{"code",
 * "message"}}` whose code has that status in core/errors.ts; a 200 of an exec
 * route that is a whole ExecResult.
 */
export function undocumented(
  status: number,
  body: unknown,
  allowed: readonly number[],
  execResult = true,
): string | undefined {
  if (!allowed.includes(status)) return `status ${status}: ${JSON.stringify(body)}`;
  if (status < 400) {
    if (!execResult) return undefined;
    const parsed = ExecResult.safeParse(body);
    return parsed.success ? undefined : `a 200 that is no ExecResult: ${JSON.stringify(body)}`;
  }
  const parsed = ErrorBodySchema.safeParse(body);
  if (!parsed.success) return `status ${status} with an undocumented body: ${JSON.stringify(body)}`;
  const { code } = parsed.data.error;
  const expected = (ERROR_STATUS as Record<string, number>)[code];
  return expected === status ? undefined : `code ${code} answered with status ${status}`;
}

export interface AirlockObjects {
  containers: { id: string; instance: string; job: string; state: string }[];
  volumes: string[];
}

/** Every container and volume labelled airlock on the chaos engine, any instance's. */
export async function airlockObjects(): Promise<AirlockObjects> {
  const docker = chaosDocker();
  const containers = await docker.listContainers({ all: true, filters: { label: ["airlock"] } });
  const volumes = (await docker.listVolumes({ filters: { label: ["airlock"] } })).Volumes ?? [];
  return {
    containers: containers.map((c) => ({
      id: c.Id,
      instance: c.Labels["airlock"] ?? "",
      job: c.Labels["airlock.job"] ?? "",
      state: c.State,
    })),
    volumes: volumes.map((v) => v.Name),
  };
}

/** Polls `test` until it holds; fails naming `what` (and the last value seen) after `ms`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T>,
  test: (value: T) => boolean,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (test(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}
