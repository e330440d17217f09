// Which of a tenant's approval rules (requireApproval) a job meets, and the
// memory two of them need: the profiles a key has had a job approved on
// (firstUseOfProfile) and how many jobs each key has asked for (everyNOperations).
// In memory: a restarted gateway asks again.
import type { LoadedProfile } from "../../core/profile.ts";
import type { ApprovalRules } from "./schema.ts";

export class Checkpoints {
  /** keyId\0profile pairs that passed a first-use checkpoint. */
  private readonly usedProfiles = new Set<string>();
  /** Jobs asked for per key, for everyNOperations. */
  private readonly jobCounts = new Map<string, number>();

  /** The rules this job meets (empty: no human needed). Counts the job for everyNOperations. */
  reasons(
    keyId: string,
    rules: ApprovalRules,
    profile: Pick<LoadedProfile, "name" | "network">,
    timeoutMs: number,
    /** The egress networks the job asks for: any is a network, as a networked profile is. */
    networks: readonly string[] = [],
  ): string[] {
    const reasons: string[] = [];
    if (rules.network && (profile.network !== "none" || networks.length > 0))
      reasons.push("network");
    if (rules.jobsOverSeconds !== undefined && timeoutMs > rules.jobsOverSeconds * 1000) {
      reasons.push("jobsOverSeconds");
    }
    if (rules.firstUseOfProfile && !this.usedProfiles.has(`${keyId}\0${profile.name}`)) {
      reasons.push("firstUseOfProfile");
    }
    if (rules.everyNOperations !== undefined) {
      const n = (this.jobCounts.get(keyId) ?? 0) + 1;
      this.jobCounts.set(keyId, n);
      if (n % rules.everyNOperations === 0) reasons.push("everyNOperations");
    }
    return reasons;
  }

  /** A human approved a job of this key on this profile: its first use is behind it. */
  approved(keyId: string, profile: string): void {
    this.usedProfiles.add(`${keyId}\0${profile}`);
  }
}
