// Each language's version, read from its image rather than typed by hand: at
// build time the builder runs the profile's `version` argv in the built image
// (no network, non-root, removed after) and writes the first dotted number it
// prints into a label `airlock.version.<language>` (a label-only image on top:
// no new layer). The gateway reads the labels at start-up (imageVersions) and
// reports them in GET /v1/profiles and Piston's GET /api/v2/runtimes.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type Dockerode from "dockerode";
import { pack } from "tar-stream";
import type { Log } from "./base.ts";

export const VERSION_LABEL = "airlock.version.";
const RUN_TIMEOUT_MS = 60_000;

/** language → its version argv, for one image. */
export type VersionCommands = Record<string, string[]>;

/** What the built-in profiles (policies/profiles/*.json) ask of each image: tag → language → argv. */
export async function builtinVersionCommands(): Promise<Map<string, VersionCommands>> {
  const dir = join(import.meta.dirname, "..", "policies", "profiles");
  const byTag = new Map<string, VersionCommands>();
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".json")).sort()) {
    const profile = JSON.parse(await readFile(join(dir, name), "utf8")) as {
      image?: unknown;
      languages?: Record<string, { version?: unknown }>;
    };
    if (typeof profile.image !== "string") continue;
    const commands = byTag.get(profile.image) ?? {};
    for (const [language, spec] of Object.entries(profile.languages ?? {})) {
      const argv = spec.version;
      if (Array.isArray(argv) && argv.every((a) => typeof a === "string")) {
        commands[language] = argv as string[];
      }
    }
    byTag.set(profile.image, commands);
  }
  return byTag;
}

/** "gcc (Debian 12.2.0-14) 12.2.0" → "12.2.0"; "go version go1.19.8 linux/amd64" → "1.19.8". */
export function parseVersion(text: string): string | undefined {
  const match = /(\d+\.\d+(?:\.\d+)?)/.exec(text);
  if (match === null) return undefined;
  const parts = (match[1] as string).split(".");
  while (parts.length < 3) parts.push("0");
  return parts.join(".");
}

/** The version labels an image carries: language → version. */
export async function imageVersions(
  docker: Dockerode,
  tag: string,
): Promise<Record<string, string>> {
  const info = await docker.getImage(tag).inspect();
  const versions: Record<string, string> = {};
  for (const [key, value] of Object.entries(info.Config?.Labels ?? {})) {
    if (key.startsWith(VERSION_LABEL)) versions[key.slice(VERSION_LABEL.length)] = value;
  }
  return versions;
}

/** Sets each profile's `versions` from its image's labels (an image not there yet: none). */
export async function readVersions(
  docker: Dockerode,
  profiles: ReadonlyMap<
    string,
    {
      image: string;
      languages: Readonly<Record<string, unknown>>;
      versions?: Readonly<Record<string, string>> | undefined;
    }
  >,
): Promise<void> {
  const byTag = new Map<string, Record<string, string>>();
  for (const profile of profiles.values()) {
    let versions = byTag.get(profile.image);
    if (versions === undefined) {
      versions = await imageVersions(docker, profile.image).catch(() => ({}));
      byTag.set(profile.image, versions);
    }
    // An image may serve several profiles (c and cpp): each reports its own languages.
    const own = Object.entries(versions).filter(([language]) => language in profile.languages);
    profile.versions = Object.fromEntries(own);
  }
}

/** Runs `argv` in the image as the sandbox user, without network, and returns what it printed. */
async function runInImage(docker: Dockerode, tag: string, argv: string[]): Promise<string> {
  const container = await docker.createContainer({
    Image: tag,
    Cmd: argv,
    Entrypoint: [],
    User: "1000:1000",
    Env: ["HOME=/tmp"],
    Labels: { airlock: "image-builder" },
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      Tmpfs: { "/tmp": "rw,size=64m" },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges:true"],
      Memory: 1024 * 1024 * 1024,
    },
  });
  try {
    await container.start();
    const timer = setTimeout(() => void container.kill().catch(() => undefined), RUN_TIMEOUT_MS);
    await container.wait();
    clearTimeout(timer);
    const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
    // Docker's multiplexed frames: 8-byte headers, then the payload.
    const out: Buffer[] = [];
    for (let at = 0; at + 8 <= logs.length; ) {
      const size = logs.readUInt32BE(at + 4);
      out.push(logs.subarray(at + 8, at + 8 + size));
      at += 8 + size;
    }
    return Buffer.concat(out).toString("utf8");
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Gives `tag` a version label for each language of `commands` it lacks one
 * for (after a build, all of them): a label-only image built FROM it under
 * the same tag, which keeps its digest label and every layer.
 */
export async function labelVersions(
  docker: Dockerode,
  tag: string,
  commands: VersionCommands,
  log: Log,
): Promise<void> {
  const have = await imageVersions(docker, tag);
  const labels: Record<string, string> = {};
  for (const [language, argv] of Object.entries(commands)) {
    if (have[language] !== undefined) continue;
    const text = await runInImage(docker, tag, argv);
    const version = parseVersion(text);
    if (version === undefined) {
      throw new Error(
        `${tag}: ${argv.join(" ")} printed no version (${JSON.stringify(text.slice(0, 200))})`,
      );
    }
    labels[`${VERSION_LABEL}${language}`] = version;
  }
  if (Object.keys(labels).length === 0) return;
  const tar = pack();
  const dockerfile = Buffer.from(`FROM ${tag}\n`);
  tar.entry({ name: "Dockerfile", size: dockerfile.length }, dockerfile);
  tar.finalize();
  const stream = await docker.buildImage(Readable.from(tar), {
    t: tag,
    labels,
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output?: { error?: string }[]) => {
      const failed = err?.message ?? output?.find((o) => o.error !== undefined)?.error;
      if (failed === undefined) resolve();
      else reject(new Error(`labelling ${tag} failed: ${failed}`));
    });
  });
  log(
    `${tag}: versions ${Object.entries(labels)
      .map(([k, v]) => `${k.slice(VERSION_LABEL.length)} ${v}`)
      .join(", ")}`,
  );
}
