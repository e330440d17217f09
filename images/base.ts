// The Debian base every sandbox image builds on. Where the public
// debian:bookworm-slim can be had (present, or pullable), it is used; where no
// registry answers, the base is made from Debian packages: debootstrap (from the
// machine's own apt mirror) into a temporary directory, imported with the
// Docker API. Nothing but debootstrap and tar is run outside Docker.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Dockerode from "dockerode";

export const PUBLIC_BASE = "debian:bookworm-slim";
export const LOCAL_BASE = "airlock/base:bookworm";
const DEFAULT_MIRROR = "http://deb.debian.org/debian";
const PULL_TIMEOUT_MS = 15_000;

export type Log = (line: string) => void;

export async function imageExists(docker: Dockerode, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return false;
    throw err;
  }
}

/** The base tag to build on: the public one if present or pullable, else the local one (made if missing). */
export async function ensureBase(docker: Dockerode, log: Log): Promise<string> {
  if (await imageExists(docker, PUBLIC_BASE)) return PUBLIC_BASE;
  if (await imageExists(docker, LOCAL_BASE)) return LOCAL_BASE;
  if (await tryPull(docker, PUBLIC_BASE, log)) return PUBLIC_BASE;
  await buildLocalBase(docker, log);
  return LOCAL_BASE;
}

async function tryPull(docker: Dockerode, tag: string, log: Log): Promise<boolean> {
  log(`base: trying to pull ${tag}`);
  const attempt = new Promise<boolean>((resolve) => {
    docker.pull(tag, (err: Error | null, stream: NodeJS.ReadableStream | undefined) => {
      if (err !== null || stream === undefined) {
        log(`base: cannot pull ${tag} (${err?.message.split("\n")[0] ?? "no stream"})`);
        resolve(false);
        return;
      }
      docker.modem.followProgress(stream, (doneErr: Error | null) => resolve(doneErr === null));
    });
  });
  const timeout = new Promise<boolean>((resolve) =>
    setTimeout(() => resolve(false), PULL_TIMEOUT_MS).unref(),
  );
  return Promise.race([attempt, timeout]);
}

/** The first Debian mirror in the machine's apt sources (deb822 or one-line format). */
export async function aptMirror(): Promise<string> {
  const dir = "/etc/apt/sources.list.d";
  const texts: string[] = [];
  try {
    for (const name of (await readdir(dir)).sort())
      texts.push(await readFile(join(dir, name), "utf8"));
  } catch {
    // No such directory: fall through to sources.list.
  }
  try {
    texts.push(await readFile("/etc/apt/sources.list", "utf8"));
  } catch {
    // Neither exists: the default mirror.
  }
  for (const text of texts) {
    for (const line of text.split("\n")) {
      const deb822 = /^URIs:\s*(\S+)/.exec(line.trim());
      const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/.exec(line.trim());
      const uri = deb822?.[1] ?? oneLine?.[1];
      if (uri !== undefined && !uri.includes("security")) return uri;
    }
  }
  return DEFAULT_MIRROR;
}

function run(command: string, args: string[], log: Log): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const forward = (data: Buffer) => {
      for (const line of data.toString().split("\n")) if (line.trim() !== "") log(`base: ${line}`);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    child.on("error", (err) =>
      reject(
        new Error(
          `${command} could not be started (${err.message}); install it (apt-get install -y ${command}) or make ${PUBLIC_BASE} available`,
        ),
      ),
    );
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`)),
    );
  });
}

async function buildLocalBase(docker: Dockerode, log: Log): Promise<void> {
  const mirror = await aptMirror();
  const root = await mkdtemp(join(tmpdir(), "airlock-base-"));
  const started = Date.now();
  try {
    log(`base: debootstrap bookworm from ${mirror} (about a minute)`);
    await run("debootstrap", ["--variant=minbase", "bookworm", root, mirror], log);
    log(`base: importing ${LOCAL_BASE}`);
    const tar = spawn("tar", ["-C", root, "--numeric-owner", "-c", "."], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const tarDone = new Promise<void>((resolve, reject) => {
      tar.on("error", reject);
      tar.on("close", (code) =>
        code === 0 ? resolve() : reject(new Error(`tar exited with ${code}`)),
      );
    });
    const [repo, tag] = LOCAL_BASE.split(":");
    // No ENV in an imported image: each Dockerfile sets PATH itself.
    const stream = await docker.importImage(tar.stdout, { repo, tag });
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(stream, (err: Error | null) =>
        err === null ? resolve() : reject(err),
      );
    });
    await tarDone;
    log(`base: ${LOCAL_BASE} ready in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
