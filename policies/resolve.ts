// request + profile → Job. Everything the caller chose is checked against what
// the profile allows: limits above its maximum are refused (never clamped),
// paths and env names are validated, code is turned into a file and an argv.
import { randomUUID } from "node:crypto";
import { AirlockError } from "../core/errors.ts";
import type { Job, JobFile, WorkspaceRef } from "../core/job.ts";
import { safeRelativePath } from "../core/paths.ts";
import {
  COMPILE_LIMIT_FIELDS,
  type CompileLimits,
  type Language,
  LIMIT_FIELDS,
  type Limits,
  type LoadedProfile,
  lookupProfile,
} from "../core/profile.ts";
import type { ExecRequest } from "../core/schemas.ts";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_STDIN_BYTES = 16 * 1024 * 1024;

export function resolveLimits(
  profile: LoadedProfile,
  requested: Partial<Record<keyof Limits, number | undefined>> = {},
): Limits {
  const limits = { ...profile.limits.default };
  for (const field of LIMIT_FIELDS) {
    const value = requested[field];
    if (value === undefined) continue;
    const max = profile.limits.max[field];
    if (value > max) {
      throw new AirlockError(
        "invalid_request",
        `limits.${field} is ${value}, above the maximum of ${max} for profile ${profile.name}`,
        { details: { field: `limits.${field}`, value, maximum: max } },
      );
    }
    limits[field] = value;
  }
  return limits;
}

/** A compiled language's compile limits: the profile's defaults, or what was asked within its maximum. */
export function resolveCompileLimits(
  profile: LoadedProfile,
  requested: Partial<Record<keyof CompileLimits, number | undefined>> = {},
): CompileLimits {
  const limits = { ...profile.compileLimits.default };
  for (const field of COMPILE_LIMIT_FIELDS) {
    const value = requested[field];
    if (value === undefined) continue;
    const max = profile.compileLimits.max[field];
    if (value > max) {
      throw new AirlockError(
        "invalid_request",
        `compileLimits.${field} is ${value}, above the maximum of ${max} for profile ${profile.name}`,
        { details: { field: `compileLimits.${field}`, value, maximum: max } },
      );
    }
    limits[field] = value;
  }
  return limits;
}

function resolveEnv(profile: LoadedProfile, env: Record<string, string> = {}) {
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) {
      throw new AirlockError(
        "invalid_request",
        `env name ${JSON.stringify(name)} is not a valid variable name`,
        {
          details: { field: "env", name },
        },
      );
    }
    if (value.includes("\0")) {
      throw new AirlockError("invalid_request", `env ${name} contains a NUL byte`, {
        details: { field: "env", name },
      });
    }
  }
  return { ...profile.env, ...env };
}

export function decodeFiles(files: ExecRequest["files"] = []): JobFile[] {
  const seen = new Set<string>();
  return files.map((file, i) => {
    const path = safeRelativePath(file.path, `files[${i}].path`);
    if (seen.has(path)) {
      throw new AirlockError(
        "invalid_request",
        `files[${i}].path ${JSON.stringify(path)} is given twice`,
        {
          details: { field: `files[${i}].path` },
        },
      );
    }
    seen.add(path);
    const content =
      file.encoding === "base64"
        ? decodeBase64(file.content, `files[${i}].content`)
        : Buffer.from(file.content, "utf8");
    return { path, content, mode: file.mode === undefined ? 0o644 : Number.parseInt(file.mode, 8) };
  });
}

function decodeBase64(text: string, field: string): Buffer {
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(text)) {
    throw new AirlockError("invalid_request", `${field} is not valid base64`, {
      details: { field },
    });
  }
  return Buffer.from(text, "base64");
}

interface Resolved {
  argv: string[];
  /** Set when the code is in one of the profile's languages. */
  language?: Language | undefined;
}

function resolveCommand(profile: LoadedProfile, body: ExecRequest, files: JobFile[]): Resolved {
  if (body.command !== undefined) {
    if (typeof body.command === "string") return { argv: ["/bin/sh", "-c", body.command] };
    body.command.forEach((arg, i) => {
      if (arg.includes("\0")) {
        throw new AirlockError("invalid_request", `command[${i}] contains a NUL byte`, {
          details: { field: `command[${i}]` },
        });
      }
    });
    if (body.command[0] === "") {
      throw new AirlockError("invalid_request", "command[0] is empty", {
        details: { field: "command[0]" },
      });
    }
    return { argv: [...body.command] };
  }
  const name = body.language ?? profile.defaultLanguage ?? Object.keys(profile.languages)[0];
  const language = name === undefined ? undefined : profile.languages[name];
  if (name === undefined || language === undefined) {
    throw new AirlockError(
      "invalid_request",
      `profile ${profile.name} does not run language ${JSON.stringify(name)}; it runs ${Object.keys(profile.languages).join(", ") || "no languages"}`,
      { details: { field: "language", languages: Object.keys(profile.languages) } },
    );
  }
  const given = files.some((f) => f.path === language.file);
  if (body.code === undefined && !given) {
    throw new AirlockError(
      "invalid_request",
      `language ${name} without code needs its file ${language.file} in files`,
      { details: { field: "files", file: language.file } },
    );
  }
  if (body.code !== undefined && given) {
    throw new AirlockError(
      "invalid_request",
      `files already has ${language.file}, where code would be written`,
      {
        details: { field: "files" },
      },
    );
  }
  if (body.code !== undefined) {
    files.push({ path: language.file, content: Buffer.from(body.code, "utf8"), mode: 0o644 });
  }
  return { argv: [...language.command, ...(body.args ?? [])], language };
}

export function resolveJob(
  profiles: ReadonlyMap<string, LoadedProfile>,
  body: ExecRequest,
  tenant: string,
  workspace?: WorkspaceRef,
): Job {
  const profile = lookupProfile(profiles, body.profile);
  const limits = resolveLimits(profile, body.limits);
  const files = decodeFiles(body.files);
  const { argv, language } = resolveCommand(profile, body, files);
  if (body.compileLimits !== undefined && language?.compile === undefined) {
    throw new AirlockError(
      "invalid_request",
      "compileLimits apply only to a compiled language's code (GET /v1/profiles: compileLimits)",
      { details: { field: "compileLimits" } },
    );
  }
  const compile =
    language?.compile === undefined
      ? undefined
      : { argv: [...language.compile], limits: resolveCompileLimits(profile, body.compileLimits) };
  const workdir = body.workdir === undefined ? "" : safeRelativePath(body.workdir, "workdir");
  const stdin = Buffer.from(body.stdin ?? "", "utf8");
  if (stdin.length > MAX_STDIN_BYTES) {
    throw new AirlockError("invalid_request", `stdin is larger than ${MAX_STDIN_BYTES} bytes`, {
      details: { field: "stdin" },
    });
  }
  return {
    id: randomUUID(),
    tenant,
    profile,
    argv,
    stdin,
    env: resolveEnv(profile, body.env),
    files,
    workdir,
    limits,
    compile,
    returnFiles: body.returnFiles ?? [],
    workspace,
  };
}
