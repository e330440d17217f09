// Property-based fuzzing of the HTTP API (fast-check), route by route, taken
// from the gateway's own /openapi.json so that a new route is fuzzed without
// this file changing. Generated paths, query strings, headers, JSON bodies
// (random, and near-valid ones that reach the engine), raw bytes and tar
// archives (hostile names, links, devices) go to a real gateway on the real
// engine. The invariants: never a 5xx, every error in the documented shape
// with the status its code maps to, and nothing left on the engine.
//
// Every request uses the agent's key or a bad one, never an admin key: an
// emergency stop is a marker on the shared engine, and a fuzzed "stop
// everything" would stop the other test files' gateways.
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../core/errors.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { makeTar, type TarEntry } from "../support/tar.ts";

interface Operation {
  method: string;
  /** OpenAPI form: /v1/workspaces/{id}. */
  path: string;
  query: string[];
  bodyTypes: string[];
}

/** Runs per operation (more where a body can reach the engine): about a minute in all on two cores. */
const RUNS = 10;
const RUNS_WITH_BODY = 30;
const SEED = Number(process.env["AIRLOCK_FUZZ_SEED"] ?? Date.now() % 2 ** 31);

let gw: TestGateway;
let workspace: string;
let operations: Operation[] = [];
const created = new Set<string>();

beforeAll(async () => {
  gw = await startGateway({ concurrency: 2, poolMin: 1, poolMax: 1, maxBodyBytes: 256 * 1024 });
  await newWorkspace();
  const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, OpenApiOperation>>;
  };
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
      bodyTypes: Object.keys(op.requestBody?.content ?? {}),
    })),
  );
});
afterAll(async () => {
  for (const id of created) await gw.call(gw.key, "DELETE", `/v1/workspaces/${id}`);
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function newWorkspace(): Promise<void> {
  const made = await gw.post("/v1/workspaces", {
    profile: "shell",
    files: [{ path: "ok.txt", content: "hi" }],
  });
  workspace = ((await made.json()) as { id: string }).id;
  created.add(workspace);
}

interface OpenApiOperation {
  parameters?: { in: string; name: string }[];
  requestBody?: { content?: Record<string, unknown> };
}

// ---- generators ---------------------------------------------------------------------------

const hostilePath = fc.constantFrom(
  "../etc/passwd",
  "a/../../b",
  "/etc/shadow",
  "./",
  "",
  ".",
  "a\u0000b",
  "a\\b",
  "%2e%2e/x",
  "x".repeat(300),
  `${"d/".repeat(200)}f`,
  "ok.txt",
  "dir/file.txt",
  "😀/é",
);
const text = fc.oneof(fc.string({ maxLength: 64 }), hostilePath);
const smallInt = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.integer(), fc.double());

const safeArgv = fc.oneof(
  fc.constant(["true"]),
  fc.tuple(fc.constant("echo"), fc.string({ maxLength: 20 })),
  fc.constant(["ls", "-la"]),
  fc.tuple(fc.constant("cat"), hostilePath),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
);

const fileInput = fc.record(
  {
    path: text,
    content: fc.string({ maxLength: 100 }),
    encoding: fc.constantFrom("utf8", "base64", "hex", 7),
    mode: fc.constantFrom("644", "0755", "999", "x", 420),
  },
  { requiredKeys: ["path", "content"] },
);

/** Any exec-like field, valid or not: what a careless or hostile client sends. */
const execFields = fc.record(
  {
    profile: fc.constantFrom("shell", "python", "node", "nope", ""),
    command: fc.oneof(safeArgv, fc.string({ maxLength: 30 }), fc.constant([])),
    code: fc.string({ maxLength: 30 }),
    language: fc.constantFrom("python", "bash", "cobol"),
    stdin: fc.string({ maxLength: 50 }),
    env: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    files: fc.array(fileInput, { maxLength: 3 }),
    workdir: text,
    limits: fc.record(
      {
        timeoutMs: fc.oneof(smallInt, fc.constant(2000)),
        memoryMb: smallInt,
        cpus: smallInt,
        pids: smallInt,
        outputBytes: smallInt,
      },
      { requiredKeys: [] },
    ),
    returnFiles: fc.array(fc.oneof(fc.constant("**"), text), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

/** A request that passes validation and runs, so the engine side is fuzzed too. */
const validExec = fc.record(
  {
    profile: fc.constant("shell"),
    command: fc.oneof(
      fc.constant(["true"]),
      fc.tuple(fc.constant("echo"), fc.string({ maxLength: 20 })),
      fc.constant("ls -la; echo x > out.txt"),
    ),
    stdin: fc.string({ maxLength: 50 }),
    files: fc.array(
      fc.record({ path: fc.constantFrom("a.txt", "d/b.txt", "😀.txt"), content: fc.string() }),
      { maxLength: 2 },
    ),
    limits: fc.record({ timeoutMs: fc.integer({ min: 500, max: 5000 }) }, { requiredKeys: [] }),
    returnFiles: fc.constant(["**"]),
  },
  { requiredKeys: ["profile", "command"] },
);

/** Valid requests, valid ones with one field replaced, and anything exec-shaped. */
const execBody = fc.oneof(
  { weight: 3, arbitrary: validExec },
  {
    weight: 2,
    arbitrary: fc.tuple(validExec, execFields).map(([valid, wild]) => {
      const [field, value] = Object.entries(wild)[0] ?? ["limits", {}];
      return { ...valid, [field]: value };
    }),
  },
  { weight: 1, arbitrary: execFields },
);

/** The same, for a workspace's exec, which takes no profile (the workspace has one). */
const workspaceExecBody = execBody.map((body) => {
  const { profile: _profile, ...rest } = body as Record<string, unknown>;
  return rest;
});

const wildPiston = fc.record(
  {
    language: fc.constantFrom("python", "bash", "js", "typescript", "brainfuck", ""),
    version: fc.constantFrom("*", "3", "x.y", ""),
    files: fc.array(fc.record({ name: text, content: fc.string({ maxLength: 40 }) }), {
      maxLength: 2,
    }),
    stdin: fc.string({ maxLength: 20 }),
    args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }),
    run_timeout: smallInt,
    run_memory_limit: smallInt,
  },
  { requiredKeys: [] },
);
const validPiston = fc.record(
  {
    language: fc.constantFrom("python", "bash"),
    version: fc.constant("*"),
    files: fc.constantFrom([{ content: "print(1)" }], [{ name: "a.sh", content: "echo hi" }]),
    stdin: fc.string({ maxLength: 20 }),
    args: fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 }),
    run_timeout: fc.integer({ min: 500, max: 3000 }),
  },
  { requiredKeys: ["language", "version", "files"] },
);
const pistonBody = fc.oneof({ weight: 2, arbitrary: validPiston }, wildPiston);

const createBody = fc.oneof(
  fc.record(
    { profile: fc.constantFrom("shell", "python"), files: fc.array(fileInput, { maxLength: 2 }) },
    { requiredKeys: [] },
  ),
  execFields,
);

const mcpBody = fc.record({
  jsonrpc: fc.constantFrom("2.0", "1.0"),
  id: fc.oneof(fc.integer(), fc.string({ maxLength: 5 })),
  method: fc.constantFrom("tools/call", "tools/list", "initialize", "nope"),
  params: fc.record(
    {
      name: fc.constantFrom("exec", "read_file", "write_file", "list_files", "workspace_exec", "x"),
      arguments: fc.oneof(execBody, fc.jsonValue()),
    },
    { requiredKeys: [] },
  ),
});

const tarEntry: fc.Arbitrary<TarEntry> = fc.record({
  name: hostilePath,
  type: fc.constantFrom("file", "directory", "symlink", "link", "fifo", "character-device"),
  linkname: hostilePath,
  mode: fc.constantFrom(0o644, 0o4755, 0o777),
});
const tarBody = fc
  .array(tarEntry, { maxLength: 6 })
  .map((entries) => entries.map((e) => (e.type === "file" ? { ...e, body: "x" } : e)));

type Body =
  | { kind: "json"; value: unknown }
  | { kind: "bytes"; value: Uint8Array }
  | { kind: "tar"; value: TarEntry[] }
  | { kind: "none" };

function bodyFor(op: Operation): fc.Arbitrary<Body> {
  const json = (shaped: fc.Arbitrary<unknown>) =>
    fc
      .oneof({ weight: 4, arbitrary: shaped }, { weight: 1, arbitrary: fc.jsonValue() })
      .map((value): Body => ({ kind: "json", value }));
  const bytes = fc.uint8Array({ maxLength: 2048 }).map((value): Body => ({ kind: "bytes", value }));
  if (op.bodyTypes.includes("application/x-tar")) {
    return fc.oneof(
      tarBody.map((value): Body => ({ kind: "tar", value })),
      bytes,
    );
  }
  if (op.bodyTypes.includes("application/octet-stream")) return bytes;
  if (op.path === "/mcp") return json(mcpBody);
  if (op.path.startsWith("/api/v2")) return json(pistonBody);
  if (op.path === "/v1/workspaces") return json(createBody);
  if (op.bodyTypes.length === 0) return fc.constant({ kind: "none" });
  const shaped = op.path.endsWith("/{id}/exec") ? workspaceExecBody : execBody;
  return fc.oneof({ weight: 4, arbitrary: json(shaped) }, { weight: 1, arbitrary: bytes });
}

const request = (op: Operation) =>
  fc.record({
    id: fc.oneof({ weight: 4, arbitrary: fc.constant("WORKSPACE") }, text, fc.uuid()),
    query: fc.dictionary(fc.constantFrom(...op.query, "extra", "path"), text, { maxKeys: 3 }),
    auth: fc.oneof(
      { weight: 6, arbitrary: fc.constant("key") },
      fc.constantFrom("none", "wrong", "basic"),
    ),
    // MCP wants both types; an exec with text/event-stream answers as SSE.
    accept: fc.constantFrom(
      "application/json, text/event-stream",
      "application/json, text/event-stream",
      "application/json",
      "text/event-stream",
      "*/*",
    ),
    // The route's own type most of the time, so bodies get past the content-type check.
    contentType: fc.oneof(
      { weight: 3, arbitrary: fc.constant(op.bodyTypes[0] ?? "application/json") },
      fc.constantFrom("application/json", "text/plain", "application/x-tar", ""),
    ),
    body: bodyFor(op),
  });

// ---- sending and judging ------------------------------------------------------------------

function url(op: Operation, id: string, query: Record<string, string>): string {
  const path = op.path.replace("{id}", encodeURIComponent(id === "WORKSPACE" ? workspace : id));
  const qs = new URLSearchParams(query).toString();
  return `${gw.url}${path}${qs === "" ? "" : `?${qs}`}`;
}

async function send(op: Operation, r: Generated): Promise<Response> {
  const headers: Record<string, string> = { accept: r.accept };
  if (r.contentType !== "") headers["content-type"] = r.contentType;
  if (r.auth === "key") headers["authorization"] = `Bearer ${gw.key}`;
  if (r.auth === "wrong") headers["authorization"] = `Bearer wrong-${randomUUID()}`;
  if (r.auth === "basic")
    headers["authorization"] = `Basic ${Buffer.from(`x:${gw.key}`).toString("base64")}`;
  let body: string | Uint8Array | undefined;
  if (r.body.kind === "json") body = JSON.stringify(r.body.value);
  else if (r.body.kind === "bytes") body = r.body.value;
  else if (r.body.kind === "tar") body = new Uint8Array(await makeTar(r.body.value));
  return fetch(url(op, r.id, r.query), {
    method: op.method,
    headers,
    ...(body === undefined || op.method === "GET" ? {} : { body }),
    signal: AbortSignal.timeout(30_000),
  });
}

type Generated = {
  id: string;
  query: Record<string, string>;
  auth: string;
  accept: string;
  contentType: string;
  body: Body;
};

/** The documented error shape for the route's family, with the status its code maps to. */
function expectDocumentedError(op: Operation, status: number, raw: string): void {
  const where = `${op.method} ${op.path} → ${status}: ${raw.slice(0, 300)}`;
  if (op.path.startsWith("/api/v2")) {
    const body = JSON.parse(raw) as { message?: unknown };
    expect(typeof body.message, where).toBe("string");
    return;
  }
  if (op.path === "/mcp") {
    const body = JSON.parse(raw) as { error?: { message?: unknown } };
    expect(typeof body.error?.message, where).toBe("string");
    return;
  }
  const body = JSON.parse(raw) as { error?: { code?: string; message?: unknown } };
  const code = body.error?.code ?? "";
  expect(Object.keys(ERROR_STATUS), where).toContain(code);
  expect(ERROR_STATUS[code as keyof typeof ERROR_STATUS], where).toBe(status);
  expect(typeof body.error?.message === "string" && body.error.message.length > 0, where).toBe(
    true,
  );
}

/** Answers per "METHOD path status", to show the fuzzing got past validation. */
const tally = new Map<string, number>();

async function judge(op: Operation, res: Response): Promise<void> {
  const raw = await res.text();
  const key = `${op.method} ${op.path} ${res.status}`;
  tally.set(key, (tally.get(key) ?? 0) + 1);
  expect(
    res.status,
    `${op.method} ${op.path} answered ${res.status}: ${raw.slice(0, 300)}`,
  ).toBeLessThan(500);
  if (res.status >= 400 && res.status !== 405) expectDocumentedError(op, res.status, raw);
  if (op.method === "POST" && op.path === "/v1/workspaces" && res.status === 201) {
    created.add((JSON.parse(raw) as { id: string }).id);
  }
  // A fork that went through made workspaces of its own, which go at the end too.
  if (op.method === "POST" && op.path === "/v1/workspaces/{id}/fork" && res.status === 201) {
    for (const w of (JSON.parse(raw) as { workspaces: { id: string }[] }).workspaces) {
      created.add(w.id);
    }
  }
}

describe("the HTTP API under generated input", () => {
  it("never answers 5xx, answers every error in the documented shape, leaves nothing behind", async () => {
    expect(operations.length).toBeGreaterThan(20);
    for (const op of operations) {
      await fc.assert(
        fc.asyncProperty(request(op), async (r) => {
          const res = await send(op, r);
          await judge(op, res);
          // A fuzzed DELETE may remove the shared workspace: the next runs get a new one.
          if (op.method === "DELETE" && op.path === "/v1/workspaces/{id}" && res.status === 204) {
            if (r.id === "WORKSPACE") await newWorkspace();
          }
        }),
        {
          numRuns: op.bodyTypes.length > 0 ? RUNS_WITH_BODY : RUNS,
          seed: SEED,
          endOnFailure: true,
        },
      );
    }
    console.log(
      [...tally]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join("\n"),
    );
  }, 300_000);
});
