import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { APPROVAL_PENDING_EXIT, exitCodeOf, runExec, STATUS_EXIT } from "../../cli/exec.ts";
import { GATED_KEYS, gatedApp } from "../support/fake-app.ts";
import { okResult } from "../support/fake-executor.ts";

describe("airlock exec exit codes", () => {
  const base = okResult("j");
  it("passes the sandbox's exit code through", () => {
    expect(exitCodeOf(base)).toBe(0);
    expect(exitCodeOf({ ...base, status: "error", exitCode: 42 })).toBe(42);
  });

  it("uses 128+N for a process killed by a signal without an exit code", () => {
    expect(exitCodeOf({ ...base, status: "error", exitCode: null, signal: "SIGTERM" })).toBe(143);
  });

  it("gives every status without an exit code its documented code", () => {
    for (const status of ["timeout", "oom", "output_limit", "workspace_full"] as const) {
      expect(exitCodeOf({ ...base, status, exitCode: 137, signal: "SIGKILL" })).toBe(
        STATUS_EXIT[status],
      );
    }
    expect(STATUS_EXIT).toEqual({
      timeout: 124,
      oom: 137,
      output_limit: 125,
      workspace_full: 123,
      compile_error: 1,
    });
  });
});

describe("airlock exec: a job held for approval", () => {
  // The gated app on a loopback port: the CLI talks HTTP to it as to any gateway.
  const made = gatedApp();
  let server: ReturnType<typeof serve>;
  let url = "";
  beforeAll(async () => {
    server = await new Promise((resolve) => {
      const s = serve({ fetch: made.app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Runs `airlock exec` in-process with its output captured; `during` sees stderr as it grows. */
  async function airlock(args: string[], during?: (stderr: () => string) => Promise<void>) {
    let stdout = "";
    let stderr = "";
    const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    try {
      const env = { AIRLOCK_URL: url, AIRLOCK_KEY: GATED_KEYS.agent };
      const running = runExec(["--timeout", "9000", ...args, "--", "echo", "hi"], env);
      await during?.(() => stderr);
      return { code: await running, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }
  const approvalIn = async (stderr: () => string) => {
    for (let i = 0; i < 200; i++) {
      const id = /approval (apr_[0-9a-f]+)/.exec(stderr())?.[1];
      if (id !== undefined && stderr().includes("waiting for the decision")) return id;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no approval id on stderr: ${stderr()}`);
  };
  const decide = (id: string, action: "approve" | "deny") =>
    made.app.request(`/v1/approvals/${id}/${action}`, {
      method: "POST",
      headers: { authorization: `Bearer ${GATED_KEYS.admin}` },
    });

  it("--no-wait prints the approval id on stdout and exits APPROVAL_PENDING_EXIT (75)", async () => {
    const r = await airlock(["--no-wait"]);
    expect(APPROVAL_PENDING_EXIT).toBe(75);
    expect(r.code).toBe(75);
    expect(r.stdout).toMatch(/^apr_[0-9a-f]+\n$/);
    expect(r.stderr).toContain(`approval ${r.stdout.trim()}, pending until`);
    expect(r.stderr).toContain("jobsOverSeconds");
  });

  it("waits for the decision, then prints the job's output and exits with its code", async () => {
    const before = made.executor.jobs.length;
    const r = await airlock([], async (stderr) => {
      expect((await decide(await approvalIn(stderr), "approve")).status).toBe(200);
    });
    expect(r).toMatchObject({ code: 0, stdout: "hi\n" });
    expect(made.executor.jobs).toHaveLength(before + 1);
  });

  it("denied: says so on stderr and exits 2; the job never ran", async () => {
    const before = made.executor.jobs.length;
    const r = await airlock([], async (stderr) => {
      await decide(await approvalIn(stderr), "deny");
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/approval_denied \(HTTP 403\): approval apr_\w+ was denied by root/);
    expect(r.stdout).toBe("");
    expect(made.executor.jobs).toHaveLength(before);
  });
});
