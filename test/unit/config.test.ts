import { timingSafeEqual } from "node:crypto";
import { describe, expect, it } from "vitest";
import { findCaller } from "../../api/auth.ts";
import { hashKey, loadConfig, parseKeysFile } from "../../api/config.ts";

describe("loadConfig", () => {
  it("with no keys: listens on loopback and generates a key", () => {
    const config = loadConfig({});
    expect(config.host).toBe("127.0.0.1");
    expect(config.generatedKey).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(findCaller(config.keys, config.generatedKey ?? "")?.tenant).toBe("default");
  });

  it("refuses a public address without keys", () => {
    expect(() => loadConfig({ AIRLOCK_HOST: "0.0.0.0" })).toThrow(
      "AIRLOCK_HOST=0.0.0.0 needs API keys",
    );
  });

  it("parses tenant:key pairs and keeps only hashes", () => {
    const config = loadConfig({ AIRLOCK_API_KEYS: "a:aaaaaaaaaaaaaaaa1,b:bbbbbbbbbbbbbbbb2" });
    expect(config.host).toBe("0.0.0.0");
    expect(config.generatedKey).toBeUndefined();
    expect(JSON.stringify(config)).not.toContain("aaaaaaaaaaaaaaaa1");
    expect(findCaller(config.keys, "bbbbbbbbbbbbbbbb2")?.tenant).toBe("b");
    expect(findCaller(config.keys, "bbbbbbbbbbbbbbbb3")).toBeUndefined();
  });

  it.each([
    [{ AIRLOCK_PORT: "eighty" }, "AIRLOCK_PORT"],
    [{ AIRLOCK_CONCURRENCY: "0" }, "AIRLOCK_CONCURRENCY"],
    [{ AIRLOCK_API_KEYS: "nokey" }, "AIRLOCK_API_KEYS entry 1"],
    [{ AIRLOCK_API_KEYS: "a:short" }, "at least 16 characters"],
    [{ DOCKER_HOST: "/var/run/docker.sock" }, "DOCKER_HOST"],
    [{ AIRLOCK_EXECUTION_RETENTION: "7" }, "AIRLOCK_EXECUTION_RETENTION"],
    [{ AIRLOCK_EXECUTION_RETENTION: "1s" }, "between 60 seconds and 365 days"],
    [{ AIRLOCK_DATA_DIR: "" }, "AIRLOCK_DATA_DIR"],
  ])("names the bad variable in %j", (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("replicas: AIRLOCK_STATE_URL with a peer secret, defaults for the rest", () => {
    const keys = { AIRLOCK_API_KEYS: "a:aaaaaaaaaaaaaaaa1", AIRLOCK_PORT: "9000" };
    expect(loadConfig(keys).replicas).toBeUndefined();
    const url = "postgres://airlock:pw@db:5432/airlock";
    const r = loadConfig({
      ...keys,
      AIRLOCK_STATE_URL: url,
      AIRLOCK_PEER_SECRET: "0123456789abcdef",
    }).replicas;
    expect(r).toMatchObject({ stateUrl: url, engineId: undefined, heartbeatMs: 2000 });
    expect(r?.advertiseUrl).toMatch(/^http:\/\/.+:9000$/);
    expect(
      loadConfig({
        ...keys,
        AIRLOCK_STATE_URL: url,
        AIRLOCK_PEER_SECRET: "0123456789abcdef",
        AIRLOCK_ENGINE_ID: "engine-b",
        AIRLOCK_ADVERTISE_URL: "http://gw-2:8080/",
      }).replicas,
    ).toMatchObject({ engineId: "engine-b", advertiseUrl: "http://gw-2:8080" });
  });

  it.each([
    [{ AIRLOCK_STATE_URL: "mysql://x" }, "AIRLOCK_STATE_URL"],
    [{ AIRLOCK_STATE_URL: "postgres://db/a" }, "needs AIRLOCK_PEER_SECRET"],
    [{ AIRLOCK_PEER_SECRET: "0123456789abcdef" }, "without AIRLOCK_STATE_URL"],
    [
      {
        AIRLOCK_STATE_URL: "postgres://db/a",
        AIRLOCK_PEER_SECRET: "0123456789abcdef",
        AIRLOCK_HEARTBEAT_MS: "5000",
        AIRLOCK_GATEWAY_TIMEOUT_MS: "6000",
      },
      "at least twice AIRLOCK_HEARTBEAT_MS",
    ],
  ])("replicas: refuses %j", (env, message) => {
    expect(() => loadConfig({ AIRLOCK_API_KEYS: "a:aaaaaaaaaaaaaaaa1", ...env })).toThrow(message);
  });

  it("reads the data directory and the execution retention (a duration)", () => {
    expect(loadConfig({})).toMatchObject({
      dataDir: undefined,
      executionRetentionMs: 7 * 24 * 3600_000,
    });
    const config = loadConfig({
      AIRLOCK_DATA_DIR: "/srv/airlock",
      AIRLOCK_EXECUTION_RETENTION: "36h",
    });
    expect(config).toMatchObject({ dataDir: "/srv/airlock", executionRetentionMs: 36 * 3600_000 });
    expect(loadConfig({ AIRLOCK_EXECUTION_RETENTION: "90m" }).executionRetentionMs).toBe(5_400_000);
  });

  it("compares against every stored key in constant time, wherever the match is", () => {
    const keys = ["k0-aaaaaaaaaaaaaaaa", "k1-bbbbbbbbbbbbbbbb", "k2-cccccccccccccccc"].map(
      (k, i) => ({
        tenant: `t${i}`,
        hash: hashKey(k),
      }),
    );
    for (const presented of [
      "k0-aaaaaaaaaaaaaaaa",
      "k2-cccccccccccccccc",
      "not-a-key-at-all-000",
    ]) {
      let calls = 0;
      const counting = (a: Buffer, b: Buffer) => {
        calls++;
        return timingSafeEqual(a, b);
      };
      findCaller(keys, presented, counting);
      expect(calls).toBe(keys.length);
    }
  });

  it("reads hashed keys from a keys file", () => {
    const keys = parseKeysFile(
      "keys.txt",
      `# team\nalpha sha256:${hashKey("secret-key-alpha-1").toString("hex")}\n`,
    );
    expect(findCaller(keys, "secret-key-alpha-1")?.tenant).toBe("alpha");
    expect(() => parseKeysFile("keys.txt", "alpha plain")).toThrow("keys.txt:1:");
  });
});
