// The per-tenant limits on how many workspaces exist: the gateway's own
// (AIRLOCK_WORKSPACES_PER_TENANT) and the policy's (quotas.maxWorkspaces),
// counted and refused by this one piece of code. The count is the engine's
// own (the tenant's labelled workspace volumes), so every gateway on the
// engine counts alike and a restarted one finds the same number.
//
// Counting and then creating is a race: ten concurrent creates against a
// limit of 2 all counted 0 and made 10. So a create holds its tenant's
// reservation from the count until its volume exists (reserve()), and the
// next create of that tenant counts that volume. Creates of one tenant go
// one at a time through that step (a list and a volume create, ~20 ms); other
// tenants' are not held.
//
// What holds where: the reservation is this process's. Several gateways on one
// engine each hold their own, so two of them can pass the same count at the
// same moment (a tenant can end up with one workspace too many for each other
// gateway creating at that instant). WorkspaceReservations is the seam for the
// Replicas issue: a shared implementation (PostgreSQL) takes a per-tenant lock
// there (an advisory lock on the tenant, or a row lock on its counter) around
// the same count-and-create, and the store takes it in place of this one.
import { AirlockError } from "../core/errors.ts";
import type { ContainerClient } from "./docker.ts";
import { LABEL_TENANT, LABEL_WORKSPACE } from "./workspace-labels.ts";
import { WorkspaceLocks } from "./workspace-lock.ts";

/** One limit on a tenant's workspace count, named as the error names it. */
export interface WorkspaceLimit {
  /** `workspaces per tenant` (the gateway's setting) or `maxWorkspaces` (the policy's quota). */
  name: string;
  max: number;
}

/** The gateway's own limit, AIRLOCK_WORKSPACES_PER_TENANT. */
export function gatewayLimit(max: number): WorkspaceLimit {
  return { name: "workspaces per tenant", max };
}

/** How many workspaces `tenant` has now. */
export async function countWorkspaces(client: ContainerClient, tenant: string): Promise<number> {
  const owned = await client.listVolumes(`${LABEL_TENANT}=${tenant}`);
  return owned.filter((v) => v.labels[LABEL_WORKSPACE] !== undefined).length;
}

/** quota_exceeded naming the first limit that `count` workspaces have reached. */
export function assertRoom(tenant: string, count: number, limits: readonly WorkspaceLimit[]): void {
  const reached = limits.find((l) => count >= l.max);
  if (reached === undefined) return;
  throw new AirlockError(
    "quota_exceeded",
    `quota ${reached.name} reached: tenant ${tenant} has ${count} of ${reached.max} workspaces; delete one first`,
    {
      details: { limit: reached.name, max: reached.max, used: count },
      retryAfterSeconds: 60,
    },
  );
}

/**
 * quota_exceeded when `tenant` already has as many workspaces as a limit
 * allows. Counts without reserving: an early refusal (admission's), which
 * reserve() checks again when the workspace is made.
 */
export async function assertRoomForWorkspace(
  client: Pick<ContainerClient, "listVolumes">,
  tenant: string,
  limits: readonly WorkspaceLimit[],
): Promise<void> {
  if (limits.length === 0) return;
  assertRoom(tenant, await countWorkspaces(client as ContainerClient, tenant), limits);
}

/** Counts a tenant's workspaces and makes a new one as one step, so that concurrent creates count each other. */
export interface WorkspaceReservations {
  /**
   * Runs `create` (which makes the tenant's new workspace volume) once the
   * tenant's count is under every limit, holding the tenant's reservation
   * until it settles; quota_exceeded, and `create` never runs, otherwise.
   */
  reserve<T>(
    tenant: string,
    limits: readonly WorkspaceLimit[],
    create: () => Promise<T>,
  ): Promise<T>;
}

/** This process's reservations: one count-and-create at a time per tenant. */
export class LocalWorkspaceReservations implements WorkspaceReservations {
  private readonly client: ContainerClient;
  private readonly tenants = new WorkspaceLocks();

  constructor(client: ContainerClient) {
    this.client = client;
  }

  reserve<T>(
    tenant: string,
    limits: readonly WorkspaceLimit[],
    create: () => Promise<T>,
  ): Promise<T> {
    return this.tenants.run(tenant, async () => {
      assertRoom(tenant, await countWorkspaces(this.client, tenant), limits);
      return create();
    });
  }
}
