// Before the chaos tests: a private Docker engine (engine.ts) holding the
// shell image, and a profiles directory that lets main.ts start on it. After
// them — and after a failed setup too — that engine is stopped and its
// directories removed, whatever happened in between. The machine's own engine
// is only read from (the image is copied out of it), never changed.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Dockerode from "dockerode";
import { ensureImages } from "../../images/build.ts";
import { loadProfiles } from "../../policies/load.ts";
import {
  copyImages,
  ENGINE_DIRS,
  prepareEngineDirs,
  removeEngineDirs,
  startEngine,
  stopEngine,
} from "./engine.ts";

/** The one image the chaos tests run: the shell profile's. */
function shellImage(): string {
  const shell = loadProfiles().get("shell");
  if (shell === undefined) throw new Error("the built-in shell profile is missing");
  return shell.image;
}

/**
 * The private engine holds only the shell image (copying the others would
 * cost half a minute per run), but main.ts probes every configured profile at
 * start. So the other built-in profiles are replaced, by name, with copies on
 * the shell image (AIRLOCK_PROFILES_DIR may replace built-in profiles). Their
 * probe only needs /bin/sh; no chaos test runs their languages.
 */
function writeProfileOverrides(image: string): void {
  const builtIn = join(import.meta.dirname, "..", "..", "policies", "profiles");
  for (const name of readdirSync(builtIn).filter((n) => n.endsWith(".json"))) {
    const profile = JSON.parse(readFileSync(join(builtIn, name), "utf8")) as { image?: string };
    if (profile.image === image) continue;
    writeFileSync(
      join(ENGINE_DIRS.profiles, name),
      `${JSON.stringify({ ...profile, image }, null, 2)}\n`,
    );
  }
}

/** Set once this run has the engine's directories: only then is there anything to stop or remove. */
let owned = false;

export async function setup(): Promise<void> {
  const image = shellImage();
  const machine = new Dockerode();
  await machine.ping().catch((err: unknown) => {
    throw new Error(
      `chaos tests copy their image from the machine's Docker engine (${(err as Error).message}); run .ci/run or start dockerd`,
    );
  });
  await ensureImages(machine, [image], {
    log: (line) => process.stderr.write(`[images] ${line}\n`),
  });
  // Throws, owning nothing, while another run's chaos engine is up.
  prepareEngineDirs();
  owned = true;
  try {
    await startEngine();
    await copyImages([image]);
    writeProfileOverrides(image);
  } catch (err) {
    await teardown();
    throw err;
  }
}

export async function teardown(): Promise<void> {
  if (!owned) return;
  owned = false;
  try {
    await stopEngine();
  } finally {
    removeEngineDirs();
  }
}
