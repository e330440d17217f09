// The compose deployments, built and run as an operator would: `compose up
// --build` on the local base (no registry), /readyz answers 200, a job and a
// workspace work, `compose down` leaves no container, network or sandbox
// behind. Once with the socket mounted (docker-compose.yml), once behind the
// filtering proxy (deploy/docker-compose.socket-proxy.yml). Each also runs a
// job with an egress network, the gateway in its container (the relay reaches
// it over the relay network, the CA comes from its volume), against a local
// upstream on a network of the test's that an override puts the gateway on.
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { execOnce, workspaceRoundTrip } from "../support/airlock-calls.ts";
import {
  type ComposeProject,
  composeProject,
  pruneReplacedGatewayImages,
} from "../support/compose.ts";
import { startUpstream } from "../support/egress-upstream.ts";
import { keyHash } from "../support/gateway.ts";
import { freePort, ROOT } from "../support/main-process.ts";

const docker = new Dockerode();
// One tag for every run, so the build cache is shared; the image is not removed.
// AIRLOCK_TEST_GATEWAY_IMAGE names another (a tag of one's own, where several
// worktrees share an engine and rebuild the shared tag under each other).
const IMAGE = process.env["AIRLOCK_TEST_GATEWAY_IMAGE"] ?? "airlock/gateway:test";
const opened: ComposeProject[] = [];

afterAll(async () => {
  // Only after a failure is anything still up.
  for (const project of opened) await project.run(...DOWN).catch(() => undefined);
  await pruneReplacedGatewayImages(docker);
});

async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`/readyz never answered 200 (last: ${last})`);
}

/** `docker compose down`, volumes and orphans included. */
const DOWN = ["down", "-v", "--remove-orphans", "-t", "30"];

/** Downs the project, then finds nothing of it or of its gateway's instance left on the engine. */
async function downLeavesNothing(project: ComposeProject, instanceId: string): Promise<void> {
  await project.run(...DOWN);
  opened.splice(opened.indexOf(project), 1);
  expect(await leftovers(project.name, instanceId)).toEqual({
    composeContainers: 0,
    networks: 0,
    sandboxes: 0,
    volumes: 0,
  });
}

async function leftovers(project: string, instanceId: string) {
  const byProject = { label: [`com.docker.compose.project=${project}`] };
  const byInstance = { label: [`airlock=${instanceId}`] };
  return {
    composeContainers: (await docker.listContainers({ all: true, filters: byProject })).length,
    networks: (await docker.listNetworks({ filters: byProject })).length,
    sandboxes: (await docker.listContainers({ all: true, filters: byInstance })).length,
    volumes: ((await docker.listVolumes({ filters: byInstance })).Volumes ?? []).length,
  };
}

describe.each([
  // The first builds the image (from the layer cache when it is warm); the second runs it as built.
  { variant: "socket mounted", file: undefined, up: ["up", "-d", "--build"] },
  { variant: "socket proxy", file: "deploy/docker-compose.socket-proxy.yml", up: ["up", "-d"] },
])("compose, $variant", ({ file, up }) => {
  it("up → /readyz 200 → a job and a workspace → down leaves nothing", async () => {
    const suffix = randomUUID().slice(0, 8);
    const port = await freePort();
    const key = `deploy-key-${randomUUID()}`;
    const instanceId = `compose-${suffix}`;
    const project = await composeProject(`airlock-deploy-${suffix}`, {
      cwd: ROOT,
      ...(file === undefined ? {} : { file }),
      env: {
        AIRLOCK_API_KEYS: `deploy:${key}`,
        AIRLOCK_PUBLISH_PORT: String(port),
        AIRLOCK_INSTANCE_ID: instanceId,
        AIRLOCK_GATEWAY_IMAGE: IMAGE,
        AIRLOCK_SHUTDOWN_GRACE_MS: "5000",
      },
    });
    opened.push(project);
    await project.run(...up);
    const target = { url: `http://127.0.0.1:${port}`, key };
    await waitReady(target.url);
    const result = await execOnce(target, { profile: "python", code: "print(6 * 7)" });
    expect(result).toMatchObject({ status: "ok", stdout: "42\n" });
    await workspaceRoundTrip(target);
    await downLeavesNothing(project, instanceId);
  }, 300_000);
});

describe.each([
  { variant: "socket mounted", file: undefined },
  { variant: "socket proxy", file: "deploy/docker-compose.socket-proxy.yml" },
])("compose egress, $variant", ({ file }) => {
  it("a job with a network goes through the proxy in the gateway's container; down leaves nothing", async () => {
    const suffix = randomUUID().slice(0, 8);
    const port = await freePort();
    const key = `deploy-net-key-${randomUUID()}`;
    const instanceId = `compose-net-${suffix}`;
    const up = await startUpstream("unused", `airlock-deploy-upstream-${suffix}`);
    try {
      const dir = mkdtempSync(join(tmpdir(), "airlock-deploy-egress-"));
      const policy = {
        networks: { up: { allow: ["plain.test:8080"], resolve: { "plain.test": up.ip } } },
        tenants: { t: { keys: [{ hash: keyHash(key), scopes: ["exec"], networks: ["up"] }] } },
      };
      writeFileSync(join(dir, "policy.json"), JSON.stringify(policy));
      // The gateway on the upstream's network too (the proxy dials it); keys from the policy file.
      const override = join(dir, "override.yml");
      writeFileSync(
        override,
        [
          "services:",
          "  airlock:",
          "    environment:",
          '      AIRLOCK_API_KEYS: ""',
          "      AIRLOCK_POLICY_FILE: /etc/airlock-policy.json",
          "    volumes:",
          `      - ${join(dir, "policy.json")}:/etc/airlock-policy.json:ro`,
          "    networks:",
          "      upstream: {}",
          "networks:",
          "  upstream:",
          "    external: true",
          `    name: airlock-deploy-upstream-${suffix}`,
          "",
        ].join("\n"),
      );
      const project = await composeProject(`airlock-deploy-net-${suffix}`, {
        cwd: ROOT,
        ...(file === undefined ? {} : { file }),
        overrides: [override],
        env: {
          // Only for the base file's interpolation: the override blanks it for the policy file.
          AIRLOCK_API_KEYS: `unused:${randomUUID()}`,
          AIRLOCK_PUBLISH_PORT: String(port),
          AIRLOCK_INSTANCE_ID: instanceId,
          AIRLOCK_GATEWAY_IMAGE: IMAGE,
          AIRLOCK_SHUTDOWN_GRACE_MS: "5000",
        },
      });
      opened.push(project);
      await project.run("up", "-d");
      const target = { url: `http://127.0.0.1:${port}`, key };
      await waitReady(target.url);
      const result = await execOnce(target, {
        profile: "shell",
        command: [
          "bash",
          "-c",
          `head -1 "$NODE_EXTRA_CA_CERTS"; curl -sS http://plain.test:8080/g; curl -s -m 3 --noproxy '*' http://${up.ip}:8080/ || echo direct-failed`,
        ],
        networks: ["up"],
      });
      expect(result).toMatchObject({
        status: "ok",
        stdout: "-----BEGIN CERTIFICATE-----\nhello from upstream\ndirect-failed\n",
        egress: [expect.objectContaining({ host: "plain.test", decision: "allowed" })],
      });
      await downLeavesNothing(project, instanceId);
      const own = { label: [`airlock=${instanceId}`] };
      expect(await docker.listNetworks({ filters: own })).toEqual([]);
    } finally {
      // A failed run's gateway is still on the upstream's network: down first.
      for (const project of opened.splice(0)) await project.run(...DOWN).catch(() => undefined);
      await up.stop();
    }
  }, 300_000);
});
