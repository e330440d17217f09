// One translation of engine failures, for every caller: a ContainerClient
// decorator that turns "the engine is not there or broke" into
// docker_unavailable (503, retry shortly). Before it, only the exec path
// translated, so a workspace or file route during an engine outage answered
// 500 internal. The engine's own 4xx answers (404 gone, 409 conflict, 304)
// pass through untouched: callers decide what those mean.
import { AirlockError } from "../core/errors.ts";
import type { ContainerClient } from "./docker.ts";

/** Socket-level failures: the daemon is stopped, restarting, or its socket is gone. */
export function isDockerUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ECONNREFUSED" || code === "ENOENT" || code === "EPIPE" || code === "ECONNRESET") {
    return true;
  }
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return status === 502 || status === 503;
}

/**
 * The engine's failure as docker_unavailable, or undefined when `err` is not
 * one: a refused or reset socket, and any 5xx (a daemon shutting down answers
 * 500 "database not open" mid-job) — the engine's fault and worth a retry.
 */
export function engineFailure(err: unknown): AirlockError | undefined {
  if (err instanceof AirlockError) return undefined;
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  if (!isDockerUnreachable(err) && !(typeof status === "number" && status >= 500)) return undefined;
  return new AirlockError(
    "docker_unavailable",
    `the Docker engine failed; retry shortly (${detail(err)})`,
    {
      cause: err,
      retryAfterSeconds: 5,
    },
  );
}

/**
 * The engine's words, on one line and short, without the host's file paths
 * (a runtime's binary, the engine's data root): callers are not told how the
 * host is laid out. The full error stays in `cause` for the logs.
 */
function detail(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .replace(/\s+/g, " ")
    .replace(/(^|[\s:"'(=])\/[^\s:"')]+/g, "$1<path>")
    .slice(0, 200);
}

async function translated<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw engineFailure(err) ?? err;
  }
}

/** Wraps every call of `inner`: an engine failure leaves it as docker_unavailable. */
export function translateEngineErrors(inner: ContainerClient): ContainerClient {
  const t = translated;
  return {
    ping: () => t(() => inner.ping()),
    imagePresent: (tag) => t(() => inner.imagePresent(tag)),
    create: (spec) => t(() => inner.create(spec)),
    putArchive: (id, path, tar) => t(() => inner.putArchive(id, path, tar)),
    attach: (id) => t(() => inner.attach(id)),
    start: (id) => t(() => inner.start(id)),
    update: (id, settings) => t(() => inner.update(id, settings)),
    wait: (id) => t(() => inner.wait(id)),
    inspectExit: (id) => t(() => inner.inspectExit(id)),
    usage: (id) => t(() => inner.usage(id)),
    kill: (id) => t(() => inner.kill(id)),
    getArchive: (id, path) => t(() => inner.getArchive(id, path)),
    remove: (id) => t(() => inner.remove(id)),
    createVolume: (name, labels) => t(() => inner.createVolume(name, labels)),
    volumeLabels: (name) => t(() => inner.volumeLabels(name)),
    removeVolume: (name) => t(() => inner.removeVolume(name)),
    statPath: (id, path) => t(() => inner.statPath(id, path)),
    listContainers: (label) => t(() => inner.listContainers(label)),
    listVolumes: (label) => t(() => inner.listVolumes(label)),
  };
}
