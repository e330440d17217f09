// How a workspace checkpoint lives in Docker: two volumes per checkpoint.
// The data volume (airlock-cp-<id>) holds the copy of /workspace (tree/),
// the listings it was taken with (files, dirs), its links' targets (links)
// and its files' sha256 (sums; none in one taken before they were kept);
// only airlock's own system containers ever mount it. The marker volume (airlock-cpm-<id>) is empty and
// carries what a listing shows (label, size, entry count) in its labels, which
// cannot be set on the data volume once its size is known; it is made last,
// so a checkpoint exists only once it is complete. Both carry the workspace's
// id and tenant, so they go with their workspace, and the tenant's
// checkpoint bytes are counted from the engine alike by every gateway.
import type { ContainerClient } from "./docker.ts";
import { LABEL_CREATED, LABEL_TENANT } from "./workspace-labels.ts";

/** On the data volume: the checkpoint's id. */
export const LABEL_CHECKPOINT = "airlock.checkpoint";
/** On the marker volume: the checkpoint's id. */
export const LABEL_CHECKPOINT_META = "airlock.checkpoint.meta";
/** On both: the workspace the checkpoint was taken of. */
export const LABEL_CHECKPOINT_OF = "airlock.checkpoint.of";
export const LABEL_CHECKPOINT_LABEL = "airlock.checkpoint.label";
export const LABEL_CHECKPOINT_BYTES = "airlock.checkpoint.bytes";
export const LABEL_CHECKPOINT_ENTRIES = "airlock.checkpoint.entries";

export const CHECKPOINT_ID = /^cp_[a-z0-9]{20}$/;

export function dataVolumeOf(id: string): string {
  return `airlock-cp-${id}`;
}

export function metaVolumeOf(id: string): string {
  return `airlock-cpm-${id}`;
}

export interface CheckpointInfo {
  id: string;
  label: string | null;
  createdAt: string;
  /** Bytes of its regular files, counted as a workspace's size is. */
  bytes: number;
  /** Files, directories and symlinks. */
  entries: number;
}

export interface StoredCheckpoint extends CheckpointInfo {
  workspace: string;
  tenant: string;
}

function parse(labels: Record<string, string>): StoredCheckpoint | undefined {
  const id = labels[LABEL_CHECKPOINT_META];
  const workspace = labels[LABEL_CHECKPOINT_OF];
  const tenant = labels[LABEL_TENANT];
  if (id === undefined || workspace === undefined || tenant === undefined) return undefined;
  return {
    id,
    workspace,
    tenant,
    label: labels[LABEL_CHECKPOINT_LABEL] ?? null,
    createdAt: new Date(Number(labels[LABEL_CREATED])).toISOString(),
    bytes: Number(labels[LABEL_CHECKPOINT_BYTES]) || 0,
    entries: Number(labels[LABEL_CHECKPOINT_ENTRIES]) || 0,
  };
}

/** The workspace's complete checkpoints, oldest first. */
export async function checkpointsOf(
  client: ContainerClient,
  workspace: string,
): Promise<StoredCheckpoint[]> {
  const volumes = await client.listVolumes(`${LABEL_CHECKPOINT_OF}=${workspace}`);
  return volumes
    .map((v) => parse(v.labels))
    .filter((c): c is StoredCheckpoint => c !== undefined)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/** Bytes held by all of the tenant's checkpoints. */
export async function checkpointBytesOf(client: ContainerClient, tenant: string): Promise<number> {
  const volumes = await client.listVolumes(`${LABEL_TENANT}=${tenant}`);
  let bytes = 0;
  for (const v of volumes) bytes += parse(v.labels)?.bytes ?? 0;
  return bytes;
}

/** The checkpoint's marker, or undefined when it is not a complete checkpoint of that workspace. */
export async function findCheckpoint(
  client: ContainerClient,
  workspace: string,
  id: string,
): Promise<StoredCheckpoint | undefined> {
  if (!CHECKPOINT_ID.test(id)) return undefined;
  const labels = await client.volumeLabels(metaVolumeOf(id));
  const found = labels === undefined ? undefined : parse(labels);
  return found?.workspace === workspace ? found : undefined;
}

/** Removes one checkpoint: its marker first, so that it stops being listed before its data goes. */
export async function removeCheckpoint(client: ContainerClient, id: string): Promise<void> {
  await client.removeVolume(metaVolumeOf(id));
  await client.removeVolume(dataVolumeOf(id));
}

/** Removes every volume of the workspace's checkpoints, complete or not (the workspace is going). */
export async function removeCheckpointsOf(
  client: ContainerClient,
  workspace: string,
): Promise<void> {
  const volumes = await client.listVolumes(`${LABEL_CHECKPOINT_OF}=${workspace}`);
  // Markers before data, as removeCheckpoint() does.
  const ordered = [...volumes].sort(
    (a, b) =>
      Number(b.labels[LABEL_CHECKPOINT_META] !== undefined) -
      Number(a.labels[LABEL_CHECKPOINT_META] !== undefined),
  );
  for (const v of ordered) await client.removeVolume(v.id);
}
