// The per-tenant limit on how many workspaces exist. The count is the
// engine's own (the tenant's labelled workspace volumes), so every gateway on
// the engine counts alike and nothing is kept in memory.
import { AirlockError } from "../core/errors.ts";
import type { ContainerClient } from "./docker.ts";
import { LABEL_TENANT, LABEL_WORKSPACE } from "./workspace-labels.ts";

/** How many workspaces `tenant` has now. */
export async function countWorkspaces(client: ContainerClient, tenant: string): Promise<number> {
  const owned = await client.listVolumes(`${LABEL_TENANT}=${tenant}`);
  return owned.filter((v) => v.labels[LABEL_WORKSPACE] !== undefined).length;
}

/** quota_exceeded when `tenant` already has `max` workspaces. */
export async function assertRoomForWorkspace(
  client: ContainerClient,
  tenant: string,
  max: number,
): Promise<void> {
  const count = await countWorkspaces(client, tenant);
  if (count < max) return;
  throw new AirlockError(
    "quota_exceeded",
    `tenant ${tenant} already has ${count} workspaces, the most allowed (${max}); delete one first`,
    { details: { limit: "workspaces per tenant", max }, retryAfterSeconds: 60 },
  );
}
