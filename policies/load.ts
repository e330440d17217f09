// Reads profile files at start-up: defaults.json merged under each file in
// policies/profiles/ (then the operator's AIRLOCK_PROFILES_DIR, whose files may
// replace built-in profiles by name), validated by zod. The first bad file stops
// the server with its path and the field at fault.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { z } from "zod";
import { type LoadedProfile, Profile, SeccompFile } from "../core/profile.ts";

export const POLICIES_DIR = import.meta.dirname;

export class ProfileError extends Error {
  override name = "ProfileError";
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Objects merge key by key; arrays and scalars in `over` replace those in `base`. */
export function mergeDefaults(base: Json, over: Json): Json {
  if (!isObject(base) || !isObject(over)) return over;
  const out: { [key: string]: Json } = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prior = out[key];
    out[key] = prior === undefined ? value : mergeDefaults(prior, value);
  }
  return out;
}

function isObject(v: Json): v is { [key: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ProfileError(`${path}: cannot be read (${(cause as Error).message})`, { cause });
  }
  try {
    return JSON.parse(text) as Json;
  } catch (cause) {
    throw new ProfileError(`${path}: is not valid JSON (${(cause as Error).message})`, { cause });
  }
}

/** "limits.max.memoryMb: Too big: expected number to be <=64" — file, field, reason. */
export function describeZodError(path: string, error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return `${path}: invalid`;
  const field = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
  return `${path}: ${field}: ${issue.message}`;
}

export function parseProfile(path: string, defaults: Json, raw: Json): Profile {
  const result = Profile.safeParse(mergeDefaults(defaults, raw));
  if (!result.success) throw new ProfileError(describeZodError(path, result.error));
  const expected = basename(path, ".json");
  if (result.data.name !== expected) {
    throw new ProfileError(
      `${path}: name: is ${JSON.stringify(result.data.name)} but the file is named ${expected}.json`,
    );
  }
  return result.data;
}

/**
 * gVisor (the 2022 runsc that Debian ships) applies an OCI seccomp filter but
 * ignores a rule's `errnoRet`: it answers EPERM. For `clone3` that matters, as
 * glibc falls back to `clone` (whose flags the filter inspects) only on ENOSYS,
 * and on EPERM no thread can start. gVisor implements no `clone3` and answers
 * ENOSYS itself, so under runsc the rule becomes an allow, and the answer stays
 * ENOSYS (the adversarial suite checks it under both runtimes).
 */
export function seccompForGvisor(seccomp: { syscalls?: unknown }): unknown {
  const syscalls = Array.isArray(seccomp.syscalls) ? seccomp.syscalls : [];
  return {
    ...seccomp,
    syscalls: syscalls.map((rule: { names?: unknown; action?: unknown; errnoRet?: unknown }) => {
      const names = Array.isArray(rule.names) ? rule.names : [];
      if (names.length !== 1 || names[0] !== "clone3" || rule.action !== "SCMP_ACT_ERRNO") {
        return rule;
      }
      const { errnoRet: _, ...rest } = rule;
      return { ...rest, action: "SCMP_ACT_ALLOW" };
    }),
  };
}

function loadSeccomp(
  profilePath: string,
  dirs: readonly string[],
  file: string,
  runtime: string,
): string {
  if (file.includes("/") || file.includes("\\")) {
    throw new ProfileError(`${profilePath}: seccomp: must be a file name, not a path`);
  }
  for (const dir of dirs) {
    const candidate = join(dir, file);
    let text: string;
    try {
      text = readFileSync(candidate, "utf8");
    } catch {
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (cause) {
      throw new ProfileError(`${candidate}: is not valid JSON (${(cause as Error).message})`, {
        cause,
      });
    }
    const result = SeccompFile.safeParse(parsed);
    if (!result.success) throw new ProfileError(describeZodError(candidate, result.error));
    // Re-serialised compactly: it travels in every create call's SecurityOpt.
    return JSON.stringify(
      runtime === "runsc" ? seccompForGvisor(parsed as { syscalls?: unknown }) : parsed,
    );
  }
  throw new ProfileError(
    `${profilePath}: seccomp: ${file} not found in ${dirs.map((d) => JSON.stringify(d)).join(" or ")}`,
  );
}

function profileFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (cause) {
    throw new ProfileError(
      `${dir}: profiles directory cannot be read (${(cause as Error).message})`,
      {
        cause,
      },
    );
  }
  return names
    .filter((n) => n.endsWith(".json"))
    .sort()
    .map((n) => join(dir, n));
}

export interface LoadOptions {
  /** The operator's extra directory: *.json profiles, and seccomp files under seccomp/. */
  extraDir?: string | undefined;
  /** Keep only these profiles (AIRLOCK_PROFILES): an operator who needs a few builds a few images. */
  only?: readonly string[] | undefined;
}

export function loadProfiles(options: LoadOptions = {}): Map<string, LoadedProfile> {
  const defaults = readJson(join(POLICIES_DIR, "defaults.json"));
  const dirs = [join(POLICIES_DIR, "profiles")];
  const seccompDirs = [join(POLICIES_DIR, "seccomp")];
  if (options.extraDir !== undefined) {
    dirs.push(options.extraDir);
    seccompDirs.unshift(join(options.extraDir, "seccomp"));
  }
  const profiles = new Map<string, LoadedProfile>();
  for (const dir of dirs) {
    for (const path of profileFiles(dir)) {
      const profile = parseProfile(path, defaults, readJson(path));
      const seccompJson = loadSeccomp(path, seccompDirs, profile.seccomp, profile.runtime);
      profiles.set(profile.name, { ...profile, seccompJson });
    }
  }
  if (profiles.size === 0) throw new ProfileError(`no profiles found in ${dirs.join(", ")}`);
  return options.only === undefined ? profiles : onlyThese(profiles, options.only);
}

function onlyThese(
  profiles: Map<string, LoadedProfile>,
  names: readonly string[],
): Map<string, LoadedProfile> {
  const unknown = names.filter((n) => !profiles.has(n));
  if (unknown.length > 0) {
    throw new ProfileError(
      `AIRLOCK_PROFILES names ${unknown.map((n) => JSON.stringify(n)).join(", ")}, ` +
        `which no profile is; known: ${[...profiles.keys()].sort().join(", ")}`,
    );
  }
  return new Map([...profiles].filter(([name]) => names.includes(name)));
}
