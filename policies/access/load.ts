// Reads the policy file (JSON, or YAML by extension), validates it with zod and
// compiles it; the first problem is reported with the file and the field. A
// PolicyHolder keeps the policy in force and reloads it on demand: a bad file
// keeps the old policy and says why.
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { compilePolicy, type Policy, PolicyFile } from "./schema.ts";

export class PolicyError extends Error {
  override name = "PolicyError";
}

export function parsePolicy(path: string, text: string): Policy {
  let raw: unknown;
  const yaml = [".yaml", ".yml"].includes(extname(path).toLowerCase());
  try {
    raw = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (cause) {
    throw new PolicyError(
      `${path}: not valid ${yaml ? "YAML" : "JSON"} (${(cause as Error).message})`,
      { cause },
    );
  }
  const parsed = PolicyFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? "(file)" : issue.path.join(".");
    throw new PolicyError(`${path}: ${field}: ${issue?.message ?? "invalid"}`);
  }
  try {
    return compilePolicy(parsed.data, path);
  } catch (cause) {
    // An injected secret the environment lacks.
    throw new PolicyError(`${path}: ${(cause as Error).message}`, { cause });
  }
}

export function loadPolicyFile(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new PolicyError(`${path}: cannot be read (${(cause as Error).message})`, { cause });
  }
  return parsePolicy(path, text);
}

export type ReloadOutcome =
  | { ok: true; source: string; keys: number; tenants: number }
  | { ok: false; source: string; error: string };

export class PolicyHolder {
  private policy: Policy;
  private readonly load: (() => Policy) | undefined;
  private readonly listeners = new Set<(policy: Policy) => void>();

  /** `load` re-reads the source; without it (keys from the environment) reload keeps the policy. */
  constructor(initial: Policy, load?: () => Policy) {
    this.policy = initial;
    this.load = load;
  }

  static fromFile(path: string): PolicyHolder {
    return new PolicyHolder(loadPolicyFile(path), () => loadPolicyFile(path));
  }

  current(): Policy {
    return this.policy;
  }

  onChange(listener: (policy: Policy) => void): void {
    this.listeners.add(listener);
  }

  reload(): ReloadOutcome {
    const source = this.policy.source;
    if (this.load === undefined) {
      return { ok: false, source, error: "no AIRLOCK_POLICY_FILE is set: nothing to reload" };
    }
    let next: Policy;
    try {
      next = this.load();
    } catch (err) {
      return { ok: false, source, error: (err as Error).message };
    }
    this.policy = next;
    for (const listener of this.listeners) listener(next);
    return { ok: true, source, keys: next.keys.length, tenants: next.tenants.size };
  }
}
