// Piston's v2 API (GET /api/v2/runtimes, POST /api/v2/execute), so existing
// Piston clients work unchanged. It runs nothing itself: it translates to
// POST /v1/exec and calls this gateway's own HTTP API in-process with the
// caller's key, so auth and every policy of /v1 apply.
//
// Auth: Piston clients send no bearer key, but the ones built on fetch send the
// user-info of their server URL as HTTP Basic auth, so the key travels as the
// password of http://piston:<key>@host:port (README, SECURITY.md: why not a path).
import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "pino";
import semver from "semver";
import { z } from "zod";
import {
  AirlockApiError,
  type AirlockClient,
  type ApprovalPending,
  createClient,
  type ExecInput,
  type FetchLike,
} from "../../client/index.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import {
  type CompileStage,
  type ExecResult,
  type PistonExecuteRequest as PistonBody,
  PistonExecuteRequest,
  PistonExecuteResult,
  type PistonRuntime,
  PistonRuntimes,
  type PistonStage,
} from "../../core/schemas.ts";
import type { KeyGrant } from "../../policies/access/schema.ts";
import { type AuthEnv, findKey } from "../auth.ts";
import { errorResponses, json, PISTON_AUTH, PistonErrorBody, PistonHeldBody } from "../openapi.ts";
import { routesApp } from "../validate.ts";
import { IN_PROCESS_URL } from "./mcp.ts";

const runtimesRoute = createRoute({
  method: "get",
  path: "/api/v2/runtimes",
  summary: "Piston-compatible: the languages and versions this gateway runs",
  tags: ["piston"],
  security: PISTON_AUTH,
  responses: {
    200: json(PistonRuntimes, "runtimes"),
    ...errorResponses([401, 403, 429, 500, 503], PistonErrorBody),
  },
});

// The body is given as JSON Schema made from the zod schema, so no validator is
// attached: Piston clients built on node-fetch send JSON as text/plain, and every
// failure must answer in Piston's shape, so the handler reads and checks it itself.
const { $schema: _, ...executeBody } = z.toJSONSchema(PistonExecuteRequest, {
  target: "draft-2020-12",
  io: "input",
});

const executeRoute = createRoute({
  method: "post",
  path: "/api/v2/execute",
  summary: "Piston-compatible execute",
  tags: ["piston"],
  security: PISTON_AUTH,
  request: {
    body: {
      required: true,
      content: { "application/json": { schema: executeBody as { type: "object" } } },
    },
  },
  responses: {
    200: json(PistonExecuteResult, "Piston's result"),
    ...errorResponses([400, 401, 413, 423, 429, 500, 503], PistonErrorBody),
    403: json(
      z.union([PistonHeldBody, PistonErrorBody]),
      "forbidden (the key lacks the scope or profile), or the policy holds the job for an " +
        "admin's approval: then `approvalId` is set and the job has not run",
    ),
  },
});

/**
 * Piston language → airlock profile and its language, with Piston's own names
 * and aliases (its packages' metadata). Versions are not typed here: each is
 * the image's own (GET /v1/profiles `versions`, images/versions.ts).
 */
export interface PistonRuntimeSpec extends Omit<PistonRuntime, "version"> {
  profile: string;
  profileLanguage: string;
}

export const PISTON_RUNTIMES: readonly PistonRuntimeSpec[] = [
  {
    language: "python",
    aliases: ["py", "py3", "python3"],
    profile: "python",
    profileLanguage: "python",
  },
  {
    language: "javascript",
    aliases: ["node-javascript", "node-js", "js", "node"],
    runtime: "node",
    profile: "node",
    profileLanguage: "javascript",
  },
  {
    language: "typescript",
    aliases: ["ts", "node-ts"],
    runtime: "node",
    profile: "node",
    profileLanguage: "typescript",
  },
  { language: "bash", aliases: ["sh"], profile: "shell", profileLanguage: "bash" },
  { language: "c", aliases: ["gcc"], runtime: "gcc", profile: "c", profileLanguage: "c" },
  {
    language: "c++",
    aliases: ["cpp", "g++"],
    runtime: "gcc",
    profile: "cpp",
    profileLanguage: "cpp",
  },
  { language: "java", aliases: [], profile: "java", profileLanguage: "java" },
  { language: "go", aliases: ["go", "golang"], profile: "go", profileLanguage: "go" },
  { language: "rust", aliases: ["rs"], profile: "rust", profileLanguage: "rust" },
  {
    language: "csharp",
    aliases: ["mono", "mono-csharp", "mono-c#", "mono-cs", "c#", "cs"],
    runtime: "mono",
    profile: "csharp",
    profileLanguage: "csharp",
  },
  { language: "ruby", aliases: ["ruby3", "rb"], profile: "ruby", profileLanguage: "ruby" },
  { language: "php", aliases: [], profile: "php", profileLanguage: "php" },
  { language: "lua", aliases: [], profile: "lua", profileLanguage: "lua" },
  { language: "perl", aliases: ["pl"], profile: "perl", profileLanguage: "perl" },
];

/** A runtime as this gateway serves it: its version read from the profile's image. */
interface ServedRuntime extends PistonRuntimeSpec {
  version: string;
}

type PistonEnv = { Variables: AuthEnv["Variables"] & { pistonKey: string } };

class PistonError extends Error {
  readonly status: number;
  /** More fields beside `message` (a held job's approval). */
  readonly extra: Record<string, unknown>;
  constructor(status: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

/** The status of a job held for approval: not a 2xx, so no client reads it as a run with no output. */
export const PISTON_HELD_STATUS = 403;

/**
 * Piston has no approvals: a job the policy holds for a human is refused the
 * Piston way ({message}, non-2xx), with the approval's id in the message and
 * beside it, for GET /v1/approvals/:id?wait= with the same key.
 */
function heldForApproval(held: ApprovalPending): PistonError {
  const { approvalId, expiresAt, reasons } = held;
  return new PistonError(
    PISTON_HELD_STATUS,
    `the policy holds this job for an admin's approval (${reasons.join(", ")}); it has not run. ` +
      `Approval ${approvalId} is pending until ${expiresAt}: once approved, its result is at ` +
      `GET /v1/approvals/${approvalId}?wait=60 (the same key, as a Bearer token)`,
    { approvalId, status: "pending", expiresAt, reasons },
  );
}

/**
 * Runs the job streamed, so `output` keeps stdout and stderr in the order they
 * were written; a job held for approval throws heldForApproval's error.
 */
async function runStreamed(
  client: AirlockClient,
  request: ExecInput,
  signal: AbortSignal,
): Promise<{ result: ExecResult; out: StreamedOutput }> {
  const out: StreamedOutput = { stdout: "", stderr: "", output: "" };
  for await (const event of client.execStream(request, { signal })) {
    if (event.type === "result") return { result: event.result, out };
    if (event.type === "approval") throw heldForApproval(event.approval);
    out[event.type] += event.data;
    out.output += event.data;
  }
  throw new PistonError(500, "the job ended without a result");
}

/** Bearer <key>, or Basic with the key as password: checked here, forwarded as Bearer. */
function pistonAuth(keys: () => readonly KeyGrant[]): MiddlewareHandler<PistonEnv> {
  return async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    let key: string | undefined;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (bearer !== null) key = bearer[1];
    else if (basic !== null) {
      const decoded = Buffer.from(basic[1] as string, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      key = colon === -1 ? undefined : decoded.slice(colon + 1);
    }
    const grant = key === undefined || key === "" ? undefined : findKey(keys(), key);
    if (grant === undefined || key === undefined) {
      return c.json(
        {
          message:
            header === ""
              ? "missing credentials: put the API key in the server URL (http://piston:<key>@host:port) or send Authorization: Bearer <key>"
              : "the API key is not valid",
        },
        401,
        { "WWW-Authenticate": 'Basic realm="airlock piston"' },
      );
    }
    c.set("caller", { tenant: grant.tenant, keyId: grant.keyId, grant });
    c.set("pistonKey", key);
    await next();
    return undefined;
  };
}

function findRuntime(
  runtimes: readonly ServedRuntime[],
  language: string,
  version: string,
): ServedRuntime | undefined {
  return runtimes.find(
    (rt) =>
      (rt.language === language || rt.aliases.includes(language)) &&
      (version === rt.version || semver.satisfies(rt.version, version)),
  );
}

function decode(file: { content: string; encoding?: "utf8" | "base64" | "hex" | undefined }) {
  if (file.encoding === "hex") {
    return {
      content: Buffer.from(file.content, "hex").toString("base64"),
      encoding: "base64" as const,
    };
  }
  return { content: file.content, encoding: file.encoding ?? ("utf8" as const) };
}

export interface StreamedOutput {
  stdout: string;
  stderr: string;
  /** Both, in the order they were written. */
  output: string;
}

/**
 * Piston's run stage from an airlock result and the output as it was streamed
 * (a streamed result may keep only the head of each stream; the events carry it all).
 */
export function toPistonStage(r: ExecResult, out: StreamedOutput): PistonStage {
  const base = {
    ...out,
    memory: r.usage.memoryPeakBytes,
    cpu_time: r.usage.cpuMs,
    wall_time: r.durationMs,
  };
  switch (r.status) {
    case "ok":
      return { ...base, code: r.exitCode, signal: null, status: null, message: null };
    case "timeout":
      return {
        ...base,
        code: null,
        signal: "SIGKILL",
        status: "TO",
        message: "Time limit exceeded",
      };
    case "output_limit": {
      const stream = r.stdoutTruncated ? "stdout" : "stderr";
      return {
        ...base,
        code: null,
        signal: "SIGKILL",
        status: r.stdoutTruncated ? "OL" : "EL",
        message: `${stream} length exceeded`,
      };
    }
    case "oom":
      return {
        ...base,
        code: null,
        signal: r.signal ?? "SIGKILL",
        status: "SG",
        message: "Memory limit exceeded",
      };
    default:
      if (r.signal !== null) {
        return {
          ...base,
          code: null,
          signal: r.signal,
          status: "SG",
          message: `Caught fatal signal ${r.signal}`,
        };
      }
      return {
        ...base,
        code: r.exitCode,
        signal: null,
        status: "RE",
        message: `Exited with error status ${r.exitCode}`,
      };
  }
}

/** An image without a version label (an operator's own): Piston clients still need a semver. */
const UNKNOWN_VERSION = "0.0.0";

async function visibleRuntimes(client: AirlockClient, signal: AbortSignal) {
  const { profiles } = await client.profiles({ signal });
  const names = new Map(profiles.map((p) => [p.name, p]));
  const runtimes: ServedRuntime[] = [];
  for (const rt of PISTON_RUNTIMES) {
    const profile = names.get(rt.profile);
    if (profile?.languages.includes(rt.profileLanguage) !== true) continue;
    runtimes.push({ ...rt, version: profile.versions?.[rt.profileLanguage] ?? UNKNOWN_VERSION });
  }
  return { runtimes, profiles: names };
}

/** Piston's compile stage from airlock's (Piston reports no usage for it here). */
export function toPistonCompileStage(c: CompileStage): PistonStage {
  const base = {
    stdout: c.stdout,
    stderr: c.stderr,
    output: c.stdout + c.stderr,
    memory: null,
    cpu_time: null,
    wall_time: c.durationMs,
  };
  switch (c.status) {
    case "ok":
      return { ...base, code: c.exitCode, signal: null, status: null, message: null };
    case "timeout":
      return {
        ...base,
        code: null,
        signal: "SIGKILL",
        status: "TO",
        message: "Time limit exceeded",
      };
    case "oom":
      return {
        ...base,
        code: null,
        signal: "SIGKILL",
        status: "SG",
        message: "Memory limit exceeded",
      };
    default:
      return {
        ...base,
        code: c.exitCode,
        signal: null,
        status: "RE",
        message: `Exited with error status ${c.exitCode}`,
      };
  }
}

type Maximum = { timeoutMs: number; memoryMb: number };

/** Piston's `ms`/`bytes` limits (-1 or absent: the profile's default) as airlock's, refused past the maximum. */
function stageLimits(
  timeout: number | undefined,
  memory: number | undefined,
  max: Maximum,
  stage: "run" | "compile",
): { timeoutMs?: number; memoryMb?: number } {
  const limits: { timeoutMs?: number; memoryMb?: number } = {};
  if (timeout !== undefined && timeout > 0) {
    if (timeout > max.timeoutMs) {
      throw new PistonError(
        400,
        `${stage}_timeout cannot exceed the configured limit of ${max.timeoutMs}`,
      );
    }
    limits.timeoutMs = Math.max(100, Math.ceil(timeout));
  }
  if (memory !== undefined && memory > 0) {
    const mb = Math.ceil(memory / (1024 * 1024));
    if (mb > max.memoryMb) {
      throw new PistonError(
        400,
        `${stage}_memory_limit cannot exceed the configured limit of ${max.memoryMb * 1024 * 1024}`,
      );
    }
    limits.memoryMb = Math.max(16, mb);
  }
  return limits;
}

/** The run's limits, and a compiled language's compile limits (undefined: its defaults, or not compiled). */
function pistonLimits(
  body: PistonBody,
  max: Maximum,
  profile: { compileLimits?: { max: Maximum } | undefined } | undefined,
) {
  const limits = stageLimits(body.run_timeout, body.run_memory_limit, max, "run");
  const compileMax = profile?.compileLimits?.max;
  if (compileMax === undefined) return { limits, compileLimits: undefined };
  const compile = stageLimits(
    body.compile_timeout,
    body.compile_memory_limit,
    compileMax,
    "compile",
  );
  return { limits, compileLimits: Object.keys(compile).length === 0 ? undefined : compile };
}

export interface PistonRouteDeps {
  /** Read on every request, so a policy reload takes effect at once. */
  keys: () => readonly KeyGrant[];
  profiles: ReadonlyMap<string, LoadedProfile>;
  fetch: FetchLike;
  logger: Logger;
}

export function pistonRoutes(deps: PistonRouteDeps) {
  const app = routesApp<PistonEnv>();
  app.use("/api/v2/*", pistonAuth(deps.keys));
  // The same request id: the inner /v1 calls' log and audit lines join this request's.
  const clientFor = (key: string, requestId: string) =>
    createClient({
      baseUrl: IN_PROCESS_URL,
      apiKey: key,
      headers: { "x-request-id": requestId },
      fetch: deps.fetch,
    });
  const keyOf = (c: { get(k: "pistonKey"): string }) => c.get("pistonKey");

  app.openapi(runtimesRoute, async (c) => {
    const { runtimes } = await visibleRuntimes(
      clientFor(keyOf(c), c.get("requestId")),
      c.req.raw.signal,
    );
    return c.json(
      runtimes.map(({ language, version, aliases, runtime }) => ({
        language,
        version,
        aliases,
        ...(runtime === undefined ? {} : { runtime }),
      })),
    );
  });

  app.openapi(executeRoute, async (c) => {
    // Piston clients built on node-fetch send JSON as text/plain: read it whatever the type says.
    let raw: unknown;
    try {
      raw = JSON.parse(await c.req.text());
    } catch {
      throw new PistonError(400, "the body must be a JSON object");
    }
    const parsed = PistonExecuteRequest.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      // Piston's own wording for a missing field, e.g. "version is required as a string".
      if (issue?.code === "invalid_type" && issue.input === undefined) {
        const article = issue.expected === "array" || issue.expected === "object" ? "an" : "a";
        throw new PistonError(
          400,
          `${issue.path.join(".")} is required as ${article} ${issue.expected}`,
        );
      }
      throw new PistonError(
        400,
        issue === undefined
          ? "invalid request"
          : `${issue.path.join(".") || "body"}: ${issue.message}`,
      );
    }
    const body: PistonBody = parsed.data;
    const client = clientFor(keyOf(c), c.get("requestId"));
    const { runtimes, profiles } = await visibleRuntimes(client, c.req.raw.signal);
    const rt = findRuntime(runtimes, body.language, body.version);
    if (rt === undefined)
      throw new PistonError(400, `${body.language}-${body.version} runtime is unknown`);
    const spec = deps.profiles.get(rt.profile)?.languages[rt.profileLanguage];
    const max = profiles.get(rt.profile)?.limits.max;
    if (spec === undefined || max === undefined) {
      throw new PistonError(400, `${body.language}-${body.version} runtime is unknown`);
    }
    const { limits, compileLimits } = pistonLimits(body, max, profiles.get(rt.profile));
    const [main, ...rest] = body.files;
    if (main === undefined) throw new PistonError(400, "files is required as an array");
    const files = [
      { path: spec.file, ...decode(main) },
      ...rest.map((f, i) => ({ path: f.name ?? `file${i + 1}.code`, ...decode(f) })),
    ];
    const { result, out } = await runStreamed(
      client,
      {
        profile: rt.profile,
        language: rt.profileLanguage,
        ...(body.args === undefined ? {} : { args: body.args }),
        files,
        ...(body.stdin === undefined ? {} : { stdin: body.stdin }),
        ...(Object.keys(limits).length === 0 ? {} : { limits }),
        ...(compileLimits === undefined ? {} : { compileLimits }),
      },
      c.req.raw.signal,
    );
    const { language, version } = rt;
    // As Piston: a compiled language answers its compile stage, and no run stage when it failed.
    if (result.compile === undefined) {
      return c.json({ language, version, run: toPistonStage(result, out) }, 200);
    }
    const compile = toPistonCompileStage(result.compile);
    if (result.status === "compile_error") return c.json({ language, version, compile }, 200);
    return c.json({ language, version, compile, run: toPistonStage(result, out) }, 200);
  });

  // Piston answers every failure as {message}; keep the status (and Retry-After) of the gateway's.
  app.onError((err, c) => {
    if (err instanceof PistonError) {
      return c.json({ message: err.message, ...err.extra }, err.status as 400);
    }
    if (err instanceof AirlockApiError) {
      if (err.retryAfterSeconds !== undefined)
        c.header("Retry-After", String(err.retryAfterSeconds));
      return c.json({ message: err.message }, err.status as 400);
    }
    deps.logger.error({ err, requestId: c.get("requestId") }, "piston request failed");
    return c.json({ message: "airlock failed to handle the request" }, 500);
  });
  return app;
}
