// End to end on the deployable image, with testcontainers: the gateway image
// is built from the repository's Dockerfile on the local base (no registry),
// run with the engine's socket bound in, and driven through the typed client:
// /readyz, a one-shot exec, a workspace round trip, then a graceful stop that
// leaves no sandbox behind. Ryuk (testcontainers' reaper) is off: its image
// cannot be pulled here, so this file stops what it starts itself.
import { randomUUID } from "node:crypto";
import Dockerode from "dockerode";
import { GenericContainer, type StartedTestContainer, Wait } from "testcontainers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { execOnce, type Target, workspaceRoundTrip } from "../support/airlock-calls.ts";
import { pruneReplacedGatewayImages } from "../support/compose.ts";
import { ROOT } from "../support/main-process.ts";

process.env["TESTCONTAINERS_RYUK_DISABLED"] = "true";

const docker = new Dockerode();
const IMAGE = "airlock/gateway:test";
const instanceId = `image-${randomUUID().slice(0, 8)}`;
const key = `image-key-${randomUUID()}`;
let gateway: StartedTestContainer | undefined;
let target: Target;

beforeAll(async () => {
  // Built once for the file; the tag is shared with deploy.test.ts, so the layer cache is too.
  const image = await GenericContainer.fromDockerfile(ROOT)
    .withBuildArgs({ BASE: "airlock/base:bookworm" })
    .build(IMAGE, { deleteOnExit: false });
  gateway = await image
    .withBindMounts([{ source: "/var/run/docker.sock", target: "/var/run/docker.sock" }])
    .withEnvironment({
      AIRLOCK_API_KEYS: `image:${key}`,
      AIRLOCK_INSTANCE_ID: instanceId,
      AIRLOCK_SHUTDOWN_GRACE_MS: "5000",
    })
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forHttp("/readyz", 8080).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  target = { url: `http://127.0.0.1:${gateway.getMappedPort(8080)}`, key };
}, 300_000);

afterAll(async () => {
  // Only after a failure is the gateway still running.
  await gateway?.stop({ timeout: 30_000 }).catch(() => undefined);
  await pruneReplacedGatewayImages(docker);
});

it("answers /readyz with every check ok", async () => {
  const res = await fetch(`${target.url}/readyz`);
  const body = (await res.json()) as { status: string; checks: Record<string, string> };
  expect(res.status).toBe(200);
  expect(body.status).toBe("ready");
  expect(Object.values(body.checks).every((v) => v === "ok")).toBe(true);
});

it("runs /v1/exec in a sandbox next to it on the same engine", async () => {
  const result = await execOnce(target, {
    profile: "python",
    code: "import os\nprint(os.getuid(), open('/proc/self/status').read().count('Seccomp:\\t2'))",
  });
  // Non-root, under a seccomp filter: the image's gateway applies the same hardening.
  expect(result).toMatchObject({ status: "ok", stdout: "1000 1\n" });
});

it("keeps a workspace across calls", async () => {
  await workspaceRoundTrip(target);
});

it("stops on SIGTERM and leaves nothing behind", async () => {
  const started = gateway as StartedTestContainer;
  gateway = undefined;
  const stopped = await started.stop({ timeout: 30_000 });
  expect(stopped.getId()).toBe(started.getId());
  const filter = { label: [`airlock=${instanceId}`] };
  expect((await docker.listContainers({ all: true, filters: filter })).length).toBe(0);
  expect(((await docker.listVolumes({ filters: filter })).Volumes ?? []).length).toBe(0);
});
