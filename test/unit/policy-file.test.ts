// Policy files: JSON and YAML parse into the compiled policy; every mistake is
// reported with the file and the field; scopes and profile grants decide access.
import { describe, expect, it } from "vitest";
import { hashKey } from "../../api/config.ts";
import { PolicyError, PolicyHolder, parsePolicy } from "../../policies/access/load.ts";
import { environmentPolicy } from "../../policies/access/schema.ts";
import { missingScopes, profileRefusal, profileScopes } from "../../policies/access/scopes.ts";

const HASH = `sha256:${hashKey("alpha-key-0123456789").toString("hex")}`;
const HASH2 = `sha256:${hashKey("beta-key-0123456789").toString("hex")}`;

const YAML = `
requireGvisor: true
approvalTtlSeconds: 60
tenants:
  alpha:
    rateLimits:
      exec: { perMinute: 5 }
    quotas:
      concurrentJobs: 2
      cpuSecondsPerHour: 30
    requireApproval:
      network: true
    keys:
      - id: alpha-ci
        hash: ${HASH}
        scopes: [exec, files.read]
        profiles: [shell, python]
        rateLimits:
          exec: { perMinute: 2, perHour: 10 }
`;

describe("policy files", () => {
  it("parses YAML into keys, tenants and merged rate limits", () => {
    const policy = parsePolicy("/etc/airlock/policy.yaml", YAML);
    expect(policy.requireGvisor).toBe(true);
    expect(policy.approvalTtlMs).toBe(60_000);
    const key = policy.keys[0];
    expect(key?.tenant).toBe("alpha");
    expect(key?.keyId).toBe("alpha-ci");
    expect(key?.hash.equals(hashKey("alpha-key-0123456789"))).toBe(true);
    expect([...(key?.scopes ?? [])]).toEqual(["exec", "files.read"]);
    // The key's own entry replaces the tenant's for the same scope.
    expect(key?.rateLimits.exec).toEqual({ perMinute: 2, perHour: 10 });
    expect(policy.tenants.get("alpha")?.quotas).toEqual({
      concurrentJobs: 2,
      cpuSecondsPerHour: 30,
    });
    expect(policy.tenants.get("alpha")?.requireApproval.network).toBe(true);
  });

  it("parses JSON, with defaults filled in", () => {
    const policy = parsePolicy(
      "p.json",
      JSON.stringify({ tenants: { b: { keys: [{ hash: HASH2, scopes: ["exec"] }] } } }),
    );
    expect(policy.keys[0]?.profiles).toEqual(["*"]);
    expect(policy.keys[0]?.keyId).toBe(HASH2.slice(7, 15));
    expect(policy.requireGvisor).toBe(false);
  });

  it.each([
    [{ tenants: {} }, "p.json: tenants: name at least one tenant"],
    [
      { tenants: { a: { keys: [{ hash: "plain-key", scopes: ["exec"] }] } } },
      "p.json: tenants.a.keys.0.hash:",
    ],
    [
      { tenants: { a: { keys: [{ hash: HASH, scopes: ["root"] }] } } },
      "p.json: tenants.a.keys.0.scopes.0:",
    ],
    [
      { tenants: { a: { keys: [{ hash: HASH, scopes: [] }] } } },
      "p.json: tenants.a.keys.0.scopes: grant at least one scope",
    ],
    [
      {
        tenants: {
          a: { keys: [{ hash: HASH, scopes: ["exec"] }], quotas: { cpuSecondsPerHour: -1 } },
        },
      },
      "p.json: tenants.a.quotas.cpuSecondsPerHour:",
    ],
    [
      { tenants: { a: { keys: [{ hash: HASH, scopes: ["exec"], rateLimits: { exec: {} } }] } } },
      "p.json: tenants.a.keys.0.rateLimits.exec: set perMinute, perHour or both",
    ],
    [
      {
        tenants: {
          a: { keys: [{ hash: HASH, scopes: ["exec"] }] },
          b: { keys: [{ hash: HASH, scopes: ["exec"] }] },
        },
      },
      "p.json: tenants.b.keys.0.hash: the same key is already listed at tenants.a.keys.0",
    ],
    [{ tenants: { a: { keys: [{ hash: HASH, scopes: ["exec"] }] } }, extra: 1 }, "p.json: (file):"],
  ])("rejects %j naming the file and field", (raw, message) => {
    expect(() => parsePolicy("p.json", JSON.stringify(raw))).toThrowError(PolicyError);
    expect(() => parsePolicy("p.json", JSON.stringify(raw))).toThrowError(message);
  });

  it("rejects a file that is not JSON or YAML", () => {
    expect(() => parsePolicy("p.json", "{nope")).toThrowError(/^p.json: not valid JSON/);
    expect(() => parsePolicy("p.yml", "a: [")).toThrowError(/^p.yml: not valid YAML/);
  });

  it("reload keeps the old policy when the new file is bad, and says why", () => {
    let text = JSON.stringify({ tenants: { a: { keys: [{ hash: HASH, scopes: ["exec"] }] } } });
    const holder = new PolicyHolder(parsePolicy("p.json", text), () => parsePolicy("p.json", text));
    text = JSON.stringify({
      tenants: { a: { keys: [{ hash: HASH, scopes: ["exec", "admin"] }] } },
    });
    expect(holder.reload()).toMatchObject({ ok: true, keys: 1, tenants: 1 });
    expect(holder.current().keys[0]?.scopes.has("admin")).toBe(true);
    text = "{broken";
    const outcome = holder.reload();
    expect(outcome.ok).toBe(false);
    expect(outcome).toMatchObject({ error: expect.stringContaining("p.json: not valid JSON") });
    expect(holder.current().keys[0]?.scopes.has("admin")).toBe(true);
  });

  it("gives keys from the environment every scope but admin and network; the generated key admin too", () => {
    const a = { tenant: "a", hash: hashKey("a-key-0123456789") };
    const g = { tenant: "default", hash: hashKey("generated-0123456789") };
    const policy = environmentPolicy([a, g], [g.hash]);
    expect([...(policy.keys[0]?.scopes ?? [])].sort()).toEqual([
      "exec",
      "files.read",
      "files.write",
      "workspaces",
    ]);
    expect(policy.keys[1]?.scopes.has("admin")).toBe(true);
    expect(policy.keys[1]?.scopes.has("network")).toBe(false);
  });
});

describe("scopes and profiles", () => {
  const shell = { name: "shell", runtime: "runc" as const, network: "none" };
  const gshell = { name: "shell-gvisor", runtime: "runsc" as const, network: "none" };
  const net = { name: "web", runtime: "runsc" as const, network: "bridge" };

  it("a networked profile needs the network scope", () => {
    expect(profileScopes(shell)).toEqual([]);
    expect(profileScopes(net)).toEqual(["network"]);
    const key = { scopes: new Set(["exec"] as const), profiles: ["*"] };
    expect(profileRefusal({ requireGvisor: false }, key, net)).toMatch(/lacks scope network/);
    const netKey = { scopes: new Set(["exec", "network"] as const), profiles: ["*"] };
    expect(profileRefusal({ requireGvisor: false }, netKey, net)).toBeUndefined();
  });

  it("names the missing scopes", () => {
    expect(missingScopes({ scopes: new Set(["exec"]) }, ["exec", "workspaces", "exec"])).toEqual([
      "workspaces",
    ]);
  });

  it("a key uses only the profiles it lists; with requireGvisor, runc profiles must be named", () => {
    const listed = { scopes: new Set(["exec"] as const), profiles: ["shell-gvisor"] };
    expect(profileRefusal({ requireGvisor: false }, listed, shell)).toMatch(
      /may not use profile shell/,
    );
    expect(profileRefusal({ requireGvisor: false }, listed, gshell)).toBeUndefined();
    const any = { scopes: new Set(["exec"] as const), profiles: ["*"] };
    expect(profileRefusal({ requireGvisor: true }, any, shell)).toMatch(/without gVisor/);
    expect(profileRefusal({ requireGvisor: true }, any, gshell)).toBeUndefined();
    const named = { scopes: new Set(["exec"] as const), profiles: ["*", "shell"] };
    expect(profileRefusal({ requireGvisor: true }, named, shell)).toBeUndefined();
  });
});

describe("configuration", () => {
  it("takes AIRLOCK_POLICY_FILE as the only source of keys", async () => {
    const { loadConfig } = await import("../../api/config.ts");
    const config = loadConfig({ AIRLOCK_POLICY_FILE: "/etc/airlock/policy.yaml" });
    expect(config.policyFile).toBe("/etc/airlock/policy.yaml");
    expect(config.generatedKey).toBeUndefined();
    expect(config.host).toBe("0.0.0.0");
    expect(config.auditFile).toBe("-");
    expect(() =>
      loadConfig({ AIRLOCK_POLICY_FILE: "p.yaml", AIRLOCK_API_KEYS: "a:0123456789abcdef" }),
    ).toThrowError(/AIRLOCK_API_KEYS and AIRLOCK_POLICY_FILE are both set/);
    expect(() => loadConfig({ AIRLOCK_AUDIT_MEMORY: "-1" })).toThrowError(/AIRLOCK_AUDIT_MEMORY/);
  });
});
