// What a profile is: the zod schema every profile file must satisfy once the
// shared defaults (policies/defaults.json) are merged in. Profiles are data, as
// codapi's box.json: operators add their own without touching code.
import { z } from "zod";
import { AirlockError } from "./errors.ts";

const positiveInt = z.number().int().positive();

export const Limits = z.strictObject({
  /** Wall-clock limit of the user's process, from start to kill. */
  timeoutMs: positiveInt.min(100),
  memoryMb: positiveInt.min(16),
  cpus: z.number().positive().max(64),
  pids: positiveInt.min(8),
  /** Per stream (stdout, stderr): past it the container is killed, status output_limit. */
  outputBytes: positiveInt.min(1024),
});
export type Limits = z.infer<typeof Limits>;
export const LIMIT_FIELDS = Object.keys(Limits.shape) as (keyof Limits)[];

/** The compile stage's own limits (cpus, pids and output are the run's). */
export const CompileLimits = z.strictObject({
  timeoutMs: positiveInt.min(100),
  memoryMb: positiveInt.min(16),
});
export type CompileLimits = z.infer<typeof CompileLimits>;
export const COMPILE_LIMIT_FIELDS = Object.keys(CompileLimits.shape) as (keyof CompileLimits)[];

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a shell-style variable name");

export const Language = z.strictObject({
  /** File the code is written to, relative to /workspace. */
  file: z.string().min(1),
  /** argv that runs it. */
  command: z.array(z.string().min(1)).min(1),
  /**
   * A compiled language: argv run first in the same container, under the
   * profile's compileLimits; when it fails, `command` does not run.
   */
  compile: z.array(z.string().min(1)).min(1).optional(),
  /**
   * argv that prints the language's version: run by the image builder
   * (images/build.ts), which writes the answer into a label of the image.
   */
  version: z.array(z.string().min(1)).min(1).optional(),
});
export type Language = z.infer<typeof Language>;

export const Profile = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "must be lower-case letters, digits, - or _"),
    description: z.string().default(""),
    /** Image tag; `airlock/<dir>:<version>` is built from images/<dir>/ when missing. */
    image: z.string().min(1),
    runtime: z.enum(["runc", "runsc"]),
    /** uid:gid the user's code runs as; never root. */
    user: z
      .string()
      .regex(/^\d+:\d+$/, "must be numeric uid:gid")
      .refine((u) => !u.startsWith("0:") && !u.endsWith(":0"), "must not be root (uid or gid 0)"),
    languages: z.record(z.string().regex(/^[a-z0-9+#-]+$/), Language),
    defaultLanguage: z.string().optional(),
    env: z.record(EnvName, z.string()),
    limits: z.strictObject({ default: Limits, max: Limits }),
    /** For languages with a `compile` argv. */
    compileLimits: z.strictObject({ default: CompileLimits, max: CompileLimits }),
    /**
     * Docker network mode: "none" (the default), or a network such as "bridge".
     * Any other value makes the profile need the `network` scope (policies/access).
     */
    network: z
      .string()
      .regex(/^(none|bridge|[a-z0-9][a-z0-9_.-]{0,63})$/, "must be none, bridge or a network name")
      .refine(
        (n) => n !== "host" && !n.startsWith("container"),
        "host and container: networks are never allowed",
      ),
    tmpfs: z.strictObject({
      tmpMb: positiveInt,
      shmMb: positiveInt,
      /**
       * Programs may run from /tmp (compiled languages put their build there).
       * It grants nothing /workspace does not: that is writable and executable too.
       */
      exec: z.boolean().optional(),
    }),
    ulimits: z.strictObject({ nofile: positiveInt, fsizeMb: positiveInt }),
    /** Seccomp profile file name in policies/seccomp/ (or the operator's profiles dir). */
    seccomp: z.string().min(1),
    diff: z.strictObject({
      /** Text files up to this size carry a unified patch. */
      patchMaxBytes: z.number().int().nonnegative(),
      /** Total bytes of text held in memory to build patches for one result. */
      patchTotalBytes: z.number().int().nonnegative(),
      /** Total bytes of `files` returned through returnFiles. */
      returnMaxBytes: z.number().int().nonnegative(),
      /** Bytes of /workspace read back after a run; past it the diff is marked truncated. */
      scanMaxBytes: positiveInt,
      scanMaxEntries: positiveInt,
    }),
  })
  .superRefine((p, ctx) => {
    for (const field of LIMIT_FIELDS) {
      if (p.limits.default[field] > p.limits.max[field]) {
        ctx.addIssue({
          code: "custom",
          path: ["limits", "default", field],
          message: `is ${p.limits.default[field]}, above limits.max.${field} (${p.limits.max[field]})`,
        });
      }
    }
    for (const field of COMPILE_LIMIT_FIELDS) {
      if (p.compileLimits.default[field] > p.compileLimits.max[field]) {
        ctx.addIssue({
          code: "custom",
          path: ["compileLimits", "default", field],
          message: `is ${p.compileLimits.default[field]}, above compileLimits.max.${field} (${p.compileLimits.max[field]})`,
        });
      }
    }
    if (p.defaultLanguage !== undefined && !(p.defaultLanguage in p.languages)) {
      ctx.addIssue({
        code: "custom",
        path: ["defaultLanguage"],
        message: `names ${p.defaultLanguage}, which is not in languages`,
      });
    }
  });
export type Profile = z.infer<typeof Profile>;

/** A loaded profile plus the seccomp JSON it names, read once at start-up. */
export interface LoadedProfile extends Profile {
  seccompJson: string;
  /** Each language's version, read from the image's labels at start-up (images/versions.ts). */
  versions?: Readonly<Record<string, string>> | undefined;
}

/** Whether any of the profile's languages compiles. */
export function compiles(profile: Profile): boolean {
  return Object.values(profile.languages).some((l) => l.compile !== undefined);
}

/** Seccomp files are checked only for the shape Docker needs; the engine validates the rest. */
export const SeccompFile = z.looseObject({
  defaultAction: z.string().startsWith("SCMP_ACT_"),
  syscalls: z.array(z.looseObject({ action: z.string().startsWith("SCMP_ACT_") })),
});

/** The named profile, or not_found listing every profile. */
export function lookupProfile(profiles: ReadonlyMap<string, LoadedProfile>, name: string) {
  const profile = profiles.get(name);
  if (profile === undefined) {
    throw new AirlockError("not_found", `profile ${JSON.stringify(name)} does not exist`, {
      details: { profile: name, available: [...profiles.keys()] },
    });
  }
  return profile;
}
