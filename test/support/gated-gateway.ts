// A real gateway whose policy holds for an admin's approval every job asking
// for more than 20 s, for the adapters' approval tests (CLI, MCP, Piston).
// Tenant names are random: a stop here touches no other test file's gateway.
import { randomUUID } from "node:crypto";
import { keyHash, startGateway, type TestGateway } from "./gateway.ts";

export interface GatedGateway {
  gw: TestGateway;
  /** Of the gated tenant: exec, workspaces, files.read, files.write. */
  agentKey: string;
  adminKey: string;
  /** An admin's decision; resolves to the approval's status after it. */
  decide(id: string, action: "approve" | "deny"): Promise<string>;
}

/** A job that asks for more than the policy's 20 s, so it is held. */
export const HELD_TIMEOUT_MS = 30_000;

export async function startGatedGateway(): Promise<GatedGateway> {
  const suffix = randomUUID().slice(0, 8);
  const agentKey = `agent-key-${randomUUID()}`;
  const adminKey = `admin-key-${randomUUID()}`;
  const policy = {
    tenants: {
      [`agent-${suffix}`]: {
        requireApproval: { jobsOverSeconds: 20 },
        keys: [
          {
            id: "agent",
            hash: keyHash(agentKey),
            scopes: ["exec", "workspaces", "files.read", "files.write"],
          },
        ],
      },
      [`ops-${suffix}`]: { keys: [{ id: "ops", hash: keyHash(adminKey), scopes: ["admin"] }] },
    },
  };
  const gw = await startGateway({ concurrency: 2, key: agentKey, policy });
  return {
    gw,
    agentKey,
    adminKey,
    async decide(id, action) {
      const res = await gw.call(adminKey, "POST", `/v1/approvals/${id}/${action}`);
      if (res.status !== 200) throw new Error(`${action} ${id}: HTTP ${res.status}`);
      return ((await res.json()) as { status: string }).status;
    },
  };
}
