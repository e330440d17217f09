import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import type { ExecRequest } from "../../core/schemas.ts";
import { loadProfiles, mergeDefaults } from "../../policies/load.ts";
import { resolveJob, resolveLimits } from "../../policies/resolve.ts";

const dirs: string[] = [];
function operatorDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "airlock-profiles-"));
  dirs.push(dir);
  mkdirSync(join(dir, "seccomp"));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const minimal = {
  name: "ruby",
  image: "example/ruby:1",
  languages: { ruby: { file: "main.rb", command: ["ruby", "main.rb"] } },
};

describe("profile loading", () => {
  it("loads the built-in profiles with defaults merged in", () => {
    const profiles = loadProfiles();
    expect([...profiles.keys()].sort()).toEqual([
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
    const python = profiles.get("python");
    expect(python?.network).toBe("none");
    expect(python?.user).toBe("1000:1000");
    expect(python?.limits.default.memoryMb).toBe(256);
    // Profile env merges over the defaults' env rather than replacing it.
    expect(python?.env["PYTHONUNBUFFERED"]).toBe("1");
    expect(python?.env["LANG"]).toBe("C.UTF-8");
    expect(JSON.parse(python?.seccompJson ?? "{}").defaultAction).toBe("SCMP_ACT_ERRNO");
  });

  it("merges objects key by key and lets arrays replace", () => {
    expect(mergeDefaults({ a: { b: 1, c: 2 }, d: [1, 2] }, { a: { c: 3 }, d: [9] })).toEqual({
      a: { b: 1, c: 3 },
      d: [9],
    });
  });

  it("keeps only the profiles AIRLOCK_PROFILES names, and names one that does not exist", () => {
    expect([...loadProfiles({ only: ["shell", "python"] }).keys()].sort()).toEqual([
      "python",
      "shell",
    ]);
    expect(() => loadProfiles({ only: ["shell", "cobol"] })).toThrow(
      /AIRLOCK_PROFILES names "cobol", which no profile is; known: .*shell/,
    );
  });

  it("adds an operator's profile", () => {
    const profiles = loadProfiles({ extraDir: operatorDir({ "ruby.json": minimal }) });
    expect(profiles.get("ruby")?.limits.max.timeoutMs).toBe(300_000);
  });

  it.each([
    [{ ...minimal, limits: { max: { memoryMb: "lots" } } }, "ruby.json: limits.max.memoryMb:"],
    [{ ...minimal, user: "0:0" }, "ruby.json: user: must not be root"],
    [{ ...minimal, network: "host" }, "ruby.json: network:"],
    [{ ...minimal, surprise: true }, "ruby.json: (top level): Unrecognized key"],
    [{ ...minimal, name: "perl" }, 'ruby.json: name: is "perl" but the file is named ruby.json'],
    [{ ...minimal, seccomp: "missing.json" }, "ruby.json: seccomp: missing.json not found"],
    [
      { ...minimal, limits: { default: { timeoutMs: 999_999 } } },
      "ruby.json: limits.default.timeoutMs: is 999999, above limits.max.timeoutMs",
    ],
    ["{ not json", "ruby.json: is not valid JSON"],
  ])("stops on a bad file, naming file and field (%#)", (content, message) => {
    const dir = operatorDir({ "ruby.json": content });
    expect(() => loadProfiles({ extraDir: dir })).toThrow(message);
  });
});

describe("limits", () => {
  const python = loadProfiles().get("python");
  if (python === undefined) throw new Error("python profile missing");

  it("defaults to the profile's defaults and accepts values up to the maximum", () => {
    expect(resolveLimits(python)).toEqual(python.limits.default);
    expect(resolveLimits(python, { memoryMb: python.limits.max.memoryMb }).memoryMb).toBe(
      python.limits.max.memoryMb,
    );
  });

  it("refuses a value above the maximum, naming field and maximum (never clamps)", () => {
    try {
      resolveLimits(python, { memoryMb: 999_999 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AirlockError);
      const e = err as AirlockError;
      expect(e.code).toBe("invalid_request");
      expect(e.message).toBe(
        "limits.memoryMb is 999999, above the maximum of 2048 for profile python",
      );
      expect(e.details).toEqual({ field: "limits.memoryMb", value: 999_999, maximum: 2048 });
    }
  });
});

describe("resolveJob", () => {
  const profiles = loadProfiles();
  it("turns code into a file and the profile's argv", () => {
    const job = resolveJob(profiles, { profile: "python", code: "print(1)" }, "t");
    expect(job.argv).toEqual(["python3", "main.py"]);
    expect(job.files).toEqual([{ path: "main.py", content: Buffer.from("print(1)"), mode: 0o644 }]);
  });

  it("runs a string command with /bin/sh -c", () => {
    expect(resolveJob(profiles, { profile: "shell", command: "echo hi" }, "t").argv).toEqual([
      "/bin/sh",
      "-c",
      "echo hi",
    ]);
  });

  it("merges env over the profile's and decodes base64 files", () => {
    const job = resolveJob(
      profiles,
      {
        profile: "shell",
        command: ["env"],
        env: { FOO: "bar" },
        files: [{ path: "b.bin", content: "AAEC", encoding: "base64" }],
      },
      "t",
    );
    expect(job.env["FOO"]).toBe("bar");
    expect(job.env["LANG"]).toBe("C.UTF-8");
    expect(job.files[0]?.content).toEqual(Buffer.from([0, 1, 2]));
  });

  it.each([
    [{ profile: "nope", command: "x" }, "not_found", 'profile "nope" does not exist'],
    [
      { profile: "python", code: "x", language: "cobol" },
      "invalid_request",
      "does not run language",
    ],
    [{ profile: "shell", command: "x", env: { "BAD-NAME": "1" } }, "invalid_request", "env name"],
    [
      { profile: "shell", command: "x", files: [{ path: "../x", content: "" }] },
      "invalid_request",
      "files[0].path",
    ],
    [{ profile: "shell", command: "x", workdir: "/abs" }, "invalid_request", "workdir"],
    [{ profile: "shell", command: ["a\0b"] }, "invalid_request", "command[0] contains a NUL"],
    [
      {
        profile: "shell",
        command: "x",
        files: [
          { path: "a", content: "" },
          { path: "./a", content: "" },
        ],
      },
      "invalid_request",
      "given twice",
    ],
  ])("rejects %j", (body, code, message) => {
    try {
      resolveJob(profiles, body as ExecRequest, "t");
      expect.unreachable();
    } catch (err) {
      expect((err as AirlockError).code).toBe(code);
      expect((err as AirlockError).message).toContain(message);
    }
  });
});
