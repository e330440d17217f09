// The egress decision (policies/egress.ts), pure: allow entries, ports, the
// always-denied ranges and their one exception, checked without a packet.
import { describe, expect, it } from "vitest";
import { Checkpoints } from "../../policies/access/checkpoints.ts";
import { parsePolicy } from "../../policies/access/load.ts";
import { compileNetwork, egressRules, parseAllowEntry } from "../../policies/egress.ts";

const net = (allow: string[], resolve: Record<string, string> = {}) =>
  compileNetwork("n", { allow, resolve, inject: [] }, {});
const rules = (allow: string[], resolve: Record<string, string> = {}, own: string[] = []) =>
  egressRules([net(allow, resolve)], own);

describe("allow entries", () => {
  it.each([
    ["pypi.org", { kind: "host", host: "pypi.org", ports: [80, 443] }],
    ["PyPI.org:8443", { kind: "host", host: "pypi.org", ports: [8443] }],
    ["*.pythonhosted.org", { kind: "domain", suffix: ".pythonhosted.org", ports: [80, 443] }],
    ["10.1.0.0/16", { kind: "cidr", bits: 16, ports: "any" }],
    ["10.1.0.0/16:5432", { kind: "cidr", bits: 16, ports: [5432] }],
    ["203.0.113.9:443", { kind: "cidr", bits: 32, ports: [443] }],
    ["fd00::/8", { kind: "cidr", bits: 8, ports: "any" }],
    ["[fd00::/8]:443", { kind: "cidr", bits: 8, ports: [443] }],
  ])("%s", (text, expected) => {
    expect(parseAllowEntry(text)).toMatchObject(expected);
  });

  it.each([
    ["under_score.org", "is not host"],
    ["a.org:0", "has port 0"],
    ["a.org:70000", "has port 70000"],
    ["10.0.0.0/33", "has prefix /33"],
    ["*.*.org", "is not host"],
  ])("refuses %s", (text, message) => {
    expect(parseAllowEntry(text)).toContain(message);
  });
});

describe("decisions", () => {
  const r = rules(["pypi.org", "*.example.com", "api.test:8443", "10.9.0.0/16"], {
    "api.test": "172.20.0.5",
  });

  it("names on 80 and 443 by default; another port is named in the reason", () => {
    expect(r.check("pypi.org", 443)).toMatchObject({ decision: "allowed", network: "n" });
    expect(r.check("pypi.org", 22)).toEqual({
      decision: "denied",
      reason: "network n allows pypi.org on port 80, 443, not 22",
    });
    expect(r.check("evil.org", 443).reason).toBe("network n does not allow evil.org");
  });

  it("*.domain matches names under it, not the domain itself nor look-alikes", () => {
    expect(r.check("a.b.example.com", 443).decision).toBe("allowed");
    expect(r.check("example.com", 443).decision).toBe("denied");
    expect(r.check("badexample.com", 443).decision).toBe("denied");
  });

  it("the dialled address is checked: loopback, link-local, private, the host's own", () => {
    const own = rules(["*.example.com"], {}, ["203.0.113.7"]);
    expect(own.check("a.example.com", 443, "93.184.216.34").decision).toBe("allowed");
    for (const [ip, what] of [
      ["127.0.0.1", "loopback"],
      ["::ffff:127.0.0.1", "loopback"],
      ["169.254.169.254", "link-local (cloud metadata)"],
      ["10.0.0.1", "private"],
      ["192.168.1.1", "private"],
      ["172.17.0.1", "private"],
      ["100.64.0.1", "shared"],
      ["224.0.0.1", "multicast"],
      ["::1", "loopback"],
      ["fd12::1", "private"],
      ["fe80::1", "link-local"],
    ]) {
      expect(own.check("a.example.com", 443, ip)).toEqual({
        decision: "denied",
        reason: expect.stringContaining(what as string),
      });
    }
    expect(own.check("a.example.com", 443, "203.0.113.7").reason).toContain("host's own address");
  });

  it("unless the network names that very address: a resolve pin, or a CIDR inside the range", () => {
    expect(r.check("api.test", 8443, "172.20.0.5")).toMatchObject({ decision: "allowed" });
    expect(r.check("api.test", 8443, "172.20.0.6").reason).toBe(
      "private address 172.20.0.6 is always denied",
    );
    expect(r.check("10.9.3.4", 5432)).toMatchObject({ decision: "allowed" });
    expect(r.check("db.internal", 5432, "10.9.3.4")).toMatchObject({ decision: "allowed" });
    const wide = rules(["0.0.0.0/0"]);
    expect(wide.check("169.254.169.254", 80).reason).toContain("link-local");
    expect(wide.check("10.0.0.1", 80).reason).toContain("private");
    expect(wide.check("8.8.8.8", 53).decision).toBe("allowed");
  });

  it("several networks: the first that allows wins", () => {
    const both = egressRules([
      net(["a.org"]),
      compileNetwork("m", { allow: ["b.org"], resolve: {}, inject: [] }, {}),
    ]);
    expect(both.check("b.org", 443)).toMatchObject({ decision: "allowed", network: "m" });
    expect(both.networks).toEqual(["n", "m"]);
  });
});

describe("approval checkpoints", () => {
  it("requireApproval.network holds a job that asks for egress networks too", () => {
    const cp = new Checkpoints();
    const rules = { network: true, firstUseOfProfile: false };
    const shell = { name: "shell", network: "none" };
    expect(cp.reasons("k", rules, shell, 1000)).toEqual([]);
    expect(cp.reasons("k", rules, shell, 1000, ["pypi"])).toEqual(["network"]);
  });
});

describe("the policy file", () => {
  const key = { hash: `sha256:${"a".repeat(64)}`, scopes: ["exec"] };
  it("grants keys networks it defines, with secrets from the environment", () => {
    process.env["AIRLOCK_UNIT_SECRET"] = "s";
    const policy = parsePolicy(
      "p.json",
      JSON.stringify({
        networks: {
          api: {
            allow: ["api.test"],
            inject: [
              { host: "api.test", header: "Authorization", value: "env:AIRLOCK_UNIT_SECRET" },
            ],
          },
        },
        tenants: { t: { keys: [{ ...key, networks: ["api"] }] } },
      }),
    );
    expect(policy.keys[0]?.networks).toEqual(["api"]);
    const api = policy.networks.get("api");
    if (api === undefined) throw new Error("no network api");
    const rules = egressRules([api]);
    expect(rules.inject("API.test")).toEqual([{ header: "Authorization", value: "s" }]);
  });

  it.each([
    [{ networks: {}, keys: ["nope"] }, "keys.0.networks.0: names network nope"],
    [{ networks: { a: { allow: ["x_y"] } }, keys: [] }, "networks.a.allow.0: x_y is not host"],
    [
      {
        networks: {
          a: {
            allow: ["a.org"],
            inject: [{ host: "a.org", header: "X", value: "env:AIRLOCK_UNSET_VAR" }],
          },
        },
        keys: [],
      },
      "AIRLOCK_UNSET_VAR is not set",
    ],
  ])("refuses a bad file, naming the field", ({ networks, keys }, message) => {
    const file = { networks, tenants: { t: { keys: [{ ...key, networks: keys }] } } };
    expect(() => parsePolicy("p.json", JSON.stringify(file))).toThrow(message);
  });
});
