// Finds and removes what airlock left behind. Several gateways may share one
// engine, so a gateway removes only what no live gateway can own: containers
// and volumes past their airlock.deadline label, and leftovers of its own
// instance id (at start-up, before it has run anything, and at shutdown).

import { LABEL_DEADLINE, LABEL_INSTANCE } from "./container-spec.ts";
import type { ContainerClient, LabelledObject } from "./docker.ts";

export interface ReapOptions {
  instanceId: string;
  /** Also remove this instance's own objects whatever their deadline. */
  includeOwn: boolean;
  now?: number;
}

export interface ReapReport {
  containers: number;
  volumes: number;
}

export function isOrphan(obj: LabelledObject, options: ReapOptions): boolean {
  if (options.includeOwn && obj.labels[LABEL_INSTANCE] === options.instanceId) return true;
  const deadline = Number(obj.labels[LABEL_DEADLINE]);
  // No readable deadline: not ours to judge, unless it is our own.
  if (!Number.isFinite(deadline)) return false;
  return deadline < (options.now ?? Date.now());
}

export async function reap(client: ContainerClient, options: ReapOptions): Promise<ReapReport> {
  const containers = (await client.listContainers(LABEL_INSTANCE)).filter((c) =>
    isOrphan(c, options),
  );
  await Promise.all(containers.map((c) => client.remove(c.id)));
  // Volumes after containers: a volume in use by a container cannot be removed.
  const volumes = (await client.listVolumes(LABEL_INSTANCE)).filter((v) => isOrphan(v, options));
  await Promise.all(volumes.map((v) => client.removeVolume(v.id)));
  return { containers: containers.length, volumes: volumes.length };
}
