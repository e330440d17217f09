// A workspace's size cap (AIRLOCK_WORKSPACE_MAX_BYTES, or the policy's smaller
// maxWorkspaceBytes for the tenant) and the refusal of a write that would take
// a workspace past it. "Size" is what a listing of /workspace adds up: the
// apparent sizes of its regular files, each hard link counted at its file's
// size (executor/listing.ts). A write is refused when it would grow the
// workspace past its cap; one that leaves it no bigger (replacing a file by a
// smaller one, on a workspace already over) goes through, so that a full
// workspace can always be brought back under.
//
// The status is 413 payload_too_large, not 429 quota_exceeded: waiting never
// makes room (only deleting files does), so a Retry-After would send clients
// into a retry loop that cannot succeed, and 413 is the table's code for "too
// many bytes for what this request writes into" (a request body past
// AIRLOCK_MAX_BODY_BYTES is the other one). The message and details name the
// cap, its value and the setting it comes from.
import { AirlockError } from "../core/errors.ts";

export interface SizeCap {
  bytes: number;
  /** The setting it comes from, as the refusal names it. */
  setting: "AIRLOCK_WORKSPACE_MAX_BYTES" | "maxWorkspaceBytes";
}

/** The smaller of the gateway's cap and the tenant's own, named after where it comes from. */
export function sizeCapOf(gatewayBytes: number, tenantBytes: number | undefined): SizeCap {
  return tenantBytes !== undefined && tenantBytes < gatewayBytes
    ? { bytes: tenantBytes, setting: "maxWorkspaceBytes" }
    : { bytes: gatewayBytes, setting: "AIRLOCK_WORKSPACE_MAX_BYTES" };
}

/** payload_too_large unless a workspace of `before` bytes may become `after` bytes under `cap`. */
export function assertWithinCap(
  /** What the message calls it: "workspace ws_…", "the new workspace". */
  workspace: string,
  cap: SizeCap,
  before: number,
  after: number,
): void {
  if (after <= cap.bytes || after <= before) return;
  throw new AirlockError(
    "payload_too_large",
    `this write would take ${workspace} to ${after} bytes, past its size cap of ${cap.bytes} bytes (${cap.setting}); delete files first`,
    { details: { limit: cap.setting, max: cap.bytes, bytes: after } },
  );
}
