// Which scopes an operation needs, and whether a key may use a profile. Pure
// functions: admission (api/admission/admit.ts) turns a refusal into 403 forbidden naming it.
import type { LoadedProfile } from "../../core/profile.ts";
import type { KeyGrant, Policy, Scope } from "./schema.ts";

/** The scopes a job on `profile` needs on top of the operation's own. */
export function profileScopes(profile: Pick<LoadedProfile, "network">): Scope[] {
  return profile.network === "none" ? [] : ["network"];
}

export function missingScopes(key: Pick<KeyGrant, "scopes">, needed: readonly Scope[]): Scope[] {
  return [...new Set(needed)].filter((s) => !key.scopes.has(s));
}

/**
 * Why `key` may not use `profile`, or undefined when it may. With
 * requireGvisor, a runc profile must be named explicitly: "*" does not grant it.
 */
export function profileRefusal(
  policy: Pick<Policy, "requireGvisor">,
  key: Pick<KeyGrant, "profiles" | "scopes">,
  profile: Pick<LoadedProfile, "name" | "runtime" | "network">,
): string | undefined {
  const named = key.profiles.includes(profile.name);
  if (!named && !key.profiles.includes("*")) {
    return `this key may not use profile ${profile.name}`;
  }
  if (policy.requireGvisor && profile.runtime !== "runsc" && !named) {
    return `profile ${profile.name} runs without gVisor and the policy requires gVisor unless the key names the profile`;
  }
  const missing = missingScopes(key, profileScopes(profile));
  if (missing.length > 0) {
    return `profile ${profile.name} has network ${profile.network}: the key lacks scope ${missing.join(", ")}`;
  }
  return undefined;
}

/**
 * The scopes a read of a held job's approval needs and counts against: the
 * job's own for a key of its tenant that holds them all; else `admin` when
 * the key holds it (an operator's, of any tenant); else the job's, so that
 * the refusal names what the key lacks.
 */
export function approvalReadScopes(
  key: Pick<KeyGrant, "scopes" | "tenant">,
  approval: { tenant: string; scopes: readonly Scope[] },
): Scope[] {
  const own = key.tenant === approval.tenant && missingScopes(key, approval.scopes).length === 0;
  if (own || !key.scopes.has("admin")) return [...approval.scopes];
  return ["admin"];
}
