// Docker Compose for the deployment tests: whichever the machine has, the v2
// plugin (`docker compose`) or Debian's v1 (`docker-compose`), under a unique
// project name so parallel runs never meet.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type Dockerode from "dockerode";

const run = promisify(execFile);

export async function composeCommand(): Promise<string[]> {
  for (const candidate of [["docker", "compose"], ["docker-compose"]]) {
    try {
      await run(candidate[0] as string, [...candidate.slice(1), "version"]);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose; .ci/provision.sh does)",
  );
}

export interface ComposeProject {
  name: string;
  /** Runs compose with this project's name, file and environment; rejects with its output. */
  run(...args: string[]): Promise<string>;
}

export async function composeProject(
  name: string,
  options: { cwd: string; file?: string; overrides?: string[]; env: Record<string, string> },
): Promise<ComposeProject> {
  const [cmd, ...pre] = await composeCommand();
  const overrides = options.overrides ?? [];
  const file = [
    ...(options.file === undefined && overrides.length > 0 ? ["-f", "docker-compose.yml"] : []),
    ...(options.file === undefined ? [] : ["-f", options.file]),
    ...overrides.flatMap((o) => ["-f", o]),
  ];
  return {
    name,
    async run(...args) {
      try {
        const { stdout, stderr } = await run(
          cmd as string,
          [...pre, ...file, "-p", name, ...args],
          {
            cwd: options.cwd,
            env: { ...process.env, ...options.env },
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        return stdout + stderr;
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string };
        throw new Error(
          `compose ${args.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`,
        );
      }
    },
  };
}

/**
 * Removes the gateway images that a rebuild of the shared test tag left
 * untagged (the Dockerfile's last step labels them airlock.gateway), so that
 * repeated runs on one machine do not pile up ~400 MB each.
 *
 * image.test.ts and deploy.test.ts end at about the same time, and the engine
 * runs one prune at a time: the other gets 409 "a prune operation is already
 * running". That one may have listed its images before ours were untagged, so
 * wait for it to end and prune again rather than count it as ours.
 */
export async function pruneReplacedGatewayImages(docker: Dockerode): Promise<void> {
  const filters = { dangling: ["true"], label: ["airlock.gateway"] };
  for (let attempt = 1; ; attempt++) {
    try {
      await docker.pruneImages({ filters });
      return;
    } catch (err) {
      const busy = (err as { statusCode?: number }).statusCode === 409;
      if (!busy || attempt === 30) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
