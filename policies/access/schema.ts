// The operator's policy file (AIRLOCK_POLICY_FILE, JSON or YAML) as a zod
// schema, and the compiled form the gateway enforces: keys with their scopes and
// profiles, rate limits, per-tenant quotas and approval checkpoints.
import { z } from "zod";
import {
  type CompiledNetwork,
  compileNetwork,
  EgressNetworkSchema,
  NETWORK_NAME,
} from "../egress.ts";

export const SCOPES = [
  "exec",
  "files.read",
  "files.write",
  "workspaces",
  "network",
  "admin",
] as const;
export const Scope = z.enum(SCOPES);
export type Scope = z.infer<typeof Scope>;

/** What keys from AIRLOCK_API_KEYS / AIRLOCK_API_KEYS_FILE get: everything but admin and network. */
export const DEFAULT_SCOPES: readonly Scope[] = ["exec", "files.read", "files.write", "workspaces"];

export const TENANT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const positiveInt = z.number().int().positive();
const positive = z.number().positive();

const RateLimit = z
  .strictObject({ perMinute: positiveInt.optional(), perHour: positiveInt.optional() })
  .refine((r) => r.perMinute !== undefined || r.perHour !== undefined, {
    message: "set perMinute, perHour or both",
  });
export type RateLimit = z.infer<typeof RateLimit>;

const RateLimits = z.partialRecord(Scope, RateLimit);
export type RateLimits = z.infer<typeof RateLimits>;

const PolicyKey = z.strictObject({
  /** A name for logs and the audit trail; defaults to the first 8 hex digits of the hash. */
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "must be 1-64 letters, digits, or _ . : -")
    .optional(),
  /** The sha256 of the key, never the key itself. */
  hash: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:<64 lower-case hex digits>" of the key'),
  scopes: z.array(Scope).min(1, "grant at least one scope"),
  /** Profiles the key may use; "*" is every profile (runc ones excepted when requireGvisor). */
  profiles: z.array(z.string().min(1)).min(1).default(["*"]),
  rateLimits: RateLimits.default({}),
  /** Named networks (the file's `networks`) the key's jobs may ask for. */
  networks: z.array(z.string().regex(NETWORK_NAME)).default([]),
});

export const Quotas = z.strictObject({
  concurrentJobs: positiveInt.optional(),
  /** CPU time all of the tenant's jobs may use in any sliding hour (the "cost" budget). */
  cpuSecondsPerHour: positive.optional(),
  /** Wall-clock container time in any sliding hour. */
  containerSecondsPerHour: positive.optional(),
  /** The longest timeout one job may ask for; a job that asks for none gets at most this. */
  maxJobSeconds: positive.optional(),
  maxMemoryMb: positiveInt.optional(),
  maxCpus: positive.optional(),
  maxWorkspaces: z.number().int().nonnegative().optional(),
  maxWorkspaceBytes: positiveInt.optional(),
});
export type Quotas = z.infer<typeof Quotas>;

export const ApprovalRules = z.strictObject({
  /** Any job on a profile whose network is not "none", or that asks for egress networks. */
  network: z.boolean().default(false),
  /** Any job whose timeout is above this many seconds. */
  jobsOverSeconds: positive.optional(),
  /** The first job of each key on each profile. */
  firstUseOfProfile: z.boolean().default(false),
  /** Every Nth job of a key. */
  everyNOperations: positiveInt.optional(),
});
export type ApprovalRules = z.infer<typeof ApprovalRules>;

const Tenant = z.strictObject({
  keys: z.array(PolicyKey).min(1, "a tenant needs at least one key"),
  /** Defaults for the tenant's keys; a key's own entry for a scope wins. */
  rateLimits: RateLimits.default({}),
  quotas: Quotas.default({}),
  requireApproval: ApprovalRules.default({ network: false, firstUseOfProfile: false }),
});

export const PolicyFile = z
  .strictObject({
    /** Profiles on runc (not gVisor) need to be named in a key's profiles, "*" does not grant them. */
    requireGvisor: z.boolean().default(false),
    approvalTtlSeconds: positiveInt.max(7 * 24 * 3600).default(3600),
    /** Named egress networks (policies/egress.ts); keys are granted them by name. */
    networks: z
      .record(
        z.string().regex(NETWORK_NAME, "network names are 1-63 letters, digits, _ . -"),
        EgressNetworkSchema,
      )
      .default({}),
    tenants: z
      .record(z.string().regex(TENANT_NAME, "tenant names are 1-64 letters, digits, _ . -"), Tenant)
      .refine((t) => Object.keys(t).length > 0, "name at least one tenant"),
  })
  .superRefine((file, ctx) => {
    const seen = new Map<string, string>();
    for (const [tenant, t] of Object.entries(file.tenants)) {
      t.keys.forEach((k, i) => {
        k.networks.forEach((n, j) => {
          if (file.networks[n] === undefined) {
            ctx.addIssue({
              code: "custom",
              path: ["tenants", tenant, "keys", i, "networks", j],
              message: `names network ${n}, which the file's networks do not define`,
            });
          }
        });
        const prior = seen.get(k.hash);
        if (prior !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["tenants", tenant, "keys", i, "hash"],
            message: `the same key is already listed at ${prior}`,
          });
        }
        seen.set(k.hash, `tenants.${tenant}.keys.${i}`);
      });
    }
  });
export type PolicyFile = z.infer<typeof PolicyFile>;

/** One key as the gateway enforces it. */
export interface KeyGrant {
  tenant: string;
  /** Safe to log: the policy's id, or the first 8 hex digits of the hash. */
  keyId: string;
  /** sha256 of the key. */
  hash: Buffer;
  scopes: ReadonlySet<Scope>;
  profiles: readonly string[];
  /** Tenant defaults merged with the key's own entries. */
  rateLimits: RateLimits;
  /** Egress networks its jobs may ask for. */
  networks: readonly string[];
}

export interface TenantPolicy {
  quotas: Quotas;
  requireApproval: ApprovalRules;
}

export interface Policy {
  /** Where it came from: a file path, or "environment". */
  source: string;
  requireGvisor: boolean;
  approvalTtlMs: number;
  keys: readonly KeyGrant[];
  tenants: ReadonlyMap<string, TenantPolicy>;
  /** The named egress networks, compiled (their injected secrets read from the environment). */
  networks: ReadonlyMap<string, CompiledNetwork>;
}

const NO_RULES: ApprovalRules = { network: false, firstUseOfProfile: false };

export function compilePolicy(
  file: PolicyFile,
  source: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Policy {
  const keys: KeyGrant[] = [];
  const tenants = new Map<string, TenantPolicy>();
  for (const [tenant, t] of Object.entries(file.tenants)) {
    tenants.set(tenant, { quotas: t.quotas, requireApproval: t.requireApproval });
    for (const k of t.keys) {
      const hash = Buffer.from(k.hash.slice("sha256:".length), "hex");
      keys.push({
        tenant,
        keyId: k.id ?? hash.toString("hex").slice(0, 8),
        hash,
        scopes: new Set(k.scopes),
        profiles: k.profiles,
        rateLimits: { ...t.rateLimits, ...k.rateLimits },
        networks: k.networks,
      });
    }
  }
  return {
    source,
    requireGvisor: file.requireGvisor,
    approvalTtlMs: file.approvalTtlSeconds * 1000,
    keys,
    tenants,
    networks: new Map(
      Object.entries(file.networks).map(([name, net]) => [name, compileNetwork(name, net, env)]),
    ),
  };
}

/**
 * The policy of a gateway configured without a policy file: each key gets
 * DEFAULT_SCOPES and every profile, no quotas or approvals; `admin` is added
 * for the keys in `adminHashes` (the generated loopback key).
 */
export function environmentPolicy(
  keys: readonly { tenant: string; hash: Buffer }[],
  adminHashes: readonly Buffer[] = [],
): Policy {
  const tenants = new Map<string, TenantPolicy>();
  const grants = keys.map((k) => {
    tenants.set(k.tenant, { quotas: {}, requireApproval: NO_RULES });
    const admin = adminHashes.some((h) => h.equals(k.hash));
    return {
      tenant: k.tenant,
      keyId: k.hash.toString("hex").slice(0, 8),
      hash: k.hash,
      scopes: new Set<Scope>(admin ? [...DEFAULT_SCOPES, "admin"] : DEFAULT_SCOPES),
      profiles: ["*"],
      rateLimits: {},
      networks: [],
    };
  });
  return {
    source: "environment",
    requireGvisor: false,
    approvalTtlMs: 3600_000,
    keys: grants,
    tenants,
    networks: new Map(),
  };
}

export function tenantPolicy(policy: Policy, tenant: string): TenantPolicy {
  return policy.tenants.get(tenant) ?? { quotas: {}, requireApproval: NO_RULES };
}
