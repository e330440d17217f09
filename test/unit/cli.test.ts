import { describe, expect, it } from "vitest";
import { exitCodeOf, STATUS_EXIT } from "../../cli/exec.ts";
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
    expect(STATUS_EXIT).toEqual({ timeout: 124, oom: 137, output_limit: 125, workspace_full: 123 });
  });
});
