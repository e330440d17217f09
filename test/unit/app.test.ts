import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createApp } from "../../api/app.ts";
import { hashKey } from "../../api/config.ts";
import { AirlockError } from "../../core/errors.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { loadProfiles } from "../../policies/load.ts";
import { FakeExecutor } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const KEY_A = "key-for-tenant-a-0123456789";
const KEY_B = "key-for-tenant-b-0123456789";
const profiles = loadProfiles();

function setup(options: { maxBodyBytes?: number; ping?: () => Promise<void> } = {}) {
  const executor = new FakeExecutor();
  const client = {
    ping: options.ping ?? (async () => {}),
    imagePresent: async () => true,
  } as unknown as ContainerClient;
  const app = createApp({
    executor,
    client,
    profiles,
    keys: [
      { tenant: "a", hash: hashKey(KEY_A) },
      { tenant: "b", hash: hashKey(KEY_B) },
    ],
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: {
      store: {} as WorkspaceStore,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state: tempState().state,
    instanceId: "unit",
  });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.request("/v1/exec", {
      method: "POST",
      headers: { authorization: `Bearer ${KEY_A}`, "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  return { app, executor, post };
}

describe("auth", () => {
  it.each([
    [{}, "missing Authorization header"],
    [{ authorization: "Basic abc" }, "must be: Bearer <key>"],
    [{ authorization: "Bearer wrong-key-0123456789" }, "not valid"],
  ])("refuses %j with 401", async (headers, message) => {
    const { app } = setup();
    const res = await app.request("/v1/profiles", { headers });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.message).toContain(message);
  });

  it("knows which tenant a key belongs to", async () => {
    const { executor, post } = setup();
    await post({ profile: "shell", command: "true" }, { authorization: `Bearer ${KEY_B}` });
    expect(executor.jobs[0]?.tenant).toBe("b");
  });

  it("leaves health endpoints open", async () => {
    const { app } = setup();
    expect((await app.request("/healthz")).status).toBe(200);
    expect((await app.request("/readyz")).status).toBe(200);
  });
});

describe("POST /v1/exec", () => {
  it("runs a valid request and returns the executor's result", async () => {
    const { executor, post } = setup();
    const res = await post({ profile: "python", code: "print(1)", limits: { timeoutMs: 2000 } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; stdout: string };
    expect(body).toMatchObject({ status: "ok", stdout: "hi\n" });
    expect(executor.jobs[0]?.limits.timeoutMs).toBe(2000);
    expect(executor.jobs[0]?.argv).toEqual(["python3", "main.py"]);
  });

  it.each([
    ["{ nope", "the body is not valid JSON"],
    [{ profile: "shell" }, "command: either command or code is required"],
    [{ profile: "shell", command: 42 }, "command:"],
    [{ profile: "shell", command: "x", extra: 1 }, 'Unrecognized key: "extra"'],
    [
      { profile: "shell", command: "x", limits: { memoryMb: 1e6 } },
      "limits.memoryMb is 1000000, above the maximum of 2048",
    ],
    [{ profile: "shell", command: "x", files: [{ path: "/etc/x", content: "" }] }, "files[0].path"],
  ])("answers 400 invalid_request for %j", async (body, message) => {
    const { executor, post } = setup();
    const res = await post(body);
    expect(res.status).toBe(400);
    const json = (await res.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe("invalid_request");
    expect(json.error.message).toContain(message);
    expect(executor.jobs).toHaveLength(0);
  });

  it("answers 404 for an unknown profile", async () => {
    const { post } = setup();
    const res = await post({ profile: "cobol", command: "x" });
    expect(res.status).toBe(404);
  });

  it("answers 413 for a body over the limit, by Content-Length and without it", async () => {
    const { post, app } = setup({ maxBodyBytes: 2048 });
    const big = { profile: "shell", command: "x".repeat(5000) };
    expect((await post(big)).status).toBe(413);
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(big)));
        controller.close();
      },
    });
    const res = await app.request("/v1/exec", {
      method: "POST",
      headers: { authorization: `Bearer ${KEY_A}`, "content-type": "application/json" },
      body: chunked,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "payload_too_large",
    );
  });

  it("passes busy through as 429 with Retry-After", async () => {
    const { executor, post } = setup();
    executor.behaviour = async () => {
      throw new AirlockError("busy", "the job queue is full", { retryAfterSeconds: 7 });
    };
    const res = await post({ profile: "shell", command: "x" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
  });

  it("hides unexpected failures behind a 500 internal", async () => {
    const { executor, post } = setup();
    executor.behaviour = async () => {
      throw new Error("secret detail");
    };
    const res = await post({ profile: "shell", command: "x" });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("secret detail");
  });

  it("streams output and the result as server-sent events", async () => {
    const { post } = setup();
    const res = await post(
      { profile: "shell", command: "echo hi" },
      { accept: "text/event-stream" },
    );
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await res.text();
    expect(text).toContain('event: stdout\ndata: "hi\\n"');
    expect(text).toMatch(/event: result\ndata: \{"id":/);
  });
});

describe("GET /v1/profiles", () => {
  it("lists profiles with defaults and maximums", async () => {
    const { app } = setup();
    const res = await app.request("/v1/profiles", {
      headers: { authorization: `Bearer ${KEY_A}` },
    });
    const body = (await res.json()) as {
      profiles: { name: string; limits: { max: { memoryMb: number } } }[];
    };
    expect(body.profiles.map((p) => p.name).sort()).toEqual([
      "c",
      "cpp",
      "csharp",
      "go",
      "java",
      "lua",
      "node",
      "perl",
      "php",
      "python",
      "python-data",
      "ruby",
      "rust",
      "shell",
    ]);
    expect(body.profiles[0]?.limits.max.memoryMb).toBeGreaterThan(0);
  });
});

describe("readiness", () => {
  it("is 503 when the engine does not answer", async () => {
    const { app } = setup({
      ping: async () => {
        throw new Error("connect ECONNREFUSED /var/run/docker.sock");
      },
    });
    const res = await app.request("/readyz");
    expect(res.status).toBe(503);
  });
});

describe("GET /dashboard", () => {
  it("is served without a key, its inline script and style allowed by a fresh nonce only", async () => {
    const { app } = setup();
    const res = await app.request("/dashboard");
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1] ?? "";
    expect(nonce).not.toBe("");
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe|\*/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(html.match(/<style\b[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    // Self-contained: nothing loaded from elsewhere, no inline handlers, no HTML built from data.
    expect(html).not.toMatch(/\bsrc=|\bhref=|\son[a-z]+=|innerHTML|outerHTML|insertAdjacentHTML/);
    const second = await app.request("/dashboard");
    expect(second.headers.get("content-security-policy")).not.toBe(csp);
  });
});
