import { describe, expect, it } from "vitest";
import { PISTON_HELD_STATUS, toPistonStage } from "../../api/routes/piston.ts";
import { FAKE_KEY, fakeApp, GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

const basic = (key: string) => `Basic ${Buffer.from(`piston:${key}`).toString("base64")}`;

function post(
  app: { request: ReturnType<typeof fakeApp>["app"]["request"] },
  body: unknown,
  auth = basic(FAKE_KEY),
) {
  // As piston-client sends it: JSON with node-fetch's text/plain content type.
  return app.request("/api/v2/execute", {
    method: "POST",
    headers: { authorization: auth, "content-type": "text/plain;charset=UTF-8" },
    body: JSON.stringify(body),
  });
}

describe("Piston adapter", () => {
  it("lists runtimes with Basic auth carrying the key", async () => {
    const { app } = fakeApp();
    const res = await app.request("/api/v2/runtimes", {
      headers: { authorization: basic(FAKE_KEY) },
    });
    expect(res.status).toBe(200);
    const runtimes = (await res.json()) as { language: string }[];
    expect(runtimes.map((r) => r.language)).toEqual([
      "python",
      "javascript",
      "typescript",
      "bash",
      "c",
      "c++",
      "java",
      "go",
      "rust",
      "csharp",
      "ruby",
      "php",
      "lua",
      "perl",
    ]);
  });

  it("refuses a missing or wrong key with Piston's {message} and 401", async () => {
    const { app } = fakeApp();
    const none = await app.request("/api/v2/runtimes");
    expect(none.status).toBe(401);
    expect(((await none.json()) as { message: string }).message).toContain("missing credentials");
    const wrong = await post(app, {}, basic("wrong-key-0123456789"));
    expect(wrong.status).toBe(401);
    const odd = await post(app, {}, basic("%zz:not-a-key"));
    expect(odd.status).toBe(401);
    const bearer = await app.request("/api/v2/runtimes", {
      headers: { authorization: `Bearer ${FAKE_KEY}` },
    });
    expect(bearer.status).toBe(200);
  });

  it("maps language, version, files, args, stdin and run_timeout to a /v1/exec job", async () => {
    const { app, executor } = fakeApp();
    const res = await post(app, {
      language: "py",
      version: "3",
      files: [
        { name: "a.py", content: "print(1)" },
        { name: "lib.py", content: "x=1" },
      ],
      stdin: "in",
      args: ["1", "2"],
      run_timeout: 3000,
      run_memory_limit: -1,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { language: string; version: string; run: unknown };
    expect(body).toMatchObject({
      language: "python",
      version: "3.11.2",
      run: { stdout: "hi\n", output: "hi\n", code: 0, signal: null, status: null },
    });
    expect(body).not.toHaveProperty("compile");
    const job = executor.jobs[0];
    expect(job?.argv).toEqual(["python3", "main.py", "1", "2"]);
    expect(job?.files.map((f) => [f.path, f.content.toString()])).toEqual([
      ["main.py", "print(1)"],
      ["lib.py", "x=1"],
    ]);
    expect(job?.stdin.toString()).toBe("in");
    expect(job?.limits.timeoutMs).toBe(3000);
  });

  it("answers Piston's 400 messages for an unknown runtime and a timeout above the maximum", async () => {
    const { app } = fakeApp();
    const unknown = await post(app, { language: "cobol", version: "*", files: [{ content: "" }] });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ message: "cobol-* runtime is unknown" });
    const noVersion = await post(app, { language: "python", files: [{ content: "" }] });
    expect(await noVersion.json()).toEqual({ message: "version is required as a string" });
    const noFiles = await post(app, { language: "python", version: "3" });
    expect(await noFiles.json()).toEqual({ message: "files is required as an array" });
    const badVersion = await post(app, {
      language: "python",
      version: "2",
      files: [{ content: "" }],
    });
    expect(await badVersion.json()).toEqual({ message: "python-2 runtime is unknown" });
    const tooLong = await post(app, {
      language: "bash",
      version: "*",
      files: [{ content: "" }],
      run_timeout: 10_000_000,
    });
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as { message: string }).message).toMatch(
      /^run_timeout cannot exceed the configured limit of \d+$/,
    );
  });

  it("maps airlock statuses to Piston's", () => {
    const base = okResult("j");
    const out = { stdout: "", stderr: "", output: "" };
    expect(
      toPistonStage({ ...base, status: "timeout", exitCode: 137, signal: "SIGKILL" }, out),
    ).toMatchObject({
      status: "TO",
      code: null,
      signal: "SIGKILL",
      message: "Time limit exceeded",
    });
    expect(toPistonStage({ ...base, status: "error", exitCode: 3 }, out)).toMatchObject({
      status: "RE",
      code: 3,
      signal: null,
    });
    expect(
      toPistonStage({ ...base, status: "output_limit", stderrTruncated: true }, out),
    ).toMatchObject({ status: "EL", signal: "SIGKILL" });
  });
});

describe("Piston adapter: a job held for approval", () => {
  const SLOW = {
    language: "bash",
    version: "*",
    files: [{ content: "echo hi" }],
    run_timeout: 9000,
  };

  it("answers Piston's {message} with a non-2xx status, the approval id in it and beside it", async () => {
    const { app, executor } = gatedApp();
    const res = await post(app, SLOW);
    expect(res.status).toBe(PISTON_HELD_STATUS);
    expect(PISTON_HELD_STATUS).toBe(403);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      message: expect.stringContaining("the policy holds this job for an admin's approval"),
      approvalId: expect.stringMatching(/^apr_/),
      status: "pending",
      expiresAt: expect.any(String),
      reasons: ["jobsOverSeconds"],
    });
    expect(body["message"]).toContain(`GET /v1/approvals/${body["approvalId"]}?wait=60`);
    expect(body).not.toHaveProperty("run");
    expect(executor.jobs).toHaveLength(0);

    // Approved, the job runs once; its result is read with the same key on /v1.
    const id = body["approvalId"] as string;
    const approve = await app.request(`/v1/approvals/${id}/approve`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATED_KEYS.admin}` },
    });
    expect(approve.status).toBe(200);
    const view = await app.request(`/v1/approvals/${id}?wait=5`, {
      headers: { authorization: `Bearer ${GATED_KEYS.agent}` },
    });
    expect(await view.json()).toMatchObject({ status: "done", result: { stdout: "hi\n" } });
    expect(executor.jobs.map((j) => j.argv)).toEqual([["bash", "main.sh"]]);
  });
});
