// How a workspace lives in Docker: a volume per workspace, whose labels say
// whose it is, which profile it uses, when it was made and its idle TTL; tiny
// marker volumes say when it was last used (workspace-ttl.ts). Nothing about a
// workspace is kept only in gateway memory, so a restarted gateway finds every
// workspace as it was.

export const LABEL_WORKSPACE = "airlock.workspace";
export const LABEL_TENANT = "airlock.tenant";
export const LABEL_PROFILE = "airlock.profile";
export const LABEL_CREATED = "airlock.created";
/** Each workspace keeps the idle TTL it was made with, so any gateway on the engine expires it alike. */
export const LABEL_TTL = "airlock.ttl";
export const LABEL_TOUCH = "airlock.workspace.touch";
/** The egress networks its jobs get when they ask for none themselves, comma-separated. */
export const LABEL_NETWORKS = "airlock.networks";
export const LABEL_TOUCHED = "airlock.touched";

export function volumeOf(id: string): string {
  return `airlock-ws-${id}`;
}

/** The idle TTL a workspace's labels carry, or `fallback` where they carry none that makes sense. */
export function ttlOf(labels: Record<string, string>, fallback: number): number {
  const ttl = Number(labels[LABEL_TTL]);
  return Number.isFinite(ttl) && ttl > 0 ? ttl : fallback;
}
